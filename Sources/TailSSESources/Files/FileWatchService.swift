#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Synchronization
import TailSSECore

/// Follows every ``FileSource`` with one inotify instance on one dedicated thread.
///
/// The thread polls the inotify descriptor and an eventfd (for shutdown), syncs the followers an
/// event concerns, resyncs all of them after `IN_Q_OVERFLOW`, and syncs all once a second anyway so
/// missing or unreadable files are retried. Its `run()` ends the sources' streams on shutdown.
public final class FileWatchService: Service {
    private let sources: [FileSource]
    private let logger: Logger
    private let wakeDescriptor: Int32
    private let wakeWriter: Int32
    private let stopping = Atomic<Bool>(false)
    private let inotify: Int32
    private let loop: WatchLoop

    /// Opens inotify and reads every file to its last complete line, so the first clients find
    /// the sources ready; following starts in ``run()``.
    public init(sources: [FileSource], logger: Logger) throws {
        self.sources = sources
        self.logger = logger
        let inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else {
            let error = SystemError(errno: errno, operation: "inotify_init1")
            throw error
        }
        self.inotify = inotify
        self.loop = WatchLoop(inotify: inotify, sources: sources, logger: logger)
        loop.start()
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SystemError(errno: errno, operation: "pipe") }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        self.wakeDescriptor = ends[0]
        self.wakeWriter = ends[1]
    }

    deinit {
        close(wakeDescriptor)
        close(wakeWriter)
        close(inotify)
    }

    public func run() async throws {
        guard !sources.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        let thread = try DedicatedThread { [self] in
            loop.run(wake: wakeDescriptor, until: { self.stopping.load(ordering: .relaxed) })
        }
        await withGracefulShutdownHandler {
            try? await gracefulShutdown()
        } onGracefulShutdown: {}
        stopping.store(true, ordering: .relaxed)
        var one: UInt8 = 1
        _ = write(wakeWriter, &one, 1)
        await thread.join()
        for source in sources {
            source.setFollowing(false)
            source.log.close()
        }
    }
}

/// The loop on the inotify thread; everything it touches stays on that thread.
private final class WatchLoop: @unchecked Sendable {
    private let inotify: Int32
    private let followers: [FileFollower]
    private let logger: Logger
    private var directoryWatches: [Int32: [Int]] = [:]
    private var fileWatches: [Int32: [Int]] = [:]
    private var fileWatchOf: [Int: Int32] = [:]
    private var directoryWatchOf: [Int: Int32] = [:]

    private static let directoryMask = UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_ONLYDIR)
    private static let fileMask = UInt32(IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_CLOSE_WRITE)

    init(inotify: Int32, sources: [FileSource], logger: Logger) {
        self.inotify = inotify
        self.followers = sources.map(FileFollower.init(source:))
        self.logger = logger
    }

    /// The first sync of every file, before the thread takes over.
    func start() {
        for index in followers.indices {
            followers[index].source.setFollowing(true)
            syncAndWatch(index)
        }
    }

    func run(wake: Int32, until stop: () -> Bool) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var lastSweep = monotonicSeconds()
        while !stop() {
            var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, 1000)
            if ready < 0, errno != EINTR {
                logger.error("poll failed; retrying", metadata: ["errno": .stringConvertible(errno)])
                usleep(100_000)
            }
            if stop() { break }
            var due = Set<Int>()
            if fds[0].revents != 0 { readEvents(into: &due, buffer: &buffer) }
            let now = monotonicSeconds()
            if now - lastSweep >= 1 {
                lastSweep = now
                due.formUnion(followers.indices)
            }
            for index in due.sorted() { syncAndWatch(index) }
        }
    }

    private func readEvents(into due: inout Set<Int>, buffer: inout [UInt8]) {
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
                        due.formUnion(followers.indices)
                        continue
                    }
                    if mask & UInt32(IN_IGNORED) != 0 { forget(wd) }
                    if let indices = fileWatches[wd] { due.formUnion(indices) }
                    if let indices = directoryWatches[wd] {
                        let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                        for index in indices where followers[index].source.baseName == name { due.insert(index) }
                    }
                }
            }
        }
    }

    private func syncAndWatch(_ index: Int) {
        let follower = followers[index]
        if directoryWatchOf[index] == nil {
            let wd = inotify_add_watch(inotify, follower.source.directoryPath, Self.directoryMask)
            if wd >= 0 {
                directoryWatchOf[index] = wd
                directoryWatches[wd, default: []].append(index)
            }
        }
        let switched = follower.sync()
        if switched || fileWatchOf[index] == nil, follower.file != nil {
            if let old = fileWatchOf.removeValue(forKey: index) { unwatchFile(old, index: index) }
            let wd = inotify_add_watch(inotify, follower.source.path, Self.fileMask)
            if wd >= 0 {
                fileWatchOf[index] = wd
                fileWatches[wd, default: []].append(index)
            }
        }
    }

    private func unwatchFile(_ wd: Int32, index: Int) {
        fileWatches[wd]?.removeAll { $0 == index }
        if fileWatches[wd]?.isEmpty == true {
            fileWatches[wd] = nil
            if directoryWatches[wd] == nil { inotify_rm_watch(inotify, wd) }
        }
    }

    /// The kernel dropped watch `wd` (its file or directory is gone).
    private func forget(_ wd: Int32) {
        for index in fileWatches.removeValue(forKey: wd) ?? [] where fileWatchOf[index] == wd { fileWatchOf[index] = nil }
        for index in directoryWatches.removeValue(forKey: wd) ?? [] where directoryWatchOf[index] == wd { directoryWatchOf[index] = nil }
    }
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
