import NIOCore
import Synchronization

/// One entry of an ``EventLog``: an event and the stream positions before and after it.
///
/// Consecutive records are contiguous: each record's ``from`` is the previous record's ``to``.
/// A record without an event is a silent transition (a file appearing, say): it moves the position
/// but sends nothing.
public struct LogRecord<Position: Hashable & Sendable>: Sendable {
    public var sequence: UInt64
    public var from: Position
    public var to: Position
    public let event: StreamEvent?
    /// The event's encoded forms, shared by the clients that send it.
    public let encoded: EncodedForms?

    public init(sequence: UInt64 = 0, from: Position, to: Position, event: StreamEvent?) {
        self.sequence = sequence
        self.from = from
        self.to = to
        self.event = event
        self.encoded = event == nil ? nil : EncodedForms()
    }
}

/// Why ``EventLog/wait(after:token:)`` returned.
public enum WakeReason: Sendable, Equatable {
    /// Records after the given sequence exist now.
    case appended
    /// The periodic tick (time to check heartbeats and deadlines).
    case tick
    /// This waiter was interrupted through its token (its connection is stopping).
    case interrupted
    /// The log was closed: the source ended.
    case closed
}

/// The recent events of one source, shared by all its clients: the fan-out.
///
/// One reader appends; any number of clients read at their own sequence number. The log keeps at
/// most a bounded number of bytes of recent records. A client that falls behind the oldest record
/// is not dropped: it reads on from the underlying file or journal at its own position (the log
/// is the buffer) and joins again with ``locate(_:)``.
public final class EventLog<Position: Hashable & Sendable>: Sendable {
    /// What ``read(after:maxRecords:maxBytes:)`` found.
    public enum ReadResult: Sendable {
        /// Records after the sequence (not empty).
        case records([LogRecord<Position>])
        /// Nothing after the sequence yet.
        case upToDate
        /// The records after the sequence were evicted: read from the source at your position.
        case evicted
    }

    /// A handle that lets one waiter be woken from outside (e.g. when its connection stops).
    public struct WaitToken: Hashable, Sendable {
        fileprivate let value: UInt64
    }

    private struct State {
        var records = CircularBuffer<LogRecord<Position>>(initialCapacity: 1024)
        var bytes = 0
        var bytesAppended: UInt64 = 0
        var nextSequence: UInt64 = 1
        var latest: Position?
        var tokens: Set<UInt64> = []
        var pending: [UInt64: WakeReason] = [:]
        var suspended: [UInt64: CheckedContinuation<WakeReason, Never>] = [:]
        var nextToken: UInt64 = 1
        var lastWoken = 0
        var closed = false
        var finalEvent: StreamEvent?
    }

    private let state: Mutex<State>
    private let capacityBytes: Int
    /// The live end pushed to the clients that are up to date.
    public let push = LivePush<Position>()

    /// - Parameter capacityBytes: bytes of events kept for clients to share before they must read
    ///   from the source itself.
    public init(capacityBytes: Int = 8 << 20, start: Position? = nil) {
        self.capacityBytes = capacityBytes
        var initial = State()
        initial.latest = start
        self.state = Mutex(initial)
    }

    /// The sequence number of the newest record (0 when none was ever appended).
    public var lastSequence: UInt64 { state.withLock { $0.nextSequence - 1 } }

    /// Bytes of events ever appended (each counted as its footprint): how fast the live end moves.
    public var bytesAppended: UInt64 { state.withLock { $0.bytesAppended } }

    /// The position after the newest record, or the start position given at creation.
    public var latestPosition: Position? { state.withLock { $0.latest } }

    /// Sets the position before the first record, if none was set or appended yet.
    public func begin(at position: Position) {
        state.withLock { state in
            if state.latest == nil { state.latest = position }
        }
    }

    /// Appends records (their sequence numbers are assigned here) and wakes every waiter.
    public func append(_ newRecords: [LogRecord<Position>]) {
        guard !newRecords.isEmpty else { return }
        var numbered = newRecords
        let toWake: [CheckedContinuation<WakeReason, Never>] = state.withLock { state in
            for index in numbered.indices {
                numbered[index].sequence = state.nextSequence
                state.nextSequence += 1
                let footprint = numbered[index].event?.footprint ?? 32
                state.bytes += footprint
                state.bytesAppended += UInt64(footprint)
                state.latest = numbered[index].to
                state.records.append(numbered[index])
            }
            while state.bytes > capacityBytes, state.records.count > 1 {
                let dropped = state.records.removeFirst()
                state.bytes -= dropped.event?.footprint ?? 32
            }
            let woken = Self.takeWaiters(&state)
            state.lastWoken = woken.count
            return woken
        }
        push.publish(numbered)
        for continuation in toWake { continuation.resume(returning: .appended) }
    }

    /// Records after `sequence`, at most `maxRecords` of them and about `maxBytes` of events.
    public func read(after sequence: UInt64, maxRecords: Int = 1024, maxBytes: Int = 256 << 10) -> ReadResult {
        state.withLock { state in
            guard sequence + 1 < state.nextSequence else { return .upToDate }
            guard let first = state.records.first, sequence + 1 >= first.sequence else { return .evicted }
            var index = state.records.index(state.records.startIndex, offsetBy: Int(sequence + 1 - first.sequence))
            var result: [LogRecord<Position>] = []
            var bytes = 0
            while index != state.records.endIndex, result.count < maxRecords, bytes < maxBytes {
                let record = state.records[index]
                result.append(record)
                bytes += record.event?.footprint ?? 0
                index = state.records.index(after: index)
            }
            return .records(result)
        }
    }

    /// The sequence number to read after, for a client at `position`: just before the record that
    /// starts there, or the newest sequence when the position is the latest. `nil` when the log does
    /// not hold the position (read from the source instead).
    public func locate(_ position: Position) -> UInt64? {
        state.withLock { state in
            if state.latest == position { return state.nextSequence - 1 }
            var index = state.records.endIndex
            while index != state.records.startIndex {
                index = state.records.index(before: index)
                if state.records[index].from == position { return state.records[index].sequence - 1 }
            }
            return nil
        }
    }

    /// A token for one client's waits.
    public func makeWaitToken() -> WaitToken {
        state.withLock { state in
            defer { state.nextToken += 1 }
            state.tokens.insert(state.nextToken)
            return WaitToken(value: state.nextToken)
        }
    }

    /// Forgets a token that will not wait again.
    public func releaseWaitToken(_ token: WaitToken) {
        let continuation = state.withLock { state in
            state.tokens.remove(token.value)
            state.pending[token.value] = nil
            return state.suspended.removeValue(forKey: token.value)
        }
        continuation?.resume(returning: .interrupted)
    }

    /// Suspends until a record after `sequence` exists, a tick, an interruption or the log closes.
    public func wait(after sequence: UInt64, token: WaitToken) async -> WakeReason {
        await withCheckedContinuation { (continuation: CheckedContinuation<WakeReason, Never>) in
            let immediate: WakeReason? = state.withLock { state in
                if state.closed { return .closed }
                guard state.tokens.contains(token.value) else { return .interrupted }
                if let pending = state.pending.removeValue(forKey: token.value) { return pending }
                if sequence + 1 < state.nextSequence { return .appended }
                state.suspended[token.value] = continuation
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Wakes one waiter with ``WakeReason/interrupted`` (now, or at its next wait).
    public func interrupt(_ token: WaitToken) {
        let continuation: CheckedContinuation<WakeReason, Never>? = state.withLock { state in
            guard state.tokens.contains(token.value) else { return nil }
            if let continuation = state.suspended.removeValue(forKey: token.value) { return continuation }
            state.pending[token.value] = .interrupted
            return nil
        }
        continuation?.resume(returning: .interrupted)
    }

    /// Wakes every waiter with ``WakeReason/tick``.
    public func tick() {
        let toWake = state.withLock { Self.takeWaiters(&$0) }
        push.tick()
        for continuation in toWake { continuation.resume(returning: .tick) }
    }

    /// Ends the log: every current and future wait returns ``WakeReason/closed``.
    ///
    /// - Parameter finalEvent: the event every stream sends before it finishes (the `end` event of
    ///   a source removed from the configuration); `nil` when streams just finish (shutdown), so
    ///   clients reconnect and resume.
    public func close(finalEvent: StreamEvent? = nil) {
        let toWake: [CheckedContinuation<WakeReason, Never>] = state.withLock { state in
            if !state.closed { state.finalEvent = finalEvent }
            state.closed = true
            return Self.takeWaiters(&state)
        }
        push.close()
        for continuation in toWake { continuation.resume(returning: .closed) }
    }

    /// `true` once ``close(finalEvent:)`` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// The event streams send last, given to ``close(finalEvent:)``.
    public var finalEvent: StreamEvent? { state.withLock { $0.finalEvent } }

    /// Number of tokens in use (clients of this source).
    public var waiterCount: Int { state.withLock { $0.tokens.count } }

    /// How many clients the next append wakes, each in a task of its own: those waiting at the live
    /// end now, or as many as the last append woke (they may not be back waiting yet). Clients that
    /// are behind, or on the push path, are not among them.
    public var wakingCount: Int { state.withLock { max($0.suspended.count, $0.lastWoken) } }

    private static func takeWaiters(_ state: inout State) -> [CheckedContinuation<WakeReason, Never>] {
        guard !state.suspended.isEmpty else { return [] }
        let result = Array(state.suspended.values)
        state.suspended.removeAll(keepingCapacity: true)
        return result
    }
}
