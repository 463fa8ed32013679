#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import TailSSECore

/// Lists the files of a ``FileGlob`` on a thread of its own: each time inotify says the
/// directory's entries changed, and at least once a second (also while inotify cannot watch it).
final class GlobWatch: Sendable {
    /// What one look at the directory found.
    struct Listing: Sendable, Equatable {
        /// The files of the glob that are regular files (not symlinks), sorted.
        var files: [String]
        /// Why the directory cannot be listed, if it cannot.
        var problem: String?
        /// Names the pattern matches that cannot name a file in ids (``FileGlob/unfitNames(among:)``).
        var unfit: [String] = []
    }

    /// The listings, newest first: a listing not yet read is replaced by a newer one.
    let listings: AsyncStream<Listing>
    private let wakeReader: Int32
    private let wakeWriter: Int32
    private let thread: DedicatedThread

    init(glob: FileGlob, logger: Logger) throws(SystemError) {
        let (listings, continuation) = AsyncStream.makeStream(of: Listing.self, bufferingPolicy: .bufferingNewest(1))
        self.listings = listings
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SystemError(errno: errno, operation: "pipe") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let wake = ends[0]
        wakeReader = ends[0]
        wakeWriter = ends[1]
        do throws(SystemError) {
            thread = try DedicatedThread {
                Self.run(glob: glob, wake: wake, logger: logger) { continuation.yield($0) }
                continuation.finish()
            }
        } catch {
            close(ends[0])
            close(ends[1])
            throw error
        }
    }

    /// Stops the thread and waits for it; ``listings`` then ends.
    func stop() async {
        var byte: UInt8 = 1
        _ = write(wakeWriter, &byte, 1)
        await thread.join()
        close(wakeReader)
        close(wakeWriter)
    }

    private static let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

    private static func run(glob: FileGlob, wake: Int32, logger: Logger, publish: (Listing) -> Void) {
        let inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if inotify < 0 {
            logger.warning("cannot create an inotify instance for a glob; listing its directory every second",
                           metadata: ["glob": .string(glob.description), "reason": .string(InotifyShortage.notice(errno: errno, operation: .instance))])
        }
        defer { if inotify >= 0 { close(inotify) } }
        var watch: Int32 = -1
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            if inotify >= 0, watch < 0 { watch = inotify_add_watch(inotify, glob.directory, mask) }
            publish(list(glob))
            var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, 1000)
            if ready < 0, errno != EINTR { usleep(100_000) }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            while true {
                let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                buffer.withUnsafeBytes { raw in
                    var offset = 0
                    let headerSize = MemoryLayout<inotify_event>.size
                    while offset + headerSize <= count {
                        let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                        let nameLength = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                        if mask & UInt32(IN_IGNORED) != 0 { watch = -1 }
                        offset += headerSize + nameLength
                    }
                }
            }
        }
    }

    /// The regular files of the glob in its directory now.
    static func list(_ glob: FileGlob) -> Listing {
        var info = stat()
        guard stat(glob.directory, &info) == 0 else {
            let code = errno
            return Listing(files: [], problem: code == ENOENT ? "the directory \(glob.directory) does not exist (yet)" : "cannot read the directory \(glob.directory): \(String(cString: strerror(code)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return Listing(files: [], problem: "\(glob.directory) is not a directory") }
        guard access(glob.directory, R_OK | X_OK) == 0 else {
            return Listing(files: [], problem: "cannot read the directory \(glob.directory): \(String(cString: strerror(errno)))")
        }
        let names = directoryEntries(glob.directory)
        let files = glob.files(among: names).filter { name in
            var entry = stat()
            return lstat(glob.path(of: name), &entry) == 0 && entry.st_mode & S_IFMT == S_IFREG
        }
        return Listing(files: files, problem: nil, unfit: glob.unfitNames(among: names))
    }
}
