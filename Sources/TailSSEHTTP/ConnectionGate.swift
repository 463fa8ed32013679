import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import TailSSECore

/// Admits connections as they are accepted, within ``ConnectionLimits``. A connection past a limit
/// is still read, so that its first request can be answered `503` with `Retry-After` (an
/// EventSource then backs off; over TLS the answer has to wait for the handshake anyway), and is
/// closed after it; the connections already open never notice.
final class ConnectionGate: Sendable {
    private let counter: Mutex<ConnectionCounter>
    private let refused = Mutex<Set<ObjectIdentifier>>([])
    private let metrics: ServerMetrics?

    init(limits: ConnectionLimits, metrics: ServerMetrics? = nil) {
        counter = Mutex(ConnectionCounter(limits: limits))
        self.metrics = metrics
    }

    /// Connections admitted and still open.
    var openCount: Int { counter.withLock { $0.open } }

    /// Called for each accepted connection on its event loop.
    func admit(_ channel: any Channel) {
        let client = Self.clientKey(channel)
        if let refusal = counter.withLock({ $0.admit(client: client) }) {
            metrics?.refused(by: refusal)
            let id = ObjectIdentifier(channel)
            refused.withLock { _ = $0.insert(id) }
            channel.closeFuture.whenComplete { _ in self.refused.withLock { _ = $0.remove(id) } }
            return
        }
        channel.closeFuture.whenComplete { _ in self.counter.withLock { $0.release(client: client) } }
    }

    /// Whether requests on `channel` (a connection, or an HTTP/2 stream of one) are to be refused.
    func isRefused(_ channel: any Channel) -> Bool {
        let ids = [ObjectIdentifier(channel)] + (channel.parent.map { [ObjectIdentifier($0)] } ?? [])
        return refused.withLock { set in ids.contains { set.contains($0) } }
    }

    /// The answer to a request on a refused connection.
    static func refusal() -> Response {
        var response = SourcesAPI.error("too many connections; try again later", status: .serviceUnavailable)
        response.headers[.retryAfter] = "5"
        response.headers[.connection] = "close"
        return response
    }

    private static func clientKey(_ channel: any Channel) -> String {
        channel.remoteAddress?.ipAddress.map(FailedAttemptLimiter.key(forAddress:)) ?? "unknown"
    }
}
