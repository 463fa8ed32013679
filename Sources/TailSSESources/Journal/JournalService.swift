#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Synchronization
import TailSSECore

/// Follows a ``JournalSource``: one dedicated thread owns the follower's `sd_journal` for its whole
/// life, and the source's reader pool serves clients' own reads. On shutdown the source's streams end.
///
/// ``JournalSource/begin()`` starts one with ``start()`` and ``JournalSource/end(reason:)`` stops
/// it with ``stop(finalEvent:)``; ``run()`` does both around a graceful shutdown, for use as a
/// service of its own.
public final class JournalService: Service, CustomStringConvertible {
    public var description: String { "JournalService(\(source.location))" }
    private let source: JournalSource
    private let stopping = Atomic<Bool>(false)
    private let wake: WakePipe
    private let thread = Mutex<DedicatedThread?>(nil)

    public init(source: JournalSource) throws {
        self.source = source
        self.wake = try WakePipe()
    }

    public func run() async throws {
        try await start()
        await withGracefulShutdownHandler {
            try? await gracefulShutdown()
        } onGracefulShutdown: {}
        await stop(finalEvent: nil)
    }

    /// Starts the reader pool and the follower thread; returns once the follower has opened the
    /// journal (or found it unreadable, to be retried), so the first clients find it ready.
    func start() async throws {
        try source.pool.start()
        let settled = Completion()
        let follower = JournalFollower(source: source, settled: settled)
        let started = try DedicatedThread { [self, follower] in
            follower.run(wake: wake, until: { self.stopping.load(ordering: .relaxed) })
        }
        thread.withLock { $0 = started }
        await settled.wait()
    }

    /// Stops the follower thread and the pool; the source's streams end, after `finalEvent` if any.
    func stop(finalEvent: StreamEvent?) async {
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        if let started = thread.withLock({ $0 }) { await started.join() }
        source.setFollowing(false)
        source.log.close(finalEvent: finalEvent)
        await source.pool.stop()
    }
}

/// A pipe that wakes a thread blocked in `poll`.
final class WakePipe: Sendable {
    let readEnd: Int32
    private let writeEnd: Int32

    init() throws(SystemError) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SystemError(errno: errno, operation: "pipe") }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func signal() {
        var one: UInt8 = 1
        _ = write(writeEnd, &one, 1)
    }

    func drain() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(readEnd, &bytes, bytes.count) > 0 {}
    }
}

/// The loop on the follower thread: drain new entries into the shared log, then wait for the
/// journal to change. Every error is logged and retried with a pause, never spun on.
///
/// Degrade, don't die:
/// - A `--journal-directory` is checked before each open and every 250 ms while followed (an
///   `sd_journal` keeps its files open, so it would not notice): gone or unreadable, the source
///   gets a problem (`/healthz` 503) and the journal is closed; once the directory is back it is
///   reopened where the follower left off (by cursor; a `reset` when the entry is gone). A
///   directory replaced by another is reopened the same way.
/// - When inotify's limits are reached (`sd_journal_get_fd` fails, or the journal got no watch),
///   the journal is polled every 250 ms and reopened every 2 s to find new journal files and to
///   get inotify back; the source's ``JournalSource/notice`` says so.
private final class JournalFollower: @unchecked Sendable {
    private let source: JournalSource
    private var journal: JournalHandle?
    /// Whether inotify watches the open journal; `false`: it is polled.
    private var watched = true
    private var openedAt = ContinuousClock.now
    /// The identity of the `--journal-directory` the journal was opened in.
    private var directory: FileIdentity?
    private var lastDirectoryCheck = ContinuousClock.now
    private var position: JournalPosition?
    private var problem: String? = "not opened yet"
    private var lastEntry = ContinuousClock.now - .seconds(60)
    /// The hosts of the entries read, published to the source when it changes.
    private var roster = HostRoster()
    private let settled: Completion

    /// - Parameter settled: finished after the first attempt to open the journal.
    init(source: JournalSource, settled: Completion) {
        self.source = source
        self.settled = settled
    }

    func run(wake: WakePipe, until stop: () -> Bool) {
        while !stop() {
            do {
                let journal = try openIfNeeded()
                report(problem: nil)
                try drain(journal)
                if watched {
                    var descriptors = [
                        pollfd(fd: try journal.descriptor(), events: Int16(POLLIN), revents: 0),
                        pollfd(fd: wake.readEnd, events: Int16(POLLIN), revents: 0),
                    ]
                    let ready = poll(&descriptors, 2, pollTimeout(journal))
                    if ready < 0, errno != EINTR { throw SystemError(errno: errno, operation: "poll") }
                    if descriptors[1].revents != 0 { wake.drain() }
                    try journal.process()
                } else {
                    pause(wake: wake, milliseconds: Int32(InotifyShortage.pollInterval * 1000))
                    wake.drain()
                    if ContinuousClock.now - openedAt >= .seconds(InotifyShortage.journalReopenInterval) { self.journal = nil }
                }
                try checkDirectory()
            } catch {
                // Not following before the problem is told: whoever sees the problem sees both.
                journal = nil
                source.setFollowing(false)
                report(problem: "\(error)")
                pause(wake: wake, milliseconds: 1000)
            }
        }
        journal = nil
    }

    /// Opens the journal and places it after the last entry sent (or at the current end).
    private func openIfNeeded() throws(SystemError) -> JournalHandle {
        if let journal { return journal }
        if case .directory(let path) = source.location { directory = try Self.identity(ofDirectory: path) }
        let journal = try JournalHandle(source.location)
        openedAt = .now
        noteHosts(in: journal)
        let shortage = try journal.inotifyShortage()
        watched = shortage == nil
        report(polling: shortage.map { InotifyShortage.notice(errno: $0, operation: $0 == ENOSPC ? .watch : .instance) })
        var resumed = false
        switch position {
        case .after(let cursor)?:
            if try journal.seek(cursor: cursor), try journal.next(), journal.isAt(cursor: cursor) { resumed = true }
        case .head?:
            // Nothing was read yet: every entry the journal holds now is new.
            try journal.seekHead()
            resumed = true
        case nil:
            break
        }
        if !resumed {
            try journal.seekTail()
            let current: JournalPosition
            if try journal.previous(skipping: 1) == 1 {
                current = .after(cursor: try journal.cursor())
            } else {
                try journal.seekHead()
                current = .head
            }
            if let previous = position, previous != current {
                source.log.append([LogRecord(from: previous, to: current, event: .marker(.reset, id: current.cursor, message: "the journal reader had to reopen the journal and lost its place; continuing from the newest entries"))])
                source.meter.reset()
            } else if position == nil {
                source.log.begin(at: current)
            }
            position = current
            source.logger.trace("follower starts", metadata: ["at": "\(current)"])
        }
        self.journal = journal
        source.setFollowing(true)
        return journal
    }

    /// journald tells followers about new entries only from a timer (250 ms), so while entries
    /// flow the follower also looks for them every millisecond; when quiet, every 50 ms.
    private func pollTimeout(_ journal: JournalHandle) -> Int32 {
        let active = ContinuousClock.now - lastEntry < .seconds(1)
        let paced = Int32(max(1, FanOutPacing.pauseMicroseconds(waking: source.log.wakingCount, pushed: source.pushedClientCount) / 1000))
        let own: Int32 = active ? paced : 50
        let requested = journal.timeoutMilliseconds()
        return requested < 0 ? own : min(requested, own)
    }

    private func drain(_ journal: JournalHandle) throws(SystemError) {
        guard var from = position else { return }
        var batch: [LogRecord<JournalPosition>] = []
        while try journal.next() {
            let entry = try journal.entry(keepingFields: true)
            let to = JournalPosition.after(cursor: entry.cursor)
            lastEntry = .now
            if let host = entry.host, roster.note(host) { rosterChanged = true }
            batch.append(LogRecord(from: from, to: to, event: .journal(entry)))
            from = to
            if batch.count == 256 {
                publishHosts()
                source.log.append(batch)
                source.meter.read(lines: batch.count)
                batch.removeAll(keepingCapacity: true)
                position = from
            }
        }
        if !batch.isEmpty { source.logger.trace("follower appended", metadata: ["count": "\(batch.count)", "to": "\(from)"]) }
        publishHosts()
        source.log.append(batch)
        source.meter.read(lines: batch.count)
        position = from
    }

    /// Whether the roster changed since the source last got it.
    private var rosterChanged = false

    /// Gives the source the roster if it changed: before the entries that changed it are
    /// appended, so a client that sees an entry finds its host in `GET /sources`.
    private func publishHosts() {
        guard rosterChanged else { return }
        rosterChanged = false
        source.setHosts(roster)
    }

    /// Adds the hosts the journal's files hold (`_HOSTNAME` values) to the roster, so
    /// `GET /sources` lists them before they log again.
    private func noteHosts(in journal: JournalHandle) {
        do {
            try journal.forEachUniqueValue(of: "_HOSTNAME") { host in
                if roster.note(host) { rosterChanged = true }
                return roster.isComplete
            }
        } catch {
            source.logger.debug("cannot list the journal's hosts", metadata: ["error": .string("\(error)")])
        }
        publishHosts()
    }

    /// Closes the journal when its directory is gone, unreadable (throws: the source's problem)
    /// or replaced by another (reopened on the next pass); looks at most every 250 ms. Every 2 s,
    /// notes whether the directory holds hosts' journals written separately.
    private func checkDirectory() throws(SystemError) {
        guard case .directory(let path) = source.location, journal != nil,
              ContinuousClock.now - lastDirectoryCheck >= .seconds(InotifyShortage.pollInterval)
        else { return }
        lastDirectoryCheck = .now
        if ContinuousClock.now - lastListing >= .seconds(2) {
            lastListing = .now
            report(split: JournalLineages.splitHostNotice(fileNames: directoryEntries(path)))
        }
        let current = try Self.identity(ofDirectory: path)
        if current != directory {
            source.logger.info("the journal directory was replaced; reopening it", metadata: ["directory": .string(path)])
            journal = nil
        }
    }

    /// The identity of the directory at `path`, which must be readable; throws why not.
    private static func identity(ofDirectory path: String) throws(SystemError) -> FileIdentity {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SystemError(errno: errno, operation: "journal directory \(path)") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SystemError(errno: errno, operation: "journal directory \(path)") }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    private var pollingNotice: String?
    private var splitNotice: String?
    private var lastListing = ContinuousClock.now - .seconds(60)

    /// Records whether the directory holds hosts' journals written separately (logged once per change).
    private func report(split notice: String?) {
        guard notice != splitNotice else { return }
        splitNotice = notice
        source.setSplitNotice(notice)
        if let notice { source.logger.warning("entries that arrive late can be skipped", metadata: ["location": .string(source.location.description), "reason": .string(notice)]) }
    }

    /// Records that the journal is polled (logged once per change) or watched by inotify again.
    private func report(polling notice: String?) {
        guard notice != pollingNotice else { return }
        pollingNotice = notice
        source.setNotice(notice)
        if let notice {
            source.logger.warning("inotify cannot watch the journal; polling it", metadata: ["location": .string(source.location.description), "reason": .string(notice)])
        } else {
            source.logger.info("inotify watches the journal again", metadata: ["location": .string(source.location.description)])
        }
    }

    private func report(problem: String?) {
        settled.finish()
        guard problem != self.problem else { return }
        self.problem = problem
        source.setProblem(problem)
        if let problem {
            source.logger.warning("cannot follow the journal; retrying", metadata: ["location": .string(source.location.description), "problem": .string(problem)])
        } else {
            source.logger.info("following the journal", metadata: ["location": .string(source.location.description)])
        }
    }

    private func pause(wake: WakePipe, milliseconds: Int32) {
        var descriptor = pollfd(fd: wake.readEnd, events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, milliseconds)
    }
}
