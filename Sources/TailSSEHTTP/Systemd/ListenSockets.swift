import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// Sockets that systemd passed to this process (socket activation, `sd_listen_fds(3)`).
public enum ListenSockets {
    /// Why the passed descriptors cannot be served.
    public struct Unusable: Error, CustomStringConvertible {
        public var description: String
    }

    /// The listening stream sockets passed by systemd, or `[]` when none were passed (then
    /// tailsse listens by itself). Clears `LISTEN_FDS` and `LISTEN_PID` so children do not see them.
    public static func inherited() throws -> [Int32] {
        let count = sd_listen_fds(1)
        guard count >= 0 else { throw Unusable(description: "sd_listen_fds failed: \(String(cString: strerror(-count)))") }
        let descriptors = (0..<count).map { SD_LISTEN_FDS_START + $0 }
        for descriptor in descriptors where sd_is_socket(descriptor, AF_UNSPEC, Int32(SOCK_STREAM.rawValue), 1) <= 0 {
            throw Unusable(description: "descriptor \(descriptor) passed by systemd is not a listening stream socket (use ListenStream= in the .socket unit)")
        }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        return descriptors
    }
}
