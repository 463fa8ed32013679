import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TailSSECore
import TailSSESources
import UnixSignals

/// Everything the HTTP edge needs to serve a set of sources.
public struct ServerConfiguration: Sendable {
    /// The address to bind, or the sockets systemd passed.
    public var listen: ListenTarget
    public var staticDirectory: String?
    public var stream: StreamSettings
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate; `nil` for plain HTTP/1.1.
    public var tls: TLSSettings?
    /// Tokens, allowed hosts and origins.
    public var access: AccessControl
    /// Connections held at once, in all and per client address.
    public var connectionLimits = ConnectionLimits.defaults(openFiles: 1024)
    /// Longest wait for a request head, on a new connection or an idle kept-alive one.
    public var requestTimeout: Duration = .seconds(10)
    /// Where the server and its sources count for `/metrics` (give the sources meters of the same).
    public var metrics = TailSSEMetrics()

    public init(
        listen: ListenTarget = .address(host: "127.0.0.1", port: 8111), staticDirectory: String? = nil, stream: StreamSettings = StreamSettings(),
        tls: TLSSettings? = nil, access: AccessControl = AccessControl(tokens: nil)
    ) {
        self.listen = listen
        self.staticDirectory = staticDirectory
        self.stream = stream
        self.tls = tls
        self.access = access
    }
}

/// Runs tailsse: the sources' services, the HTTP server and its helpers in one service group that
/// shuts down in order on SIGTERM/SIGINT — systemd hears `STOPPING=1`, streams end, the server
/// stops, then the sources end and their services stop.
///
/// - Parameters:
///   - registry: the served sources; they must have begun (``SourceRegistry/apply(_:reason:)``).
///   - services: long-lived services that feed the sources (started first, stopped last).
///   - probes: liveness checks for systemd's watchdog, beside the server's own event loops.
///   - reload: re-reads the configuration on `SIGHUP`; returns a problem for `STATUS=`, if any.
///     The TLS certificate and key, if any, are re-read on `SIGHUP` too.
///   - onListening: called with each bound address once the server accepts connections.
public func runServer(
    configuration: ServerConfiguration,
    registry: SourceRegistry,
    services: [any Service],
    probes: [LivenessProbe] = [],
    reload: (@Sendable () async -> String?)? = nil,
    logger: Logger,
    onListening: @escaping @Sendable (String) async -> Void = { _ in }
) async throws {
    let connections = ConnectionRegistry()
    let access = configuration.access
    let metrics = configuration.metrics
    access.onTokensChanged {
        let revoked = connections.revoke(unless: { access.stillAllows($0, sources: $1) })
        if revoked > 0 { logger.info("ended the streams of revoked tokens", metadata: ["count": .stringConvertible(revoked)]) }
    }
    let responder = StreamResponder(settings: configuration.stream, connections: connections, logger: logger)
    let gate = ConnectionGate(limits: configuration.connectionLimits, metrics: metrics.server)
    let api = SourcesAPI(
        registry: registry, responder: responder, connections: connections, assets: StaticAssets(directory: configuration.staticDirectory), access: access,
        metrics: metrics, gate: gate
    )
    let router = Router(context: TailSSERequestContext.self)
    api.addRoutes(to: router)
    let listening = Latch<[any Channel]>()
    let status = StatusNote()
    let httpResponder = HTTPServer.responder(router.buildResponder(), gate: gate, logger: logger)
    var https: HTTPSChannel?
    if let tls = configuration.tls {
        https = try await HTTPSChannel(
            settings: tls, stalledWriteTimeout: configuration.stream.writeTimeout, requestTimeout: configuration.requestTimeout, metrics: metrics.server,
            responder: httpResponder
        )
    }
    let server = HTTPServer(
        target: configuration.listen, responder: httpResponder, https: https, gate: gate, requestTimeout: configuration.requestTimeout,
        metrics: metrics.server, logger: logger
    ) { channels in
        for channel in channels {
            let address = channel.localAddress.map { address -> String in
                let host = address.ipAddress.map { address.protocol == .inet6 ? "[\($0)]" : $0 } ?? "\(address)"
                return "\(host):\(address.port ?? 0)"
            } ?? "\(channel)"
            await onListening(address)
        }
        listening.set(channels)
    }
    var helpers: [any Service] = [
        SourceCloser(registry: registry),
        StreamSweeper(registry: registry, settings: configuration.stream, connections: connections, metrics: metrics.server, logger: logger),
    ]
    if let reload = HTTPSChannel.reloading(https, after: reload, logger: logger) { helpers.append(ReloadService(reload: reload, status: status)) }
    helpers += [
        server,
        StreamCloser(connections: connections, grace: .milliseconds(500)),
        SystemdNotifier(listening: listening, registry: registry, connections: connections, status: status, probes: probes, logger: logger),
    ]
    let group = ServiceGroup(configuration: .init(
        services: (services + helpers).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    ))
    try await group.run()
}

/// Ends every source on shutdown (without `end` events: clients reconnect and resume), after the
/// server has stopped and before the services that feed the sources stop.
struct SourceCloser: Service, CustomStringConvertible {
    var description: String { "SourceCloser" }
    let registry: SourceRegistry

    func run() async throws {
        try? await gracefulShutdown()
        await registry.endAll()
    }
}

/// The HTTP API: sources, streams, health, metrics, login and the page.
///
/// Every request first passes the `Host` check; the API and stream routes also the `Origin`
/// check and need a token when a token file is configured. `/healthz` and the page's static files
/// hold no log data and need no token.
struct SourcesAPI: Sendable {
    let registry: SourceRegistry
    let responder: StreamResponder
    let connections: ConnectionRegistry
    let assets: StaticAssets
    let access: AccessControl
    let metrics: TailSSEMetrics
    let gate: ConnectionGate

    /// The source named `name` if it exists and `grant` lets its holder read it.
    func source(named name: String, for grant: AccessGrant) -> (any LogSource)? {
        grant.allows(name) ? registry.source(named: name) : nil
    }

    func addRoutes(to router: Router<TailSSERequestContext>) {
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: ForwardedClientMiddleware(proxies: access.trustedProxies))
        router.add(middleware: RequestShapeMiddleware())
        router.add(middleware: HostCheckMiddleware(access: access))
        router.add(middleware: OriginCheckMiddleware(access: access))
        let basePath = access.basePath
        let root = router.group(RouterPath(basePath.routePrefix))
        root.get("/healthz") { _, _ -> Response in
            let failing = registry.sources.filter { !$0.isHealthy }.map(\.name)
            guard failing.isEmpty else {
                return Self.text("not following: \(failing.joined(separator: ", "))\n", status: .serviceUnavailable)
            }
            return Self.text("ok\n")
        }
        root.post("/login") { request, context -> Response in
            try await login(request, context: context)
        }
        root.post("/logout") { _, _ -> Response in
            var response = Response(status: .noContent)
            response.headers[.setCookie] = access.clearedCookie
            return response
        }
        root.get("/") { request, _ -> Response in
            // The page's links are relative: it must be loaded from the base path with its `/`.
            guard basePath.isRoot || request.uri.path.hasSuffix("/") else {
                return Response(status: .movedPermanently, headers: [.location: basePath.path])
            }
            return asset("index.html")
        }
        root.get("/:asset") { _, context -> Response in
            asset(context.parameters.get("asset") ?? "")
        }
        let api = root.group()
            .add(middleware: TokenAuthenticator(access: access, metrics: metrics.server))
            .add(middleware: AccessRequiredMiddleware())
        api.get("/sources") { _, context -> Response in
            Self.json(listing(for: context.grant))
        }
        api.get("/sources/:name") { request, context -> Response in
            try stream(request, name: context.parameters.get("name") ?? "", context: context)
        }
        api.get("/sources/:name/lines") { request, context -> Response in
            await lines(request, name: context.parameters.get("name") ?? "", context: context)
        }
        api.get("/journal") { request, context -> Response in
            try stream(request, name: "journal", context: context)
        }
        api.get("/journal/lines") { request, context -> Response in
            await lines(request, name: "journal", context: context)
        }
        api.get("/events") { request, context -> Response in
            events(request, context: context)
        }
        api.get("/events/lines") { request, context -> Response in
            await eventsLines(request, context: context)
        }
        api.get("/metrics") { _, context -> Response in
            let text = await metrics.exposition(sources: registry.sources, connections: gate.openCount, streams: connections.count, grant: context.grant)
            return Self.text(text, contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }

    private func stream(_ request: Request, name: String, context: TailSSERequestContext) throws -> Response {
        guard let source = source(named: name, for: context.grant) else {
            return Self.error("unknown source '\(name.prefix(64))'", status: .notFound)
        }
        let query = request.uri.queryParameters
        let parameters = query.filter { $0.key != "lastEventId" }.map { (key: String($0.key), value: String($0.value)) }
        var streamRequest: StreamRequest
        switch Self.streamRequest(for: source, parameters: parameters, ignoringOthers: true) {
        case .success(let made): streamRequest = made
        case .failure(let problem): return Self.error(problem.message, status: .badRequest)
        }
        streamRequest.resumeID = request.headers[.lastEventID] ?? query["lastEventId"].map(String.init)
        let format = StreamFormat.negotiate(accept: request.headers[.accept])
        let audit = StreamAudit(client: context.clientAddress, sources: [source.name], format: format, resumed: streamRequest.resumeID != nil, grant: context.grant, drain: DrainGauge(channel: context.channel))
        return responder.response(
            source: source, streamRequest: streamRequest, format: format, body: request.body, audit: audit, channel: context.channel
        )
    }

    private func listing(for grant: AccessGrant) -> [UInt8] {
        let sources = registry.sources.filter { grant.allows($0.name) }
        var out: [UInt8] = Array("[".utf8)
        for (index, source) in sources.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out += Array("{\"name\":".utf8) + JSONText.quoted(source.name)
            out += Array(",\"kind\":".utf8) + JSONText.quoted(source.kind)
            for (key, value) in source.details { out += Array(",".utf8) + JSONText.quoted(key) + Array(":".utf8) + JSONText.quoted(value) }
            for (key, values) in source.detailLists {
                out += Array(",".utf8) + JSONText.quoted(key) + Array(":[".utf8)
                for (index, value) in values.enumerated() { out += (index > 0 ? Array(",".utf8) : []) + JSONText.quoted(value) }
                out.append(UInt8(ascii: "]"))
            }
            if let problem = source.problem { out += Array(",\"problem\":".utf8) + JSONText.quoted(problem) }
            if let notice = source.notice { out += Array(",\"notice\":".utf8) + JSONText.quoted(notice) }
            out += Array(",\"following\":\(source.isFollowing),\"clients\":\(source.clientCount)}".utf8)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    private func asset(_ name: String) -> Response {
        guard let asset = assets[name] else { return Self.error("no such resource", status: .notFound) }
        var headers = HTTPFields()
        headers[.contentType] = asset.contentType
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[.contentSecurityPolicy] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.bytes))
    }

    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-cache"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes + [0x0A])))
    }

    static func error(_ message: String, status: HTTPResponse.Status) -> Response {
        json(Array("{\"error\":".utf8) + JSONText.quoted(message) + Array("}".utf8), status: status)
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

extension HTTPField.Name {
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}

/// Answers every error (unknown routes included) with a JSON body `{"error": "..."}`, keeping
/// the error's headers (`Retry-After`).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            var response = SourcesAPI.error(error.body ?? Self.message(for: error.status), status: error.status)
            for field in error.headers { response.headers.append(field) }
            return response
        } catch let error as any HTTPResponseError {
            return SourcesAPI.error(Self.message(for: error.status), status: error.status)
        }
    }

    private static func message(for status: HTTPResponse.Status) -> String {
        status == .notFound ? "no such resource" : status.reasonPhrase
    }
}
