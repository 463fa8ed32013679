import Logging
import NIOCore
import Synchronization
import TailSSECore

/// The systemd journal as a ``LogSource`` (`--journal`, `--journal-directory DIR`).
///
/// One follower thread (``JournalService``) reads every new entry and appends it to an
/// ``EventLog`` shared by all clients, who filter it in memory. A client that is behind what the
/// log holds (a backlog, a resume, a slow reader) reads the journal itself from its own cursor on
/// a ``JournalReaderPool`` thread, with its filter as sd_journal matches: the journal is the buffer.
/// As a ``ManagedSource`` it starts its ``JournalService`` in ``begin()`` and stops it in
/// ``end(reason:)``.
public final class JournalSource: ManagedSource {
    public let name: String
    public let location: JournalLocation
    public var kind: String { "journal" }
    public var details: [(key: String, value: String)] {
        let watch = ("watch", pollingNote.withLock { $0 } == nil ? "inotify" : "polling")
        var details: [(key: String, value: String)]
        switch location {
        case .local: details = [("journal", "local"), watch]
        case .directory(let path): details = [("journal", "directory"), ("directory", path), watch]
        }
        if !hostList.withLock({ $0.complete }) {
            details.append(("hostsNote", "only the first \(HostRoster.defaultLimit) hosts seen are listed"))
        }
        return details
    }

    /// `hosts`: the `_HOSTNAME`s of the entries in the journal when it was opened and of every entry
    /// the follower read since, sorted; at most ``HostRoster/defaultLimit`` (then `hostsNote` says so).
    public var detailLists: [(key: String, values: [String])] { [("hosts", hosts)] }

    /// The hosts seen (see ``detailLists``).
    public var hosts: [String] { hostList.withLock { $0.names } }
    private let hostList = Mutex<(names: [String], complete: Bool)>(([], true))
    /// Publishes the follower's roster.
    func setHosts(_ roster: HostRoster) {
        let names = roster.names
        hostList.withLock { $0 = (names, roster.isComplete) }
    }

    public var definition: String { "journal \(location) shared-buffer-bytes=\(sharedBytes)" }

    let log: EventLog<JournalPosition>
    let pool: JournalReaderPool
    let logger: Logger
    private let sharedBytes: Int
    /// Counts the source's reads, streams and clients' sends for `/metrics`.
    public let meter: any SourceMeter
    private let service = Mutex<JournalService?>(nil)
    private let following = Atomic<Bool>(false)
    private let streams = Atomic<Int>(0)

    /// Most entries one client read returns, so every client gets its turn on the pool.
    static let entriesPerRead = 1024

    /// - Parameters:
    ///   - sharedBytes: bytes of recent entries kept in memory for all clients to share.
    ///   - readerThreads: threads (each with its own `sd_journal`) for clients' own reads.
    ///   - meter: counts entries read, resumes, resets and catch-up reads.
    public init(
        name: String = "journal", location: JournalLocation, sharedBytes: Int = 4 << 20, readerThreads: Int = 2,
        meter: any SourceMeter = UncountedSource(), logger: Logger
    ) {
        self.name = name
        self.meter = meter
        self.location = location
        self.sharedBytes = sharedBytes
        self.log = EventLog(capacityBytes: sharedBytes)
        var logger = logger
        logger[metadataKey: "source"] = .string(name)
        self.logger = logger
        self.pool = JournalReaderPool(location: location, threads: readerThreads, logger: logger)
    }

    public var isFollowing: Bool { following.load(ordering: .relaxed) }
    /// Why the journal cannot be followed right now (e.g. its directory vanished), if it cannot.
    public var problem: String? { problemNote.withLock { $0 } }
    private let problemNote = Mutex<String?>(nil)
    func setProblem(_ problem: String?) { problemNote.withLock { $0 = problem } }
    public var isHealthy: Bool { isFollowing && problem == nil }
    /// Why the journal is polled rather than watched with inotify (a limit is reached), if it is;
    /// and when its directory holds hosts' journals written separately (``JournalLineages``).
    public var notice: String? {
        let notes = [pollingNote.withLock { $0 }, splitNote.withLock { $0 }].compactMap { $0 }
        return notes.isEmpty ? nil : notes.joined(separator: "; ")
    }
    private let pollingNote = Mutex<String?>(nil)
    private let splitNote = Mutex<String?>(nil)
    func setNotice(_ notice: String?) { pollingNote.withLock { $0 = notice } }
    func setSplitNotice(_ notice: String?) { splitNote.withLock { $0 = notice } }
    public var clientCount: Int { streams.load(ordering: .relaxed) }
    public var pushedClientCount: Int { log.push.memberCount }
    public var bytesAppended: UInt64 { log.bytesAppended }
    func setFollowing(_ value: Bool) { following.store(value, ordering: .relaxed) }
    func streamEnded() { streams.subtract(1, ordering: .relaxed) }

    public func tick() { log.tick() }

    public func begin() async throws {
        let started = try JournalService(source: self)
        service.withLock { $0 = started }
        try await started.start()
    }

    public func end(reason: String?) async {
        guard let started = service.withLock({ $0 }) else { return }
        await started.stop(finalEvent: reason.map { endEvent(reason: $0) })
        if let reason { logger.info("source ended", metadata: ["reason": .string(reason)]) }
    }

    public func openStream(_ request: StreamRequest, encoder: EventEncoder) async -> any EventStream {
        streams.add(1, ordering: .relaxed)
        let filter = request.journalFilter
        var start: JournalPosition
        var pending: [StreamEvent] = []
        if let resumeID = request.resumeID {
            switch await resolve(resumeID) {
            case .success(let position):
                meter.resumed()
                start = position
            case .failure(let problem):
                meter.reset()
                start = await tailPosition(request.tail, filter: filter)
                pending.append(.marker(.reset, id: start.cursor, message: problem.description + "; starting from the tail"))
            }
        } else {
            start = await tailPosition(request.tail, filter: filter)
        }
        return JournalEventStream(source: self, encoder: encoder, filter: filter, start: start, pending: pending)
    }

    /// Why a cursor cannot be resumed from.
    struct ResumeFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// The position just after the entry a client's cursor names, if the journal still holds it.
    func resolve(_ cursor: String) async -> Result<JournalPosition, ResumeFailure> {
        guard (1...512).contains(cursor.utf8.count), cursor.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(ResumeFailure(description: "the id is not a journal cursor"))
        }
        do {
            return try await pool.run { journal -> Result<JournalPosition, ResumeFailure> in
                journal.removeFilter()
                guard try journal.seek(cursor: cursor) else { return .failure(ResumeFailure(description: "the id is not a journal cursor")) }
                guard try journal.next(), journal.isAt(cursor: cursor) else {
                    return .failure(ResumeFailure(description: "the journal no longer holds the entry this id names (vacuumed, or from another journal)"))
                }
                return .success(.after(cursor: cursor))
            }
        } catch {
            return .failure(ResumeFailure(description: "the journal cannot be read (\(error))"))
        }
    }

    /// The position before the last `tail` entries that match `filter`.
    func tailPosition(_ tail: TailStart, filter: JournalFilter) async -> JournalPosition {
        let count: Int
        switch tail {
        case .all: return .head
        case .last(let last): count = last
        }
        do {
            return try await pool.run { journal -> JournalPosition in
                try journal.apply(filter)
                try journal.seekTail()
                let moved = try journal.previous(skipping: count + 1)
                return moved == count + 1 ? .after(cursor: try journal.cursor()) : .head
            }
        } catch {
            logger.warning("cannot find the tail of the journal", metadata: ["error": .string("\(error)")])
            return log.latestPosition ?? .head
        }
    }

    /// What one client read produced.
    struct Read: Sendable {
        /// The encoded events.
        var output: ByteBuffer
        /// Where the client stands after them.
        var position: JournalPosition
        /// The read reached the end of the journal.
        var reachedEnd: Bool
        /// The position's entry is no longer in the journal (vacuumed).
        var vanished = false
        /// How many entries ``output`` holds.
        var entries = 0
    }

    /// Reads the entries after `position` that match `filter` and encodes them.
    ///
    /// A read that reaches the end finishes with an unfiltered walk from the entry that was last
    /// when it started, so the position it returns is the journal's last entry: one the follower
    /// appends to the shared log, where the client can join it.
    func read(after position: JournalPosition, filter: JournalFilter, encoder: EventEncoder, maxBytes: Int) async throws -> Read {
        meter.caughtUp()
        return try await pool.run { journal -> Read in
            journal.removeFilter()
            try journal.seekTail()
            let lastAtStart: String? = try journal.previous(skipping: 1) == 1 ? try journal.cursor() : nil
            if case .after(let cursor) = position {
                guard try journal.seek(cursor: cursor), try journal.next(), journal.isAt(cursor: cursor) else {
                    return Read(output: ByteBuffer(), position: position, reachedEnd: false, vanished: true)
                }
            }
            try journal.apply(filter)
            var output = ByteBufferAllocator().buffer(capacity: min(64 << 10, maxBytes))
            var reached = position
            var sent = Set<String>()
            var count = 0
            var onNext = try Self.seek(journal, after: position)
            while count < Self.entriesPerRead, output.readableBytes < maxBytes {
                guard try onNext || journal.next() else {
                    count += try Self.walkToEnd(journal, from: lastAtStart, skipping: sent, filter: filter, encoder: encoder, output: &output, reached: &reached)
                    return Read(output: output, position: reached, reachedEnd: true, entries: count)
                }
                onNext = false
                let entry = try journal.entry(keepingFields: false)
                encoder.encodeEntry(entry, into: &output)
                if !filter.isEmpty { sent.insert(entry.cursor) }
                reached = .after(cursor: entry.cursor)
                count += 1
            }
            return Read(output: output, position: reached, reachedEnd: false, entries: count)
        }
    }

    /// Seeks so that the next entry read is the first (matching) one after `position`; `true`
    /// when the journal already stands on it.
    private static func seek(_ journal: JournalHandle, after position: JournalPosition) throws -> Bool {
        switch position {
        case .head:
            try journal.seekHead()
            return false
        case .after(let cursor):
            _ = try journal.seek(cursor: cursor)
            guard try journal.next() else { return false }
            return !journal.isAt(cursor: cursor)
        }
    }

    /// After a filtered read hit the end: every entry after `lastAtStart` was either sent, does not
    /// match, or arrived during the read; send the last kind and stand on the journal's last entry.
    /// Returns how many entries it encoded.
    private static func walkToEnd(
        _ journal: JournalHandle, from lastAtStart: String?, skipping sent: Set<String>, filter: JournalFilter,
        encoder: EventEncoder, output: inout ByteBuffer, reached: inout JournalPosition
    ) throws -> Int {
        guard !filter.isEmpty else { return 0 }
        var encoded = 0
        journal.removeFilter()
        let start: JournalPosition = lastAtStart.map { .after(cursor: $0) } ?? .head
        var walked: JournalPosition? = lastAtStart == nil ? nil : start
        var onNext = try seek(journal, after: start)
        while try onNext || journal.next() {
            onNext = false
            let entry = try journal.entry(keepingFields: true)
            walked = .after(cursor: entry.cursor)
            if !sent.contains(entry.cursor), filter.matches(entry.fields) {
                encoder.encodeEntry(entry, into: &output)
                encoded += 1
            }
        }
        if let walked { reached = walked }
        return encoded
    }
}
