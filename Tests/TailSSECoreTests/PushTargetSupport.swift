import Dispatch
import NIOCore
import Synchronization
import TailSSECore
import Testing

/// A connection on a lane (a serial queue standing in for an event loop) that hands every write
/// to the test through an `AsyncStream`.
final class RecordingTarget: PushTarget {
    let lane: ObjectIdentifier
    let queue: DispatchQueue
    private let writable = Mutex(true)
    let writes: AsyncStream<ByteBuffer>
    private let sink: AsyncStream<ByteBuffer>.Continuation

    init(queue: DispatchQueue) {
        self.queue = queue
        self.lane = ObjectIdentifier(queue)
        (writes, sink) = AsyncStream.makeStream(of: ByteBuffer.self)
    }

    func run(_ job: @escaping @Sendable () -> Void) { queue.async(execute: job) }
    var isWritable: Bool { writable.withLock { $0 } }
    func write(_ bytes: ByteBuffer) -> Int? {
        sink.yield(bytes)
        return bytes.readableBytes
    }
    func flush() {}

    /// Ends `writes` (a waiting test gets what came so far).
    func endWrites() { sink.finish() }
    func setWritable(_ value: Bool) { writable.withLock { $0 = value } }
    /// Holds the lane until the returned function is called (as a busy event loop would).
    func hold() -> @Sendable () -> Void {
        let release = DispatchSemaphore(value: 0)
        queue.async { release.wait() }
        return { release.signal() }
    }
    /// Runs `body` on the lane after everything queued there before (a barrier for the test).
    func drain() async { await withCheckedContinuation { continuation in queue.async { continuation.resume() } } }
}

extension RecordingTarget {
    /// What was written, from the first write on, until `isEnough` holds for it (or what came
    /// within 10 s: a test that waits for a write that never comes fails instead of hanging).
    func written(until isEnough: (String) -> Bool) async -> String {
        let deadline = Task {
            try await Task.sleep(for: .seconds(10))
            endWrites()
        }
        defer { deadline.cancel() }
        var text = ""
        for await write in writes {
            text += String(buffer: write)
            if isEnough(text) { break }
        }
        return text
    }

    /// Writes `bytes` on the lane, in order with the jobs queued there, as a stream's own write
    /// through the connection does; returns once written.
    func send(_ bytes: ByteBuffer) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                _ = self.write(bytes)
                continuation.resume()
            }
        }
    }
}

/// Returns once `count` clients are on the log's push path (or fails after 10 s).
func members(_ count: Int, of log: EventLog<Int>) async {
    let deadline = ContinuousClock.now + .seconds(10)
    while log.push.memberCount != count {
        guard ContinuousClock.now < deadline else {
            Issue.record("\(log.push.memberCount) of \(count) clients on the push path")
            return
        }
        await Task.yield()
    }
}
