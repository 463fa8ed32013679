import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Connections over TLS: ALPN picks HTTP/2 (`h2`) or HTTP/1.1 for each, and both answer with the
/// same responder as the plain server.
///
/// Over HTTP/2 every request is its own stream on the connection, answered by HummingbirdCore's
/// HTTP/1 request handling on an HTTP/2 stream channel: a stream that ends or is killed resets
/// only itself, the connection's other streams go on.
///
/// The certificate can be replaced while serving (``reload(logger:)``): connections accepted
/// afterwards are served the new one; open connections keep the one they shook hands with.
final class HTTPSChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let negotiation: HTTP2UpgradeChannel
        let negotiated: HTTP2UpgradeChannel.Value
        var channel: any Channel { negotiated.channel }
    }

    let settings: TLSSettings
    private let responder: HTTPChannelHandler.Responder
    /// A connection whose writes are stuck this long is closed (``StalledConnectionCloser``).
    private let stalledWriteTimeout: TimeAmount
    private let current: Mutex<HTTP2UpgradeChannel>
    /// How long a connection may take to close once the server shuts down before it is closed
    /// without waiting for the client (which may have stopped reading).
    private let closeGrace: TimeAmount = .seconds(2)

    /// How long a connection may go without a request (its first, or the next on an idle one).
    private let requestTimeout: Duration
    /// Counts the connections closed by a timeout.
    private let metrics: ServerMetrics

    /// Loads the certificate and key; throws when they cannot be served.
    init(
        settings: TLSSettings, stalledWriteTimeout: Duration, requestTimeout: Duration, metrics: ServerMetrics,
        responder: @escaping HTTPChannelHandler.Responder
    ) async throws(TLSLoadError) {
        self.settings = settings
        self.responder = responder
        self.stalledWriteTimeout = TimeAmount(stalledWriteTimeout)
        self.requestTimeout = requestTimeout
        self.metrics = metrics
        self.current = Mutex(try await Self.negotiation(settings: settings, requestTimeout: requestTimeout, metrics: metrics, responder: responder))
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let negotiation = current.withLock { $0 }
        let metrics = self.metrics
        do {
            try channel.pipeline.syncOperations.addHandler(StalledConnectionCloser(timeout: stalledWriteTimeout) { metrics.closed(by: .tlsWrite) })
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let handshakeTimeout = TimeAmount(requestTimeout)
        return negotiation.setup(channel: channel, logger: logger).flatMapThrowing { negotiated in
            // After the TLS handler that setup added: it sees the handshake complete.
            try channel.pipeline.syncOperations.addHandler(HandshakeDeadline(timeout: handshakeTimeout) { metrics.closed(by: .tlsHandshake) })
            return Value(negotiation: negotiation, negotiated: negotiated)
        }
    }

    func handle(value: Value, logger: Logger) async {
        let channel = value.channel
        let closeGrace = self.closeGrace
        await withGracefulShutdownHandler {
            await value.negotiation.handle(value: value.negotiated, logger: logger)
        } onGracefulShutdown: {
            channel.eventLoop.scheduleTask(in: closeGrace) { channel.close(promise: nil) }
        }
    }

    /// Reads the certificate and key again and serves them to new connections; on failure keeps
    /// the current ones and returns the problem.
    func reload(logger: Logger) async -> String? {
        do {
            let negotiation = try await Self.negotiation(settings: settings, requestTimeout: requestTimeout, metrics: metrics, responder: responder)
            current.withLock { $0 = negotiation }
            logger.info("TLS certificate reloaded", metadata: ["certificate": .string(settings.certificatePath)])
            return nil
        } catch {
            logger.error("TLS certificate reload failed; serving the current one", metadata: ["error": .string(error.description)])
            return "TLS reload failed: \(error.description)"
        }
    }

    /// What `SIGHUP` does: `reload` (the configuration), then re-reading the certificate and key
    /// of `https`, if serving HTTPS; problems of both are joined.
    static func reloading(_ https: HTTPSChannel?, after reload: (@Sendable () async -> String?)?, logger: Logger) -> (@Sendable () async -> String?)? {
        guard let https else { return reload }
        return {
            let problems = [await reload?(), await https.reload(logger: logger)].compactMap { $0 }
            return problems.isEmpty ? nil : problems.joined(separator: "; ")
        }
    }

    private static func negotiation(
        settings: TLSSettings, requestTimeout: Duration, metrics: ServerMetrics, responder: @escaping HTTPChannelHandler.Responder
    ) async throws(TLSLoadError) -> HTTP2UpgradeChannel {
        let loaded: Result<TLSConfiguration, TLSLoadError>
        do {
            loaded = try await NIOThreadPool.singleton.runIfActive {
                do throws(TLSLoadError) { return .success(try settings.loadConfiguration()) } catch { return .failure(error) }
            }
        } catch {
            throw TLSLoadError("cannot load the TLS certificate: \(error)")
        }
        let configuration = try loaded.get()
        do {
            return try HTTP2UpgradeChannel(
                tlsConfiguration: configuration,
                configuration: .init(idleTimeout: requestTimeout, streamConfiguration: HTTPServer.http1Configuration(requestTimeout: requestTimeout, metrics: metrics)),
                responder: responder
            )
        } catch {
            throw TLSLoadError("\(settings.keyPath): the private key does not belong to the certificate in \(settings.certificatePath) (\(error))")
        }
    }
}
