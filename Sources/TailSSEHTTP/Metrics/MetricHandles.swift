import Metrics
import TailSSECore

/// The counters of one source (label `source`), as the source and the stream writers count them.
final class SourceMetrics: SourceMeter {
    static let linesRead = "tailsse_source_lines_read_total"
    static let eventsSent = "tailsse_source_events_sent_total"
    static let bytesSent = "tailsse_source_bytes_sent_total"
    static let clients = "tailsse_source_clients"
    static let pushedClients = "tailsse_source_pushed_clients"
    static let following = "tailsse_source_following"
    static let resumes = "tailsse_source_resumes_total"
    static let resets = "tailsse_source_resets_total"
    static let catchUpReads = "tailsse_source_catch_up_reads_total"
    static let pushFallbacks = "tailsse_source_push_fallbacks_total"

    private let linesReadCounter: Counter
    private let eventsSentCounter: Counter
    private let bytesSentCounter: Counter
    private let resumesCounter: Counter
    private let resetsCounter: Counter
    private let catchUpReadsCounter: Counter
    private let pushFallbacksCounter: Counter
    private let clients: Gauge
    private let pushedClients: Gauge
    private let following: Gauge

    init(source: String, factory: any MetricsFactory) {
        let dimensions = [("source", source)]
        linesReadCounter = Counter(label: Self.linesRead, dimensions: dimensions, factory: factory)
        eventsSentCounter = Counter(label: Self.eventsSent, dimensions: dimensions, factory: factory)
        bytesSentCounter = Counter(label: Self.bytesSent, dimensions: dimensions, factory: factory)
        resumesCounter = Counter(label: Self.resumes, dimensions: dimensions, factory: factory)
        resetsCounter = Counter(label: Self.resets, dimensions: dimensions, factory: factory)
        catchUpReadsCounter = Counter(label: Self.catchUpReads, dimensions: dimensions, factory: factory)
        pushFallbacksCounter = Counter(label: Self.pushFallbacks, dimensions: dimensions, factory: factory)
        clients = Gauge(label: Self.clients, dimensions: dimensions, factory: factory)
        pushedClients = Gauge(label: Self.pushedClients, dimensions: dimensions, factory: factory)
        following = Gauge(label: Self.following, dimensions: dimensions, factory: factory)
    }

    func read(lines count: Int) {
        if count > 0 { linesReadCounter.increment(by: count) }
    }

    func sent(events: Int, bytes: Int) {
        if events > 0 { eventsSentCounter.increment(by: events) }
        if bytes > 0 { bytesSentCounter.increment(by: bytes) }
    }

    func resumed() { resumesCounter.increment() }
    func reset() { resetsCounter.increment() }
    func caughtUp() { catchUpReadsCounter.increment() }
    func leftPush() { pushFallbacksCounter.increment() }

    /// Sets the gauges, at scrape time.
    func show(clients count: Int, pushed: Int, following isFollowing: Bool) {
        clients.record(count)
        pushedClients.record(pushed)
        following.record(isFollowing ? 1 : 0)
    }
}

/// The server's own metrics: connections, refusals, timeouts, authentication, the process.
struct ServerMetrics: Sendable {
    static let connectionsName = "tailsse_connections"
    static let streamsName = "tailsse_streams"
    static let refusedName = "tailsse_connections_refused_total"
    static let closedName = "tailsse_connections_closed_total"
    static let authFailuresName = "tailsse_auth_failures_total"
    static let rateLimitedName = "tailsse_auth_rate_limited_total"

    /// The timeouts that close connections (the `timeout` label).
    enum Timeout: String, CaseIterable {
        /// No whole request head within `--request-timeout` (a new or an idle kept-alive connection).
        case request
        /// A stream whose client drained nothing for `--write-timeout`.
        case write
        /// An HTTPS connection without a finished TLS handshake within `--request-timeout`.
        case tlsHandshake = "tls_handshake"
        /// An HTTPS connection whose writes stalled for `--write-timeout`.
        case tlsWrite = "tls_write"
        /// A stream whose client fell ever further behind while reading less than `--min-read-rate`.
        case slowReader = "min_read_rate"
    }

    private let connections: Gauge
    private let streams: Gauge
    private let refusedTotal: Counter
    private let refusedPerClient: Counter
    private let closed: [Timeout: Counter]
    private let authFailures: Counter
    private let rateLimited: Counter
    private let openFiles: Gauge
    private let maxFiles: Gauge
    private let residentMemory: Gauge

    init(factory: any MetricsFactory) {
        connections = Gauge(label: Self.connectionsName, factory: factory)
        streams = Gauge(label: Self.streamsName, factory: factory)
        refusedTotal = Counter(label: Self.refusedName, dimensions: [("limit", ConnectionCounter.Refusal.total.rawValue)], factory: factory)
        refusedPerClient = Counter(label: Self.refusedName, dimensions: [("limit", ConnectionCounter.Refusal.perClient.rawValue)], factory: factory)
        var closed: [Timeout: Counter] = [:]
        for timeout in Timeout.allCases {
            closed[timeout] = Counter(label: Self.closedName, dimensions: [("timeout", timeout.rawValue)], factory: factory)
        }
        self.closed = closed
        authFailures = Counter(label: Self.authFailuresName, factory: factory)
        rateLimited = Counter(label: Self.rateLimitedName, factory: factory)
        openFiles = Gauge(label: "process_open_fds", factory: factory)
        maxFiles = Gauge(label: "process_max_fds", factory: factory)
        residentMemory = Gauge(label: "process_resident_memory_bytes", factory: factory)
    }

    /// Counts `count` connections (or streams) closed by `timeout`.
    func closed(by timeout: Timeout, count: Int = 1) {
        if count > 0 { closed[timeout]?.increment(by: count) }
    }

    /// Sets the gauges, at scrape time.
    func show(connections open: Int, streams openStreams: Int) {
        connections.record(open)
        streams.record(openStreams)
    }

    /// Sets the process gauges, at scrape time.
    func show(openFiles files: Int, maxFiles limit: Int, residentBytes bytes: Int) {
        openFiles.record(files)
        maxFiles.record(limit)
        residentMemory.record(bytes)
    }

    /// Counts a connection refused by `limit`.
    func refused(by limit: ConnectionCounter.Refusal) {
        switch limit {
        case .total: refusedTotal.increment()
        case .perClient: refusedPerClient.increment()
        }
    }

    /// Counts an authentication outcome that failed.
    func record(_ outcome: AccessControl.Outcome) {
        switch outcome {
        case .refused: authFailures.increment()
        case .limited: rateLimited.increment()
        case .granted, .missing: break
        }
    }
}
