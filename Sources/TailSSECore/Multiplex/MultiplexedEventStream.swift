public import NIOCore
import Synchronization

/// Several sources' streams as one: the stream of `GET /events`.
///
/// Each source's ``EventStream`` (opened with a framed ``EventEncoder``) is read by a task of its
/// own that hands over one buffer of events at a time and waits while that buffer is still
/// unsent, so at most two buffers a source are held. ``next(into:)`` takes what the sources have
/// ready, one buffer per source in turn, and writes it with a ``MultiplexEncoder``, which gives
/// each event the composite id of every source's position in the order the events are sent.
///
/// An *open* stream (the files of a glob source) takes sources while it runs (``add(_:source:)``),
/// drops a source's part from the composite id once its stream ends, and ends only when stopped.
///
/// With a ``MultiplexPush``, a source at its live end is pushed (``EventStream/followLive(_:meter:heartbeat:)``):
/// its events are written to the connection on its lane, each given the composite id as it is
/// written (``MultiplexWriting``), and no task reads it until it leaves the push path. The events this stream
/// returns must then be written through the same connection, in order with the pushed ones, and
/// the next call of ``next(into:)`` says they were.
public final class MultiplexedEventStream: EventStream {
    /// Each source's stream; an open stream lets go of the streams that ended.
    private let streams: Mutex<[(any EventStream)?]>
    private let mailbox: Mailbox
    private let writing: MultiplexWriting
    private let tallies: [SentTally?]
    private let isOpen: Bool
    private let pushes: Bool

    /// - Parameters:
    ///   - streams: one stream per source, in the order of `encoder`'s sources.
    ///   - tallies: where to count the bytes written of each source (in the same order), if anywhere.
    ///   - open: the stream takes sources while it runs and ends only when stopped.
    ///   - push: where the sources' live ends are pushed (not for an open stream).
    public init(streams: [any EventStream], encoder: MultiplexEncoder, tallies: [SentTally?] = [], open: Bool = false, push: MultiplexPush? = nil) {
        self.streams = Mutex(streams)
        let writing = MultiplexWriting(encoder: encoder, heartbeatAfter: push?.heartbeatAfter ?? .seconds(3600))
        self.writing = writing
        self.tallies = tallies
        self.isOpen = open
        self.pushes = push != nil && !open
        let mailbox = Mailbox(count: streams.count, open: open)
        self.mailbox = mailbox
        for (index, stream) in streams.enumerated() {
            let pushing = pushes ? push.map { push in
                SourcePushing(
                    target: MultiplexedSourceTarget(writing: writing, connection: push.connection, source: index),
                    meter: index < push.meters.count ? push.meters[index] : nil, writing: writing
                )
            } : nil
            Task { await Self.read(stream, index: index, into: mailbox, pushing: pushing) }
        }
    }

    deinit {
        stop()
    }

    /// Stops the sources first (each leaves the push path: no pushed write starts after this), then
    /// the stream's own reading, so nothing pushed follows what the stream writes last.
    public func stop() {
        for stream in streams.withLock({ $0 }) { stream?.stop() }
        mailbox.stop()
    }

    /// Adds the stream of another source (an open stream only), after the others, starting at
    /// `startID` in the composite id if known. A stopped stream stops it at once.
    public func add(_ stream: any EventStream, source name: String, startID: String?) {
        let index: Int? = writing.encode(writes: false) { encoder in
            guard mailbox.addSlot() else { return nil }
            streams.withLock { $0.append(stream) }
            return encoder.addSource(name, startID: startID)
        }
        guard let index else { return stream.stop() }
        Task { [mailbox] in await Self.read(stream, index: index, into: mailbox, pushing: nil) }
    }

    /// Wakes the reader as if time had passed (an open stream with no source still beats).
    public func tick() { mailbox.idle() }

    public func currentID() async -> String? {
        writing.encode(writes: false) { $0.currentID.description }
    }

    public func takeBytesPushed() -> Int { pushes ? writing.takePushedBytes() : 0 }

    public func next(into buffer: inout ByteBuffer) async throws -> StreamStep {
        if pushes {
            writing.streamWrote()
            mailbox.wrote()
        }
        while true {
            switch await mailbox.take() {
            case .finished:
                return .finished
            case .idle:
                return .idle
            case .buffers(let ready, let ended):
                writing.encode(writes: pushes && !ready.isEmpty) { encoder in
                    for (index, frames) in ready {
                        let before = buffer.writerIndex
                        encoder.write(frames: frames, source: index, into: &buffer)
                        if index < tallies.count { tallies[index]?.add(bytes: buffer.writerIndex - before) }
                    }
                }
                if isOpen, !ended.isEmpty {
                    writing.encode(writes: false) { encoder in for index in ended { encoder.retire(index) } }
                    streams.withLock { streams in for index in ended where streams.indices.contains(index) { streams[index] = nil } }
                }
                if !ready.isEmpty { return .events }
            }
        }
    }

    /// What a source's reading task needs to push the source's live end.
    private struct SourcePushing: Sendable {
        var target: MultiplexedSourceTarget
        var meter: (any SourceMeter)?
        var writing: MultiplexWriting
    }

    private static func read(_ stream: any EventStream, index: Int, into mailbox: Mailbox, pushing: SourcePushing?) async {
        while true {
            // Pushed events may follow only once everything this task handed over was written.
            // While the source is pushed, no task reads it: one starts again when it leaves.
            if let pushing, await mailbox.waitUntilWritten(index) {
                let heartbeat = PushHeartbeat(after: pushing.writing.heartbeatAfter, quietSince: pushing.writing.lastWrite)
                let joined = stream.pushLive(pushing.target, meter: pushing.meter, heartbeat: heartbeat) { pushed in
                    if pushed.reason == .notWritable { pushing.meter?.leftPush() }
                    Task { await read(stream, index: index, into: mailbox, pushing: pushing) }
                }
                if joined { return }
            }
            var buffer = ByteBuffer()
            let step = (try? await stream.next(into: &buffer)) ?? .finished
            switch step {
            case .events:
                guard buffer.readableBytes > 0 else { continue }
                guard await mailbox.put(buffer, from: index) else { return }
            case .idle:
                mailbox.idle()
            case .finished:
                mailbox.finish(index)
                return
            }
        }
    }
}

/// Where the sources' reading tasks leave their buffers for the stream's writer.
private final class Mailbox: Sendable {
    enum Taken {
        /// Buffers ready, and sources whose streams ended since the last take.
        case buffers([(Int, ByteBuffer)], ended: [Int])
        case idle
        case finished
    }

    private struct Slot {
        var ready: ByteBuffer?
        var waiting: (buffer: ByteBuffer, producer: CheckedContinuation<Bool, Never>)?
        var finished = false
        /// Buffers handed over, taken by the writer, and known written (``wrote()``).
        var handed = 0
        var taken = 0
        var written = 0
        var writtenWaiter: CheckedContinuation<Bool, Never>?
    }

    private struct State {
        var slots: [Slot]
        var idle = false
        var stopped = false
        var consumer: CheckedContinuation<Void, Never>?
        var first = 0
        var ended: [Int] = []
        let open: Bool

        var allFinished: Bool { !open && slots.allSatisfy(\.finished) }

        mutating func takeConsumer() -> CheckedContinuation<Void, Never>? {
            defer { consumer = nil }
            return consumer
        }
    }

    private let state: Mutex<State>

    init(count: Int, open: Bool) {
        state = Mutex(State(slots: Array(repeating: Slot(), count: count), open: open))
    }

    /// Adds a slot after the others; `false` once stopped.
    func addSlot() -> Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            state.slots.append(Slot())
            return true
        }
    }

    /// Hands over a buffer; returns once there is room for the next one (`false`: stop reading).
    func put(_ buffer: ByteBuffer, from index: Int) async -> Bool {
        await withCheckedContinuation { (producer: CheckedContinuation<Bool, Never>) in
            let (answer, consumer): (Bool?, CheckedContinuation<Void, Never>?) = state.withLock { state in
                if state.stopped { return (false, nil) }
                state.slots[index].handed += 1
                if state.slots[index].ready == nil {
                    state.slots[index].ready = buffer
                    return (true, state.takeConsumer())
                }
                state.slots[index].waiting = (buffer, producer)
                return (nil, nil)
            }
            consumer?.resume()
            if let answer { producer.resume(returning: answer) }
        }
    }

    /// The writer wrote every buffer it took.
    func wrote() {
        let waiters: [CheckedContinuation<Bool, Never>] = state.withLock { state in
            var waiters: [CheckedContinuation<Bool, Never>] = []
            for index in state.slots.indices {
                state.slots[index].written = state.slots[index].taken
                if state.slots[index].written == state.slots[index].handed, let waiter = state.slots[index].writtenWaiter {
                    waiters.append(waiter)
                    state.slots[index].writtenWaiter = nil
                }
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Waits until every buffer the source at `index` handed over was written; `false` once stopped.
    func waitUntilWritten(_ index: Int) async -> Bool {
        await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
            let answer: Bool? = state.withLock { state in
                if state.stopped { return false }
                if state.slots[index].written == state.slots[index].handed { return true }
                state.slots[index].writtenWaiter = waiter
                return nil
            }
            if let answer { waiter.resume(returning: answer) }
        }
    }

    func idle() {
        state.withLock { state in
            state.idle = true
            return state.takeConsumer()
        }?.resume()
    }

    func finish(_ index: Int) {
        state.withLock { state in
            state.slots[index].finished = true
            state.ended.append(index)
            return state.takeConsumer()
        }?.resume()
    }

    func stop() {
        let (consumer, producers) = state.withLock { state in
            state.stopped = true
            var producers: [CheckedContinuation<Bool, Never>] = []
            for index in state.slots.indices {
                if let waiting = state.slots[index].waiting { producers.append(waiting.producer) }
                state.slots[index].waiting = nil
                if let waiter = state.slots[index].writtenWaiter { producers.append(waiter) }
                state.slots[index].writtenWaiter = nil
            }
            return (state.takeConsumer(), producers)
        }
        consumer?.resume()
        for producer in producers { producer.resume(returning: false) }
    }

    /// Waits until a source has events, a source is idle (time passed), or all have finished.
    func take() async -> Taken {
        while true {
            var producers: [CheckedContinuation<Bool, Never>] = []
            let taken: Taken? = state.withLock { state in
                if state.stopped { return .finished }
                var ready: [(Int, ByteBuffer)] = []
                let count = state.slots.count
                for offset in 0..<count {
                    let index = (state.first + offset) % count
                    guard let buffer = state.slots[index].ready else { continue }
                    ready.append((index, buffer))
                    state.slots[index].ready = nil
                    state.slots[index].taken += 1
                    if let waiting = state.slots[index].waiting {
                        state.slots[index].ready = waiting.buffer
                        state.slots[index].waiting = nil
                        producers.append(waiting.producer)
                    }
                }
                if !ready.isEmpty || !state.ended.isEmpty {
                    if !ready.isEmpty {
                        state.first = (state.first + 1) % max(count, 1)
                        state.idle = false
                    }
                    defer { state.ended = [] }
                    return .buffers(ready, ended: state.ended)
                }
                if state.allFinished { return .finished }
                if state.idle {
                    state.idle = false
                    return .idle
                }
                return nil
            }
            for producer in producers { producer.resume(returning: true) }
            if let taken { return taken }
            await withCheckedContinuation { (consumer: CheckedContinuation<Void, Never>) in
                let wakeNow = state.withLock { state -> Bool in
                    if state.stopped || state.idle || !state.ended.isEmpty || state.slots.contains(where: { $0.ready != nil })
                        || state.allFinished {
                        return true
                    }
                    state.consumer = consumer
                    return false
                }
                if wakeNow { consumer.resume() }
            }
        }
    }
}
