#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// How many bytes a client has drained from its TCP connection, as the kernel counts them
/// (`tcpi_bytes_acked`): progress that still shows while a large socket send buffer keeps the
/// channel unwritable for seconds. Only for a stream that has the connection to itself (HTTP/1.1).
struct DrainGauge: Sendable {
    let channel: any Channel

    /// What the kernel says of a connection's sending side.
    struct Reading: Sendable {
        /// Bytes the peer acknowledged so far.
        var acknowledged: UInt64
        /// Bytes queued on the socket that could not be sent yet (the peer's window is full).
        var notSent: UInt32
    }

    /// Bytes the peer acknowledged so far, or `nil` when the connection cannot tell (not TCP).
    func bytesAcknowledged() async -> UInt64? {
        await read()?.acknowledged
    }

    /// The connection's counters, or `nil` when it cannot tell (not TCP).
    func read() async -> Reading? {
        // Only a connection's own socket can tell: an HTTP/2 stream shares its connection with
        // others (whose progress is not its own); HTTP/2 flow control measures a stream's progress.
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let info: LinuxTCPInfo? = try? await provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(TCP_INFO)).get()
        return info.map { Reading(acknowledged: $0.bytesAcknowledged, notSent: $0.notSentBytes) }
    }
}

/// The start of Linux's `struct tcp_info` (linux/tcp.h), up to `tcpi_min_rtt`: eight bytes of
/// states, 24 32-bit counters, `tcpi_pacing_rate`, `tcpi_max_pacing_rate`, `tcpi_bytes_acked`,
/// `tcpi_bytes_received`, `tcpi_segs_out`, `tcpi_segs_in`, `tcpi_notsent_bytes`, `tcpi_min_rtt`.
/// (glibc's `struct tcp_info` stops before the byte counters.) A kernel older than a field leaves it 0.
struct LinuxTCPInfo: Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// `tcpi_bytes_acked`, at byte offset 120.
    var bytesAcknowledged: UInt64 { words.15 }

    /// `tcpi_notsent_bytes`, at byte offset 144 (the low half of the 19th word, little-endian).
    var notSentBytes: UInt32 { UInt32(truncatingIfNeeded: UInt64(littleEndian: words.18)) }
}
