#if canImport(Glibc)
import Glibc
#endif
import TailSSECore

/// An open, read-only file descriptor shared by the follower and catch-up readers.
///
/// Reads use `pread`, which leaves no shared file offset, so any thread may read at once. The
/// descriptor is closed when the last holder lets go, so a rotated or deleted file stays readable
/// for clients still catching up on it.
final class OpenFile: Sendable {
    let descriptor: Int32
    let identity: FileIdentity

    private init(descriptor: Int32, identity: FileIdentity) {
        self.descriptor = descriptor
        self.identity = identity
    }

    deinit { close(descriptor) }

    /// Opens `path` read-only; throws the `errno` on failure.
    static func open(path: String) throws(SystemError) -> OpenFile {
        try open(path: path, flags: 0)
    }

    /// Opens `path` read-only, never through a symlink (`O_NOFOLLOW`).
    static func openNoFollow(path: String) throws(SystemError) -> OpenFile {
        try open(path: path, flags: O_NOFOLLOW)
    }

    /// Opens a rotated generation lying beside the followed file: never through a symlink
    /// (`O_NOFOLLOW`), and only if what was opened is the regular file `identity` (checked with
    /// `fstat` on the descriptor, so a file swapped in after `lstat` is not read).
    static func openGeneration(path: String, identity: FileIdentity) throws(SystemError) -> OpenFile {
        let file = try open(path: path, flags: O_NOFOLLOW)
        guard file.identity == identity else { throw SystemError(errno: ESTALE, operation: "open \(path): another file than expected") }
        return file
    }

    private static func open(path: String, flags: Int32) throws(SystemError) -> OpenFile {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags)
        guard fd >= 0 else { throw SystemError(errno: errno, operation: "open \(path)") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = SystemError(errno: errno, operation: "fstat \(path)")
            close(fd)
            throw error
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw SystemError(errno: EINVAL, operation: "open \(path): not a regular file")
        }
        return OpenFile(descriptor: fd, identity: FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)))
    }

    /// The file's current size.
    func size() throws(SystemError) -> Int64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SystemError(errno: errno, operation: "fstat") }
        return Int64(info.st_size)
    }

    /// Reads up to `count` bytes at `offset` into `buffer` (resized to what was read).
    ///
    /// Only the bytes the file holds now are asked for (a live file grows by a line at a time, and
    /// the buffer is zero-filled before `pread`); a file that grows meanwhile is read on next time.
    func read(at offset: Int64, count wanted: Int, into buffer: inout [UInt8]) throws(SystemError) {
        buffer.removeAll(keepingCapacity: true)
        let count = Int(max(0, min(Int64(wanted), try size() - offset)))
        guard count > 0 else { return }
        var filled = 0
        var failure: Int32 = 0
        buffer.reserveCapacity(count)
        buffer.append(contentsOf: repeatElement(0, count: count))
        buffer.withUnsafeMutableBytes { raw in
            while filled < count {
                let n = pread(descriptor, raw.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
                if n > 0 { filled += n; continue }
                if n == 0 { break }
                if errno == EINTR { continue }
                failure = errno
                break
            }
        }
        buffer.removeLast(count - filled)
        if failure != 0 && filled == 0 { throw SystemError(errno: failure, operation: "pread") }
    }

    /// The file's first (up to) ``GenerationFingerprint/windowSize`` bytes.
    func leadingBytes() throws(SystemError) -> [UInt8] {
        var bytes: [UInt8] = []
        try read(at: 0, count: GenerationFingerprint.windowSize, into: &bytes)
        return bytes
    }

    /// The (up to) ``PositionCheck/windowSize`` bytes just before `offset`.
    func history(before offset: Int64) throws(SystemError) -> [UInt8] {
        let start = max(0, offset - Int64(PositionCheck.windowSize))
        var bytes: [UInt8] = []
        try read(at: start, count: Int(offset - start), into: &bytes)
        return bytes
    }
}

/// A failed system call: its `errno` and what was attempted.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var errno: Int32
    public var operation: String

    public init(errno: Int32, operation: String) {
        self.errno = errno
        self.operation = operation
    }

    public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}

/// `stat` of a path: its identity and size, or the errno.
func statIdentity(path: String) -> Result<(identity: FileIdentity, size: Int64, isRegular: Bool), SystemError> {
    var info = stat()
    guard stat(path, &info) == 0 else { return .failure(SystemError(errno: errno, operation: "stat \(path)")) }
    return .success((
        FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)),
        Int64(info.st_size),
        info.st_mode & S_IFMT == S_IFREG
    ))
}
