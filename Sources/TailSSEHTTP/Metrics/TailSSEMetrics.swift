#if canImport(Glibc)
import Glibc
#endif
import NIOPosix
import Prometheus
import Synchronization
import TailSSECore

/// tailsse's metrics: recorded with swift-metrics into one Prometheus registry of their own, and
/// rendered for `GET /metrics`.
///
/// Every handle is made once (per source name, or for the server) and kept, so counting is an
/// atomic add on a handle the counting code already holds. The factory is injected, never taken
/// from `MetricsSystem`: the `@main` may bootstrap the global system with ``factory`` so that
/// libraries' metrics land in the same registry, but nothing here depends on it.
public final class TailSSEMetrics: Sendable {
    /// The swift-metrics factory backed by this registry.
    public let factory: PrometheusMetricsFactory
    private let registry: PrometheusCollectorRegistry
    let server: ServerMetrics
    private let sources = Mutex<[String: SourceMetrics]>([:])

    public init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        server = ServerMetrics(factory: factory)
    }

    /// The meter of the source named `name`: the same counters for every source of that name, so a
    /// source that a reload recreates counts on.
    public func source(named name: String) -> any SourceMeter {
        sourceMetrics(named: name)
    }

    private func sourceMetrics(named name: String) -> SourceMetrics {
        sources.withLock { known in
            if let metrics = known[name] { return metrics }
            let made = SourceMetrics(source: name, factory: factory)
            known[name] = made
            return made
        }
    }

    /// The text of `GET /metrics` for a reader with `grant`: gauges brought up to date, then every
    /// series except those of sources the grant does not allow.
    func exposition(sources current: [any ManagedSource], connections: Int, streams: Int, grant: AccessGrant) async -> String {
        let served = Set(current.map(\.name))
        for source in current {
            sourceMetrics(named: source.name).show(clients: source.clientCount, pushed: source.pushedClientCount, following: source.isFollowing)
        }
        for (name, metrics) in self.sources.withLock({ $0 }) where !served.contains(name) {
            metrics.show(clients: 0, pushed: 0, following: false)
        }
        server.show(connections: connections, streams: streams)
        if let process = await ProcessFigures.current() {
            server.show(openFiles: process.openFiles, maxFiles: process.maxFiles, residentBytes: process.residentBytes)
        }
        return MetricsExposition.render(registry.emitToString(), help: Self.help, allowsSource: grant.allows)
    }

    /// The `# HELP` text of every metric tailsse records.
    static let help: [String: String] = [
        SourceMetrics.linesRead: "Lines (or entries) the source's follower read.",
        SourceMetrics.eventsSent: "Events of the source written to clients.",
        SourceMetrics.bytesSent: "Bytes of the source's events written to clients (stream preambles and heartbeats not included).",
        SourceMetrics.clients: "Clients streaming the source now.",
        SourceMetrics.pushedClients: "Of those, clients at the live end whose new events are pushed to them (no task of their own running).",
        SourceMetrics.following: "Whether the source is being followed (1) or not (0).",
        SourceMetrics.resumes: "Streams that resumed exactly where the client's last event id said.",
        SourceMetrics.resets: "Reset events: a stream could not go on from where its client stood (unknown id, data no longer kept).",
        SourceMetrics.catchUpReads: "Reads of the source by clients behind what the shared buffer holds.",
        SourceMetrics.pushFallbacks: "Times a client whose events were pushed to it stopped taking them as fast and went on at its own pace.",
        ServerMetrics.connectionsName: "Connections open now.",
        ServerMetrics.streamsName: "Streams open now.",
        ServerMetrics.refusedName: "Connections accepted past a connection limit (their requests are answered 503), by limit.",
        ServerMetrics.closedName: "Connections or streams closed by a timeout, by timeout.",
        ServerMetrics.authFailuresName: "Requests and logins with a wrong token or session.",
        ServerMetrics.rateLimitedName: "Requests and logins refused (429) after too many failed attempts from the address.",
        "process_open_fds": "Open file descriptors.",
        "process_max_fds": "The limit on open file descriptors.",
        "process_resident_memory_bytes": "Resident memory in bytes.",
    ]
}

extension ProcessFigures {
    /// The process's open descriptors, their limit and its resident memory, read from
    /// `/proc/self` on NIO's thread pool (never on the cooperative pool); `nil` when unreadable.
    static func current() async -> (openFiles: Int, maxFiles: Int, residentBytes: Int)? {
        try? await NIOThreadPool.singleton.runIfActive { () -> (openFiles: Int, maxFiles: Int, residentBytes: Int)? in
            guard let directory = opendir("/proc/self/fd") else { return nil }
            var entries = 0
            while let entry = readdir(directory) {
                if UInt8(bitPattern: entry.pointee.d_name.0) != UInt8(ascii: ".") { entries += 1 }
            }
            closedir(directory)
            var limit = rlimit()
            let maxFiles = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 0
            guard let statm = readSmallFile("/proc/self/statm"),
                  let resident = residentBytes(statm: statm, pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
            else { return nil }
            // The directory read counted its own descriptor.
            return (entries - 1, maxFiles, resident)
        } ?? nil
    }

    private static func readSmallFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 512)
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: bytes.prefix(count), as: UTF8.self)
    }
}
