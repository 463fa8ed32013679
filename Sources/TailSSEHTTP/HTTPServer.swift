import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Where the server accepts connections.
public enum ListenTarget: Sendable, Equatable {
    /// Bind and listen on this address itself.
    case address(host: String, port: Int)
    /// Serve on sockets that are already bound and listening (socket activation: systemd passed
    /// them, see ``ListenSockets``).
    case sockets([Int32])
}

/// The HTTP server: Hummingbird's router on NIO server channels that it either binds itself or
/// adopts from systemd, speaking plain HTTP/1.1 or, with a certificate, HTTPS with HTTP/2 and
/// HTTP/1.1 (``HTTPSChannel``).
///
/// Hummingbird's `Application` can only bind an address, so this service does what its server
/// does with `ServerBootstrap.bind(_:)` for an inherited descriptor: each accepted connection runs
/// HummingbirdCore's `HTTP1Channel` (or ``HTTPSChannel``) with the router as responder, and
/// graceful shutdown quiesces (stops accepting, lets open requests finish) like Hummingbird's own
/// server.
struct HTTPServer: Service, CustomStringConvertible {
    var description: String { "HTTPServer" }
    let target: ListenTarget
    let responder: HTTPChannelHandler.Responder
    /// Serve HTTPS with this certificate; `nil` for plain HTTP/1.1.
    var https: HTTPSChannel? = nil
    /// Admits each accepted connection within the connection limits.
    let gate: ConnectionGate
    /// A connection that has not sent a whole request head this long after it opened or after its
    /// last response is closed (slow or half-sent heads, idle keep-alive connections).
    let requestTimeout: Duration
    /// Counts the connections closed by the request timeout.
    let metrics: ServerMetrics
    let logger: Logger
    /// Called with the listening channels once connections are accepted.
    let onListening: @Sendable ([any Channel]) async -> Void

    func run() async throws {
        if let https {
            try await serve(https)
        } else {
            try await serve(HTTP1Channel(responder: responder, configuration: Self.http1Configuration(requestTimeout: requestTimeout, metrics: metrics)))
        }
    }

    /// HTTP/1.1 (and HTTP/2 streams): each connection gets a ``RequestDeadline`` of its own, whose
    /// closes are counted, instead of HummingbirdCore's uncounted idle timeout.
    static func http1Configuration(requestTimeout: Duration, metrics: ServerMetrics) -> HTTP1Channel.Configuration {
        let timeout = TimeAmount(requestTimeout)
        return HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestDeadline(timeout: timeout) { metrics.closed(by: .request) }],
            idleTimeout: nil
        )
    }

    private func serve<Connection: ServerChildChannel>(_ childChannel: Connection) async throws {
        let eventLoops = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: eventLoops)
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: eventLoops)
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
        let gate = self.gate
        let setup: @Sendable (any Channel) -> EventLoopFuture<Connection.Value> = { channel in
            gate.admit(channel)
            return childChannel.setup(channel: channel, logger: logger)
        }
        var listeners: [NIOAsyncChannel<Connection.Value, Never>] = []
        do {
            switch target {
            case .address(let host, let port):
                listeners.append(try await bootstrap.bind(host: host, port: port, childChannelInitializer: setup))
            case .sockets(let descriptors):
                for descriptor in descriptors {
                    listeners.append(try await bootstrap.bind(descriptor, childChannelInitializer: setup))
                }
            }
        } catch {
            for listener in listeners { try? await listener.channel.close() }
            throw error
        }
        await withGracefulShutdownHandler {
            await onListening(listeners.map(\.channel))
            await withDiscardingTaskGroup { group in
                for listener in listeners {
                    group.addTask {
                        await Self.accept(on: listener, childChannel: childChannel, logger: logger)
                    }
                }
            }
        } onGracefulShutdown: {
            quiescing.initiateShutdown(promise: nil)
        }
    }

    private static func accept<Connection: ServerChildChannel>(
        on listener: NIOAsyncChannel<Connection.Value, Never>, childChannel: Connection, logger: Logger
    ) async {
        await withDiscardingTaskGroup { group in
            do {
                try await listener.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await childChannel.handle(value: connection, logger: logger) }
                    }
                }
            } catch {
                logger.error("accepting connections failed", metadata: ["error": .string("\(error)")])
            }
        }
    }

    /// Answers each request with the router, as Hummingbird's `Application` does; a request on a
    /// connection past the connection limits gets 503 instead.
    static func responder<Responder: HTTPResponder>(_ router: Responder, gate: ConnectionGate, logger: Logger) -> HTTPChannelHandler.Responder
    where Responder.Context == TailSSERequestContext {
        { (request, responseWriter: consuming ResponseWriter, channel) in
            let context = TailSSERequestContext(source: .init(channel: channel, logger: logger))
            var response: Response
            do {
                response = gate.isRefused(channel) ? ConnectionGate.refusal() : try await router.respond(to: request, context: context)
            } catch let error as HTTPParserError {
                throw error
            } catch {
                logger.debug("unexpected error answering a request", metadata: ["error": .string("\(error)")])
                response = Response(status: .internalServerError)
            }
            response.headers[.server] = "tailsse"
            try await responseWriter.write(response: response.head, body: response.body)
        }
    }
}
