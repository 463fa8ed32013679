#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Synchronization
import TailSSECore

/// Follows every ``FileSource`` with one inotify instance on one dedicated thread.
///
/// Sources join with ``add(_:)`` and leave with ``remove(_:)`` at any time (a reload), each
/// returning once the thread has done it. The thread polls the inotify descriptor and a wake pipe,
/// syncs the followers an event concerns, resyncs all of them after `IN_Q_OVERFLOW`, and syncs all
/// once a second anyway so missing or unreadable files are retried. The thread starts with the
/// service; ``run()`` stops it on graceful shutdown and ends the streams of sources still followed.
///
/// Degrade, don't die: when inotify's limits are reached (no instance: `max_user_instances`; no
/// watch: `max_user_watches`), the files it cannot watch are polled every 250 ms
/// (``InotifyShortage/pollInterval``) — the same sync, which finds appends, renames and
/// truncations by `stat` of the path and `fstat` of the open file — and their source says so
/// (``FileSource/notice``). Missing watches are retried at every poll, a missing instance every
/// 5 s, so a file goes back to inotify as soon as the limit allows.
public final class FileWatchService: Service, CustomStringConvertible {
    public var description: String { "FileWatchService" }
    private let logger: Logger
    private let wakeReader: Int32
    private let wakeWriter: Int32
    private let mailbox: Mailbox
    private let loop: WatchLoop
    private let thread: DedicatedThread

    public init(logger: Logger) throws {
        self.logger = logger
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SystemError(errno: errno, operation: "pipe") }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        self.wakeReader = ends[0]
        self.wakeWriter = ends[1]
        let mailbox = Mailbox()
        let loop = WatchLoop(logger: logger)
        self.mailbox = mailbox
        self.loop = loop
        let wake = ends[0]
        let writer = ends[1]
        do {
            self.thread = try DedicatedThread {
                loop.run(wake: wake, mailbox: mailbox)
                loop.closeInstance()
                close(wake)
                close(writer)
            }
        } catch {
            loop.closeInstance()
            close(wake)
            close(writer)
            throw error
        }
    }

    /// A service dropped without running (tailsse failed to start) stops its thread, which closes
    /// the descriptors it polls once it has left its loop.
    deinit {
        if mailbox.stopOnce() { wake() }
    }

    /// Starts following `source`: returns once its file was read to its last complete line (or
    /// found missing, to be retried), so the first clients find it ready.
    func add(_ source: FileSource) async {
        await post(.add, source)
    }

    /// Makes the follower of `source` look at its file now: returns once it has published what it
    /// found (a rotation or truncation it had not seen yet included).
    func sync(_ source: FileSource) async {
        await post(.sync, source)
    }

    /// Stops following `source`; its log gets nothing more after this returns.
    func remove(_ source: FileSource) async {
        await post(.remove, source)
    }

    /// Loop passes of the watch thread so far: it advances at least once a second while the
    /// thread is alive and not stuck (the watchdog checks it).
    public var passes: UInt64 { mailbox.passes.load(ordering: .relaxed) }

    public func run() async throws {
        await withGracefulShutdownHandler {
            try? await gracefulShutdown()
        } onGracefulShutdown: {}
        if mailbox.stopOnce() { wake() }
        await thread.join()
        for source in loop.followedSources {
            source.setFollowing(false)
            source.log.close()
        }
        for request in mailbox.takeAll() { request.done.resume() }
    }

    private func post(_ kind: Mailbox.Request.Kind, _ source: FileSource) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if mailbox.post(.init(kind: kind, source: source, done: continuation)) {
                wake()
            } else {
                continuation.resume()
            }
        }
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWriter, &one, 1)
    }
}

/// Requests for the watch thread, and whether it should stop.
private final class Mailbox: Sendable {
    struct Request: Sendable {
        enum Kind: Sendable { case add, remove, sync }
        var kind: Kind
        var source: FileSource
        var done: CheckedContinuation<Void, Never>
    }

    private let state = Mutex<(requests: [Request], stopping: Bool)>(([], false))
    let passes = Atomic<UInt64>(0)

    /// Queues a request; `false` when the thread has stopped (the caller resumes it).
    func post(_ request: Request) -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.requests.append(request)
            return true
        }
    }

    func takeAll() -> [Request] {
        state.withLock { state in
            defer { state.requests = [] }
            return state.requests
        }
    }

    func stop() { state.withLock { $0.stopping = true } }

    /// Stops the thread; `true` if it was not stopping yet (its descriptors are still open).
    func stopOnce() -> Bool {
        state.withLock { state in
            defer { state.stopping = true }
            return !state.stopping
        }
    }
    var isStopping: Bool { state.withLock { $0.stopping } }
}

/// The loop on the inotify thread; everything it touches stays on that thread.
private final class WatchLoop: @unchecked Sendable {
    private typealias Key = ObjectIdentifier
    /// The inotify instance, or -1 while none can be had (every file is polled).
    private var inotify: Int32 = -1
    /// Why there is no instance, when there is none.
    private var instanceNotice: String?
    private var lastInstanceAttempt = 0.0
    private let logger: Logger
    private var followers: [Key: FileFollower] = [:]
    private var directoryWatches: [Int32: [Key]] = [:]
    private var fileWatches: [Int32: [Key]] = [:]
    private var fileWatchOf: [Key: Int32] = [:]
    private var directoryWatchOf: [Key: Int32] = [:]
    /// The followers inotify cannot watch fully: polled every ``InotifyShortage/pollInterval``.
    private var polled = Set<Key>()
    private let finished = Mutex<[FileSource]>([])

    private static let directoryMask = UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_ONLYDIR)
    private static let fileMask = UInt32(IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_CLOSE_WRITE)

    init(logger: Logger) {
        self.logger = logger
        openInstance()
    }

    /// Creates the inotify instance; on failure (a limit) logs it and leaves every file polled.
    private func openInstance() {
        lastInstanceAttempt = monotonicSeconds()
        let created = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if created >= 0 {
            inotify = created
            if instanceNotice != nil { logger.info("inotify is available again; watching the files with it") }
            instanceNotice = nil
            return
        }
        let notice = InotifyShortage.notice(errno: errno, operation: .instance)
        if instanceNotice == nil {
            logger.warning("cannot create an inotify instance; polling every file", metadata: ["reason": .string(notice)])
        }
        instanceNotice = notice
    }

    /// Closes the inotify instance (after the loop has stopped, or when it never ran).
    func closeInstance() {
        if inotify >= 0 { close(inotify) }
        inotify = -1
    }

    /// The sources followed when the thread stopped (read after it has).
    var followedSources: [FileSource] { finished.withLock { $0 } }

    func run(wake: Int32, mailbox: Mailbox) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var lastSweep = monotonicSeconds()
        var lastPoll = lastSweep
        while !mailbox.isStopping {
            mailbox.passes.add(1, ordering: .relaxed)
            // A negative descriptor is ignored by poll: without an instance only the pipe wakes us.
            var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let untilPoll = lastPoll + InotifyShortage.pollInterval - monotonicSeconds()
            let timeout: Int32 = polled.isEmpty ? 1000 : Int32(max(1, min(untilPoll, InotifyShortage.pollInterval) * 1000))
            let ready = poll(&fds, 2, timeout)
            if ready < 0, errno != EINTR {
                logger.error("poll failed; retrying", metadata: ["errno": .stringConvertible(errno)])
                usleep(100_000)
            }
            if mailbox.isStopping { break }
            if fds[1].revents != 0 { drain(wake) }
            for request in mailbox.takeAll() {
                switch request.kind {
                case .add: follow(request.source)
                case .remove: unfollow(request.source)
                case .sync: syncAndWatch(Key(request.source))
                }
                request.done.resume()
            }
            var due = Set<Key>()
            if fds[0].revents != 0 {
                readEvents(into: &due, buffer: &buffer)
                // Lines gather for the clients of the files that changed, not of every file watched.
                let changed = due.compactMap { followers[$0]?.source }
                let pause = FanOutPacing.pauseMicroseconds(
                    waking: changed.reduce(0) { $0 + $1.log.wakingCount }, pushed: changed.reduce(0) { $0 + $1.pushedClientCount }
                )
                if pause > 0 {
                    usleep(UInt32(pause))
                    readEvents(into: &due, buffer: &buffer)
                }
            }
            let now = monotonicSeconds()
            if inotify < 0, now - lastInstanceAttempt >= InotifyShortage.instanceRetryInterval {
                openInstance()
                if inotify >= 0 { due.formUnion(followers.keys) }
            }
            if now - lastSweep >= 1 {
                lastSweep = now
                due.formUnion(followers.keys)
            }
            if now - lastPoll >= InotifyShortage.pollInterval * 0.9 {
                lastPoll = now
                due.formUnion(polled)
            }
            for key in due { syncAndWatch(key) }
        }
        finished.withLock { $0 = followers.values.map(\.source) }
    }

    private func drain(_ wake: Int32) {
        var bytes = [UInt8](repeating: 0, count: 64)
        while bytes.withUnsafeMutableBytes({ read(wake, $0.baseAddress, $0.count) }) > 0 {}
    }

    private func follow(_ source: FileSource) {
        let key = Key(source)
        guard followers[key] == nil else { return }
        followers[key] = FileFollower(source: source)
        source.setFollowing(true)
        syncAndWatch(key)
    }

    private func unfollow(_ source: FileSource) {
        let key = Key(source)
        guard followers.removeValue(forKey: key) != nil else { return }
        if let wd = fileWatchOf.removeValue(forKey: key) { unwatchFile(wd, key: key) }
        if let wd = directoryWatchOf.removeValue(forKey: key) { unwatchDirectory(wd, key: key) }
        polled.remove(key)
        source.setFollowing(false)
    }

    private func readEvents(into due: inout Set<Key>, buffer: inout [UInt8]) {
        while true {
            let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN { logger.error("reading inotify failed", metadata: ["errno": .stringConvertible(errno)]) }
                return
            }
            if count == 0 { return }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                let headerSize = MemoryLayout<inotify_event>.size
                while offset + headerSize <= count {
                    let wd = raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                    let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let nameLength = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameBytes = UnsafeRawBufferPointer(rebasing: raw[(offset + headerSize)..<min(count, offset + headerSize + nameLength)])
                    offset += headerSize + nameLength
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                        logger.warning("inotify queue overflowed; resyncing every file")
                        due.formUnion(followers.keys)
                        continue
                    }
                    if mask & UInt32(IN_IGNORED) != 0 { forget(wd) }
                    if let keys = fileWatches[wd] { due.formUnion(keys) }
                    if let keys = directoryWatches[wd] {
                        let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                        for key in keys where followers[key]?.source.baseName == name { due.insert(key) }
                    }
                }
            }
        }
    }

    /// Syncs a follower and adds the watches it lacks. A watch that cannot be added for a reason
    /// other than its target missing (a limit) makes the follower polled until it can be.
    private func syncAndWatch(_ key: Key) {
        guard let follower = followers[key] else { return }
        var notice = instanceNotice
        if inotify >= 0, directoryWatchOf[key] == nil {
            let wd = inotify_add_watch(inotify, follower.source.directoryPath, Self.directoryMask)
            if wd >= 0 {
                directoryWatchOf[key] = wd
                directoryWatches[wd, default: []].append(key)
            } else if let failure = Self.shortage(errno) {
                notice = failure
            }
        }
        let switched = follower.sync()
        if inotify >= 0, switched || fileWatchOf[key] == nil, follower.file != nil {
            if let old = fileWatchOf.removeValue(forKey: key) { unwatchFile(old, key: key) }
            let wd = inotify_add_watch(inotify, follower.source.path, Self.fileMask)
            if wd >= 0 {
                fileWatches[wd, default: []].append(key)
                fileWatchOf[key] = wd
            } else if let failure = Self.shortage(errno) {
                notice = failure
            }
        }
        if notice == nil { polled.remove(key) } else { polled.insert(key) }
        follower.source.report(polling: notice)
    }

    /// The notice for a watch that could not be added, unless its target is just missing (the
    /// file's problem says so, and the once-a-second sync retries it).
    private static func shortage(_ errno: Int32) -> String? {
        errno == ENOENT || errno == ENOTDIR ? nil : InotifyShortage.notice(errno: errno, operation: .watch)
    }

    /// Drops `key` from file watch `wd`, and the watch itself when nothing else uses it.
    private func unwatchFile(_ wd: Int32, key: Key) {
        fileWatches[wd]?.removeAll { $0 == key }
        if fileWatches[wd]?.isEmpty == true { fileWatches[wd] = nil }
        removeUnused(wd)
    }

    /// Drops `key` from directory watch `wd`, and the watch itself when nothing else uses it.
    private func unwatchDirectory(_ wd: Int32, key: Key) {
        directoryWatches[wd]?.removeAll { $0 == key }
        if directoryWatches[wd]?.isEmpty == true { directoryWatches[wd] = nil }
        removeUnused(wd)
    }

    private func removeUnused(_ wd: Int32) {
        if fileWatches[wd] == nil, directoryWatches[wd] == nil { inotify_rm_watch(inotify, wd) }
    }

    /// The kernel dropped watch `wd` (its file or directory is gone).
    private func forget(_ wd: Int32) {
        for key in fileWatches.removeValue(forKey: wd) ?? [] where fileWatchOf[key] == wd { fileWatchOf[key] = nil }
        for key in directoryWatches.removeValue(forKey: wd) ?? [] where directoryWatchOf[key] == wd { directoryWatchOf[key] = nil }
    }
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
