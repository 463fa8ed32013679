public import NIOCore
import Synchronization

/// Where live events are pushed for one client: its connection, written on the thread (event loop)
/// that owns it.
///
/// ``LivePush`` calls ``run(_:)`` from any thread; ``isWritable``, ``write(_:)``,
/// ``writeHeartbeat(_:)`` and ``flush()`` only inside a job it runs.
public protocol PushTarget: AnyObject, Sendable {
    /// The thread that writes to this target: one job per batch writes to every target of a lane.
    var lane: ObjectIdentifier { get }
    /// Runs `job` on the lane, after the jobs given before it.
    func run(_ job: @escaping @Sendable () -> Void)
    /// Whether the connection takes more bytes now without queueing them beyond its limit.
    var isWritable: Bool { get }
    /// Writes the encoded events `bytes`; returns how many bytes went to the connection (a
    /// multiplexed stream's source writes them with its composite ids), or `nil` when it took
    /// none of them now (the client then leaves the push path where it stood).
    @discardableResult
    func write(_ bytes: ByteBuffer) -> Int?
    /// Writes a heartbeat, flushed; returns how many bytes went to the connection.
    @discardableResult
    func writeHeartbeat(_ bytes: ByteBuffer) -> Int
    func flush()
}

extension PushTarget {
    @discardableResult
    public func writeHeartbeat(_ bytes: ByteBuffer) -> Int {
        let written = write(bytes) ?? 0
        flush()
        return written
    }
}

/// Why the client left the push path.
public enum LivePushExit: Sendable, Equatable {
    /// Its connection would queue more than it takes: it continues on its own, writing at the
    /// pace its client reads.
    case notWritable
    /// The log closed (the source ended).
    case closed
    /// The client's stream stopped, or its task was cancelled.
    case stopped
}

/// How a client's time on the push path ended, and what it was sent there.
public struct LivePushOutcome<Position: Sendable>: Sendable {
    public var reason: LivePushExit
    /// The last record written to the client (or where it joined) and the position after it.
    public var sequence: UInt64
    public var position: Position
    /// Bytes written on the push path.
    public var bytes: Int
    /// When the last bytes were written (or the client joined quiet since then).
    public var lastWrite: ContinuousClock.Instant
}

/// When a pushed client that got nothing for a while is sent a heartbeat (at the log's ticks).
public struct PushHeartbeat: Sendable {
    /// How long the connection may stay quiet before a tick sends a heartbeat.
    public var after: Duration
    /// When the connection last sent something.
    public var quietSince: ContinuousClock.Instant

    public init(after: Duration, quietSince: ContinuousClock.Instant) {
        self.after = after
        self.quietSince = quietSince
    }
}

/// The live end of an ``EventLog`` pushed to its up-to-date clients: each new record is encoded
/// once per format and the same bytes are written to every client of a lane (an event loop) by
/// one job per batch, which flushes each connection once. No client task runs while its client is
/// on the push path.
///
/// A client joins at the sequence it has sent up to (``follow(_:encoder:)``) and
/// leaves when its connection stops taking bytes, when the log closes, or when it stops; it then
/// continues from exactly where the push left it. At the log's ticks, quiet members get their
/// heartbeat here.
public final class LivePush<Position: Hashable & Sendable>: Sendable {
    /// One client on the push path. Its progress is touched only on its lane (and before it joins).
    final class Member: @unchecked Sendable {
        let target: any PushTarget
        /// The encoding the member takes (``EventEncoder/formIndex``).
        let form: Int
        let meter: (any SourceMeter)?
        let heartbeat: (bytes: ByteBuffer, after: Duration)?
        let stopRequested = Atomic<Bool>(false)
        /// Called once when the member leaves; `nil` before it joins and after it left.
        private var onLeave: (@Sendable (LivePushOutcome<Position>) -> Void)?
        var isOnThePushPath: Bool { onLeave != nil }
        var sequence: UInt64
        var position: Position
        var bytes = 0
        var lastWrite: ContinuousClock.Instant

        init(
            target: any PushTarget, encoder: EventEncoder, meter: (any SourceMeter)?, heartbeat: PushHeartbeat, sequence: UInt64, position: Position
        ) {
            self.target = target
            self.form = encoder.formIndex
            self.meter = meter
            var beat = ByteBuffer()
            encoder.heartbeat(into: &beat)
            self.heartbeat = beat.readableBytes > 0 ? (beat, heartbeat.after) : nil
            self.lastWrite = heartbeat.quietSince
            self.sequence = sequence
            self.position = position
        }

        /// On the lane: a heartbeat when the connection has been quiet for long enough.
        func beatIfQuiet(now: ContinuousClock.Instant) {
            guard isOnThePushPath, let heartbeat, now - lastWrite >= heartbeat.after, target.isWritable else { return }
            bytes += target.writeHeartbeat(heartbeat.bytes)
            lastWrite = now
        }

        func wait(_ onLeave: @escaping @Sendable (LivePushOutcome<Position>) -> Void) { self.onLeave = onLeave }

        /// Resumes the client's task (once).
        func leave(_ reason: LivePushExit) {
            guard let onLeave else { return }
            self.onLeave = nil
            onLeave(LivePushOutcome(reason: reason, sequence: sequence, position: position, bytes: bytes, lastWrite: lastWrite))
        }
    }

    /// The members of one event loop, and the records published for them that its job has not
    /// taken yet: records published while a job is pending join it, so under load each write
    /// carries more records instead of jobs queueing up.
    private struct Lane {
        var target: any PushTarget
        var members: [ObjectIdentifier: Member] = [:]
        var pending = PushBatch<Position>()
        var scheduled = false
    }

    private struct State {
        var published: UInt64 = 0
        var lanes: [ObjectIdentifier: Lane] = [:]
        var encoders: [Int: (encoder: EventEncoder, members: Int)] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    public init() {}

    /// Pushes the live events to `target` from after `sequence` (the last record the client has,
    /// `position` after it) until the client leaves; `nil` at once when it cannot join: records
    /// after `sequence` are already out (read them first), the log is closed, or the client stopped.
    ///
    /// `encoder` makes the bytes of the member's form (no grep; framed for a multiplexed
    /// stream); the member's meter counts what is sent (once per batch and lane).
    func follow(_ member: Member, encoder: EventEncoder) async -> LivePushOutcome<Position>? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<LivePushOutcome<Position>?, Never>) in
                if !join(member, encoder: encoder, onLeave: { continuation.resume(returning: $0) }) { continuation.resume(returning: nil) }
            }
        } onCancel: {
            remove(member)
        }
    }

    /// Like ``follow(_:encoder:)`` without waiting: `true` when the member joined, and then
    /// `onLeave` is called once, with how it left (on its lane, or where ``remove(_:)`` runs it).
    func join(_ member: Member, encoder: EventEncoder, onLeave: @escaping @Sendable (LivePushOutcome<Position>) -> Void) -> Bool {
        member.wait(onLeave)
        let key = ObjectIdentifier(member)
        return state.withLock { state -> Bool in
            guard !state.closed, !member.stopRequested.load(ordering: .acquiring), member.sequence >= state.published else { return false }
            let lane = member.target.lane
            state.lanes[lane, default: Lane(target: member.target)].members[key] = member
            state.encoders[member.form, default: (encoder, 0)].members += 1
            return true
        }
    }

    /// Makes `member` leave (its stream stopped); it resumes with ``LivePushExit/stopped``.
    func remove(_ member: Member) {
        member.stopRequested.store(true, ordering: .releasing)
        if take(member) { member.target.run { member.leave(.stopped) } }
    }

    /// Removes `member` from its lane; `false` when it was not there.
    private func take(_ member: Member) -> Bool {
        state.withLock { state in
            let lane = member.target.lane
            guard state.lanes[lane]?.members.removeValue(forKey: ObjectIdentifier(member)) != nil else { return false }
            if state.lanes[lane]?.members.isEmpty == true { state.lanes[lane] = nil }
            if let entry = state.encoders[member.form] {
                state.encoders[member.form] = entry.members > 1 ? (entry.encoder, entry.members - 1) : nil
            }
            return true
        }
    }

    /// Pushes appended records (in sequence order, from the log's one appender).
    func publish(_ records: [LogRecord<Position>]) {
        guard let last = records.last else { return }
        state.withLock { state in
            state.published = last.sequence
            guard !state.lanes.isEmpty, !state.closed else { return }
            let batch = PushBatch(encoding: records, with: state.encoders.values.map(\.encoder))
            for key in Array(state.lanes.keys) {
                state.lanes[key]?.pending.append(batch)
                guard let lane = state.lanes[key], !lane.scheduled else { continue }
                state.lanes[key]?.scheduled = true
                lane.target.run { [self] in drain(lane: key) }
            }
        }
    }

    /// On the lane: writes what was published since the last job to the lane's members.
    private func drain(lane key: ObjectIdentifier) {
        let taken: (PushBatch<Position>, [Member])? = state.withLock { state in
            guard var lane = state.lanes[key] else { return nil }
            defer {
                lane.pending = PushBatch()
                lane.scheduled = false
                state.lanes[key] = lane
            }
            return (lane.pending, Array(lane.members.values))
        }
        guard let (batch, members) = taken else { return }
        deliver(batch, to: members)
    }

    /// Most bytes one lane job writes to one member: what its connection queues stays bounded
    /// however large a batch grew while the lane was busy.
    static var maxBytesPerJob: Int { 64 << 10 }

    /// On the lane: writes the batch to every member that is still on it and takes bytes, in one
    /// write of the records it has not sent yet; one that does not take bytes, or that took
    /// ``maxBytesPerJob`` of it, is let go.
    private func deliver(_ batch: PushBatch<Position>, to members: [Member]) {
        guard let newest = batch.lastSequence else { return }
        let now = ContinuousClock.now
        var sent: (events: Int, bytes: Int) = (0, 0)
        for member in members where member.sequence < newest {
            guard member.isOnThePushPath else { continue }
            guard member.target.isWritable else {
                if take(member) { member.leave(.notWritable) }
                continue
            }
            // A batch that grew large while the lane was busy: a member takes at most its share
            // of it; the rest it reads on its own, at the pace its client reads.
            let part = batch.part(after: member.sequence, form: member.form, maxBytes: Self.maxBytesPerJob)
            guard let bytes = part.bytes else {
                member.sequence = part.sequence
                member.position = part.position
                continue
            }
            guard let written = member.target.write(bytes) else {
                if take(member) { member.leave(.notWritable) }
                continue
            }
            member.target.flush()
            member.sequence = part.sequence
            member.position = part.position
            member.bytes += written
            member.lastWrite = now
            sent.events += part.events
            sent.bytes += written
            if member.sequence < newest, take(member) { member.leave(.notWritable) }
        }
        if sent.bytes > 0 { members.first?.meter?.sent(events: sent.events, bytes: sent.bytes) }
    }

    /// Sends a heartbeat to every member quiet for longer than its heartbeat interval.
    func tick() {
        let lanes = state.withLock { Array($0.lanes.values) }
        let now = ContinuousClock.now
        for lane in lanes {
            let members = Array(lane.members.values)
            lane.target.run { for member in members { member.beatIfQuiet(now: now) } }
        }
    }

    /// Every member leaves with ``LivePushExit/closed``, and none joins again.
    func close() {
        let lanes = state.withLock { state in
            state.closed = true
            defer {
                state.lanes = [:]
                state.encoders = [:]
            }
            return Array(state.lanes.values)
        }
        for lane in lanes {
            let members = Array(lane.members.values)
            lane.target.run { for member in members { member.leave(.closed) } }
        }
    }

    /// Clients on the push path now.
    public var memberCount: Int { state.withLock { $0.lanes.values.reduce(0) { $0 + $1.members.count } } }
}

/// Records published to the push path, encoded once per format into one buffer each, so a member
/// that is up to date gets all it lacks in one write (a slice of the shared bytes).
struct PushBatch<Position: Sendable>: Sendable {
    /// The records' sequence numbers (consecutive) and the positions after them.
    private(set) var sequences: [UInt64] = []
    private(set) var positions: [Position] = []
    /// Per form (``EventEncoder/formIndex``): the records' bytes one after the other (`nil`: no
    /// member takes that form), the offset where each record's bytes end, and how many events
    /// the records up to each one carry.
    private var forms: [ByteBuffer?] = Array(repeating: nil, count: EventEncoder.formCount)
    private var ends: [[Int]] = Array(repeating: [], count: EventEncoder.formCount)
    private var events: [[Int]] = Array(repeating: [], count: EventEncoder.formCount)

    init() {}

    /// Encodes `records` with each of `encoders` (one per form).
    init(encoding records: [LogRecord<Position>], with encoders: some Sequence<EventEncoder>) {
        sequences = records.map(\.sequence)
        positions = records.map(\.to)
        for encoder in encoders {
            let index = encoder.formIndex
            var bytes = ByteBufferAllocator().buffer(capacity: 0)
            var recordEnds: [Int] = []
            var recordEvents: [Int] = []
            recordEnds.reserveCapacity(records.count)
            recordEvents.reserveCapacity(records.count)
            var count = 0
            for record in records {
                if let event = record.event, encoder.writes(event.kind) {
                    let before = bytes.writerIndex
                    encoder.encode(record, into: &bytes)
                    if bytes.writerIndex > before { count += 1 }
                }
                recordEnds.append(bytes.writerIndex)
                recordEvents.append(count)
            }
            forms[index] = bytes
            ends[index] = recordEnds
            events[index] = recordEvents
        }
    }

    var lastSequence: UInt64? { sequences.last }

    /// Adds the records of `later` (published after these, with the same formats or more).
    mutating func append(_ later: PushBatch) {
        guard !sequences.isEmpty else {
            self = later
            return
        }
        let count = sequences.count
        for index in forms.indices {
            switch (forms[index], later.forms[index]) {
            case (nil, nil):
                continue
            case (.some, let added):
                var joined = forms[index].take()!
                let offset = joined.writerIndex
                let counted = events[index].last ?? 0
                if let added {
                    joined.writeImmutableBuffer(added)
                    ends[index].append(contentsOf: later.ends[index].lazy.map { $0 + offset })
                    events[index].append(contentsOf: later.events[index].lazy.map { $0 + counted })
                } else {
                    ends[index].append(contentsOf: repeatElement(offset, count: later.sequences.count))
                    events[index].append(contentsOf: repeatElement(counted, count: later.sequences.count))
                }
                forms[index] = joined
            case (nil, let added?):
                forms[index] = added
                ends[index] = Array(repeating: 0, count: count) + later.ends[index]
                events[index] = Array(repeating: 0, count: count) + later.events[index]
            }
        }
        sequences.append(contentsOf: later.sequences)
        positions.append(contentsOf: later.positions)
    }

    /// What a member that has sent up to `sequence` gets of this batch in `form`: the records after
    /// it, up to the first that brings it to `maxBytes` (`bytes` is `nil` when none of them writes
    /// anything in that form), and the sequence and position after the last of them.
    func part(after sequence: UInt64, form index: Int, maxBytes: Int) -> (bytes: ByteBuffer?, events: Int, sequence: UInt64, position: Position) {
        let first = sequences.partitioningIndex { $0 > sequence }
        precondition(first < sequences.count, "a member up to date with the batch gets no part of it")
        // No member took this form when these records were published: none of them writes in it.
        guard let form = forms[index] else { return (nil, 0, sequences[sequences.count - 1], positions[positions.count - 1]) }
        let startOffset = first == 0 ? 0 : ends[index][first - 1]
        let startEvents = first == 0 ? 0 : events[index][first - 1]
        let recordEnds = ends[index]
        let last = min(recordEnds[first...].partitioningIndex { $0 - startOffset >= maxBytes }, recordEnds.count - 1)
        let length = recordEnds[last] - startOffset
        let bytes = length > 0 ? form.getSlice(at: form.readerIndex + startOffset, length: length) : nil
        return (bytes, events[index][last] - startEvents, sequences[last], positions[last])
    }
}

extension RandomAccessCollection {
    /// The index of the first element for which `isAfter` holds, all the ones before it failing it
    /// (`endIndex` when none holds).
    func partitioningIndex(where isAfter: (Element) -> Bool) -> Index {
        var low = startIndex
        var count = distance(from: startIndex, to: endIndex)
        while count > 0 {
            let half = count / 2
            let middle = index(low, offsetBy: half)
            if isAfter(self[middle]) {
                count = half
            } else {
                low = index(after: middle)
                count -= half + 1
            }
        }
        return low
    }
}

extension StreamFormat {
    var formIndex: Int {
        switch self {
        case .eventStream: 0
        case .ndjson: 1
        case .plainText: 2
        }
    }
}

extension EventEncoder {
    /// How many forms a record is encoded in: every format, unframed and framed.
    static var formCount: Int { 6 }

    /// Which of a record's forms this encoder makes: its format, unframed or framed.
    var formIndex: Int { Self.formIndex(format, framed: isFramed) }

    static func formIndex(_ format: StreamFormat, framed: Bool) -> Int { format.formIndex + (framed ? 3 : 0) }
}
