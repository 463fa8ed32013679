public import NIOCore
import Synchronization

/// One client's place in a source's shared ``EventLog``: the part of every ``EventStream`` that
/// serves events from the log, waits for new ones, and ends the stream when the log closes.
///
/// When the log does not hold the client's position (a backlog, a resume, a slow client), ``next(encoder:into:accept:)``
/// says so and the stream reads the source itself, then moves the cursor with ``move(to:)``.
public final class SharedLogCursor<Position: Hashable & Sendable>: Sendable {
    /// What ``next(encoder:into:accept:)`` came to.
    public enum Step: Sendable {
        /// The stream's next step.
        case done(StreamStep)
        /// The log does not hold `position`: read the source from there. `observed` is the log's
        /// newest sequence before the log was searched, to wait after when the source has nothing new.
        case behind(position: Position, observed: UInt64)
    }

    private struct State {
        var position: Position
        var sequence: UInt64?
        var pending: [StreamEvent]
        var stopped = false
        var pushed: LivePush<Position>.Member?
    }

    private let log: EventLog<Position>
    private let token: EventLog<Position>.WaitToken
    private let state: Mutex<State>

    /// - Parameter pending: events to send first (e.g. a `reset`).
    public init(log: EventLog<Position>, start: Position, pending: [StreamEvent] = []) {
        self.log = log
        self.token = log.makeWaitToken()
        self.state = Mutex(State(position: start, pending: pending))
    }

    deinit { log.releaseWaitToken(token) }

    /// Where the client stands: every event up to here was sent.
    public var position: Position { state.withLock { $0.position } }

    /// Moves the client to a position found by reading the source.
    public func move(to position: Position) {
        state.withLock { $0.position = position; $0.sequence = nil }
    }

    /// Makes a pending or future ``next(encoder:into:accept:)`` finish; callable from any task.
    public func stop() {
        let pushed = state.withLock { state in
            state.stopped = true
            return state.pushed
        }
        if let pushed { log.push.remove(pushed) }
        log.interrupt(token)
    }

    /// Hands the client's live delivery to the log's ``LivePush`` while it is up to date: returns
    /// when it left the push path (its position moved past what was pushed), or `nil` at once when
    /// it cannot join (it is not at the live end, has events pending, or stopped).
    ///
    /// `encoder` must share its bytes (no grep, not framed); `meter` counts what is pushed.
    public func followLive(
        _ target: any PushTarget, encoder: EventEncoder, meter: (any SourceMeter)?, heartbeat: PushHeartbeat
    ) async -> LivePushOutcome<Position>? {
        guard let member = pushMember(target, encoder: encoder, meter: meter, heartbeat: heartbeat) else { return nil }
        let outcome = await log.push.follow(member, encoder: encoder)
        left(outcome)
        return outcome
    }

    /// Like ``followLive(_:encoder:meter:heartbeat:)`` without waiting: `true` when the client
    /// joined the push path, and then `onLeave` is called once it left, after the cursor moved to
    /// where the push left it (on the connection's lane: it must not block).
    public func pushLive(
        _ target: any PushTarget, encoder: EventEncoder, meter: (any SourceMeter)?, heartbeat: PushHeartbeat,
        onLeave: @escaping @Sendable (LivePushOutcome<Position>) -> Void
    ) -> Bool {
        guard let member = pushMember(target, encoder: encoder, meter: meter, heartbeat: heartbeat) else { return false }
        let joined = log.push.join(member, encoder: encoder) { [self] outcome in
            left(outcome)
            onLeave(outcome)
        }
        if !joined { left(nil) }
        return joined
    }

    /// The client as a member of the push path, when it can join: at the live end, nothing pending.
    private func pushMember(
        _ target: any PushTarget, encoder: EventEncoder, meter: (any SourceMeter)?, heartbeat: PushHeartbeat
    ) -> LivePush<Position>.Member? {
        state.withLock { state in
            guard !state.stopped, state.pending.isEmpty, let sequence = state.sequence else { return nil }
            let member = LivePush<Position>.Member(
                target: target, encoder: encoder, meter: meter, heartbeat: heartbeat, sequence: sequence, position: state.position
            )
            state.pushed = member
            return member
        }
    }

    /// The client left the push path (`nil`: it did not join).
    private func left(_ outcome: LivePushOutcome<Position>?) {
        state.withLock { state in
            state.pushed = nil
            if let outcome {
                state.position = outcome.position
                state.sequence = outcome.sequence
            }
        }
    }

    /// Serves events from the log until there is something to send, time passed, the stream is
    /// over, or the log does not hold the position.
    ///
    /// - Parameters:
    ///   - maxBytes: about how many bytes of events to take from the log in one step
    ///     (``ReadPace``).
    ///   - accept: whether the client wants an event of the log (e.g. its filter).
    public func next(
        encoder: EventEncoder, into buffer: inout ByteBuffer, maxBytes: Int = ReadPace.largeBytes, accept: (StreamEvent) -> Bool = { _ in true }
    ) async -> Step {
        while true {
            let (position, sequence, pending, stopped) = state.withLock { state in
                defer { state.pending.removeAll() }
                return (state.position, state.sequence, state.pending, state.stopped)
            }
            if stopped { return .done(.finished) }
            if !pending.isEmpty {
                for event in pending { encoder.encode(event, into: &buffer) }
                encoder.count(events: pending.count(where: { encoder.writes($0.kind) }))
                return .done(.events)
            }
            if log.isClosed {
                state.withLock { $0.stopped = true }
                guard let finalEvent = log.finalEvent else { return .done(.finished) }
                encoder.encode(finalEvent, into: &buffer)
                encoder.count(events: encoder.writes(finalEvent.kind) ? 1 : 0)
                return .done(.events)
            }
            if let sequence {
                switch log.read(after: sequence, maxBytes: maxBytes) {
                case .records(let records):
                    var encoded = 0
                    for record in records {
                        if let event = record.event, accept(event) {
                            let before = buffer.writerIndex
                            encoder.encode(record, into: &buffer)
                            if encoder.writes(event.kind), buffer.writerIndex > before { encoded += 1 }
                        }
                    }
                    encoder.count(events: encoded)
                    let last = records[records.count - 1]
                    state.withLock { $0.position = last.to; $0.sequence = last.sequence }
                    if buffer.readableBytes > 0 { return .done(.events) }
                case .upToDate:
                    if let step = await wait(after: sequence) { return .done(step) }
                case .evicted:
                    state.withLock { $0.sequence = nil }
                }
                continue
            }
            let observed = log.lastSequence
            guard let located = log.locate(position) else { return .behind(position: position, observed: observed) }
            state.withLock { $0.sequence = located }
        }
    }

    /// Waits for a record after `sequence`: `nil` when one came (or the log closed; the next call
    /// of ``next(encoder:into:accept:)`` ends the stream), else the step to return.
    public func wait(after sequence: UInt64) async -> StreamStep? {
        switch await log.wait(after: sequence, token: token) {
        case .appended, .closed: nil
        case .tick: .idle
        case .interrupted: .finished
        }
    }
}
