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

extension ListenSockets {
    /// An IP socket's local address.
    public struct LocalAddress: Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The local IP address a socket is bound to; `nil` for other families (a Unix socket).
    public static func localAddress(of descriptor: Int32) -> LocalAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bound = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard bound == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    var ip = address.pointee.sin_addr
                    guard inet_ntop(AF_INET, &ip, &text, socklen_t(text.count)) != nil else { return nil }
                    return LocalAddress(host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: Int(UInt16(bigEndian: address.pointee.sin_port)))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    var ip = address.pointee.sin6_addr
                    guard inet_ntop(AF_INET6, &ip, &text, socklen_t(text.count)) != nil else { return nil }
                    return LocalAddress(host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: Int(UInt16(bigEndian: address.pointee.sin6_port)))
                }
            }
        default:
            return nil
        }
    }
}
