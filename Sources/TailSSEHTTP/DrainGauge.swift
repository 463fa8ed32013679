#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// How many bytes a client has drained from its TCP connection, as the kernel counts them
/// (`tcpi_bytes_acked`): progress that still shows while a large socket send buffer keeps the
/// channel unwritable for seconds. Only for a stream that has the connection to itself (HTTP/1.1).
struct DrainGauge: Sendable {
    let channel: any Channel

    /// Bytes the peer acknowledged so far, or `nil` when the connection cannot tell (not TCP).
    func bytesAcknowledged() async -> UInt64? {
        // Only a connection's own socket can tell: an HTTP/2 stream shares its connection with
        // others (whose progress is not its own); HTTP/2 flow control measures a stream's progress.
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let info: LinuxTCPInfo? = try? await provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(TCP_INFO)).get()
        return info?.bytesAcknowledged
    }
}

/// The start of Linux's `struct tcp_info` (linux/tcp.h), up to `tcpi_bytes_acked`: eight bytes of
/// states, 24 32-bit counters, then `tcpi_pacing_rate`, `tcpi_max_pacing_rate`, `tcpi_bytes_acked`.
/// (glibc's `struct tcp_info` stops before the byte counters.)
struct LinuxTCPInfo: Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// `tcpi_bytes_acked`, at byte offset 120.
    var bytesAcknowledged: UInt64 { words.15 }
}
