import NIOCore
import Synchronization

/// Where a multiplexed stream's sources may push their live ends (``MultiplexedEventStream``):
/// the client's connection, the heartbeat interval, and each source's meter.
public struct MultiplexPush: Sendable {
    public var connection: any PushTarget
    /// How long the connection may stay quiet before a pushed source sends a heartbeat.
    public var heartbeatAfter: Duration
    /// Each source's meter, in the order of the stream's sources.
    public var meters: [any SourceMeter]

    public init(connection: any PushTarget, heartbeatAfter: Duration, meters: [any SourceMeter]) {
        self.connection = connection
        self.heartbeatAfter = heartbeatAfter
        self.meters = meters
    }
}

/// A multiplexed stream's ``MultiplexEncoder`` and, when its sources are pushed, what keeps the
/// composite ids in the order the events reach the connection.
///
/// Every event gets its composite id as it is encoded, so events must be written in the order they
/// were encoded. A pushed event is encoded and written in one job on the connection's lane; the
/// stream's own events are encoded in its task and written after. From the moment the stream
/// encodes until its write completed (``streamWrote()``), pushed writes are refused: their
/// source leaves the push path and goes on through the stream.
final class MultiplexWriting: Sendable {
    private struct State {
        var encoder: MultiplexEncoder
        var streamWriting = false
        var lastWrite: ContinuousClock.Instant = .now
        var pushedBytes = 0
    }

    private let state: Mutex<State>
    /// How long the connection may stay quiet before a pushed source sends a heartbeat.
    let heartbeatAfter: Duration

    init(encoder: MultiplexEncoder, heartbeatAfter: Duration = .seconds(3600)) {
        state = Mutex(State(encoder: encoder))
        self.heartbeatAfter = heartbeatAfter
    }

    /// Runs `body` with the encoder, for the stream's own events (`writes`: they are written next,
    /// and pushes wait for ``streamWrote()``).
    func encode<Result>(writes: Bool, _ body: (inout MultiplexEncoder) -> Result) -> Result {
        state.withLock { state in
            if writes { state.streamWriting = true }
            return body(&state.encoder)
        }
    }

    /// The stream's events encoded before are written: pushes may go on.
    func streamWrote() {
        state.withLock { state in
            if state.streamWriting { state.lastWrite = .now }
            state.streamWriting = false
        }
    }

    var lastWrite: ContinuousClock.Instant { state.withLock { $0.lastWrite } }

    /// Bytes pushed since the last call.
    func takePushedBytes() -> Int {
        state.withLock { state in
            defer { state.pushedBytes = 0 }
            return state.pushedBytes
        }
    }

    /// On the lane: writes a source's pushed frames with their composite ids to `connection`, or
    /// `nil` while the stream's own events are being encoded or written (the event loop never
    /// waits for the stream's task: the source goes on through the stream instead).
    func push(frames: ByteBuffer, source index: Int, to connection: any PushTarget) -> Int? {
        let written: Int?? = state.withLockIfAvailable { state in
            guard !state.streamWriting else { return nil }
            var output = ByteBufferAllocator().buffer(capacity: frames.readableBytes + frames.readableBytes / 4)
            state.encoder.write(frames: frames, source: index, into: &output)
            let written = output.readableBytes
            if written > 0 {
                _ = connection.write(output)
                state.pushedBytes += written
                state.lastWrite = .now
            }
            return written
        }
        return written ?? nil
    }

    /// On the lane: a heartbeat, unless the connection wrote something within the heartbeat
    /// interval (each pushed source beats on its own) or the stream's own events are being written
    /// (the heartbeat would land inside one of them).
    func beat(_ bytes: ByteBuffer, to connection: any PushTarget) -> Int {
        state.withLockIfAvailable { state in
            let now = ContinuousClock.now
            guard !state.streamWriting, now - state.lastWrite >= heartbeatAfter else { return 0 }
            let written = connection.write(bytes) ?? 0
            connection.flush()
            state.pushedBytes += written
            state.lastWrite = now
            return written
        } ?? 0
    }
}

/// One source of a multiplexed stream as a ``PushTarget``: its pushed events are written to the
/// stream's connection with the stream's composite ids.
final class MultiplexedSourceTarget: PushTarget {
    private let writing: MultiplexWriting
    private let connection: any PushTarget
    private let index: Int

    init(writing: MultiplexWriting, connection: any PushTarget, source index: Int) {
        self.writing = writing
        self.connection = connection
        self.index = index
    }

    var lane: ObjectIdentifier { connection.lane }
    func run(_ job: @escaping @Sendable () -> Void) { connection.run(job) }
    var isWritable: Bool { connection.isWritable }
    func write(_ bytes: ByteBuffer) -> Int? { writing.push(frames: bytes, source: index, to: connection) }
    func writeHeartbeat(_ bytes: ByteBuffer) -> Int { writing.beat(bytes, to: connection) }
    func flush() { connection.flush() }
}
