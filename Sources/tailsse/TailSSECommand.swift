import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Metrics
import TailSSECore
import TailSSEHTTP
import TailSSESources

@main
struct TailSSECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tailsse",
        abstract: "Follow log files and stream every new line as Server-Sent Events, with exact resume.",
        version: TailSSEVersion.current
    )

    @Option(name: .long, help: ArgumentHelp("Configuration file (key = value lines); options given here override it. SIGHUP re-reads it.", valueName: "FILE"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Address to listen on (default 127.0.0.1:8111); ignored when systemd passes sockets.", valueName: "HOST:PORT"))
    var listen: String?

    @Option(name: .customLong("file"), help: ArgumentHelp("Follow a log file as the source NAME (repeatable).", valueName: "NAME=PATH"))
    var files: [String] = []

    @Flag(name: .customLong("journal"), help: "Follow this machine's systemd journal as the source 'journal'.")
    var journal = false

    @Option(name: .customLong("journal-directory"), help: ArgumentHelp("Follow the journal files in DIR as the source 'journal' (e.g. from systemd-journal-remote).", valueName: "DIR"))
    var journalDirectory: String?

    @Option(name: .customLong("static-dir"), help: ArgumentHelp("Directory of the viewer page.", valueName: "DIR"))
    var staticDirectory: String?

    @Option(name: .customLong("base-path"), help: ArgumentHelp("Serve the page and the API under this path, e.g. /logs/ behind a proxy (default /).", valueName: "PATH"))
    var basePath: String?

    @Option(name: .customLong("max-line-bytes"), help: "Lines longer than this are split into marked pieces (default 65536).")
    var maxLineBytes: String?

    @Option(name: .long, help: ArgumentHelp("Longest quiet time before a heartbeat (default 15).", valueName: "SECONDS"))
    var heartbeat: String?

    @Option(name: .customLong("write-timeout"), help: ArgumentHelp("Disconnect a client that reads nothing for this long (default 30).", valueName: "SECONDS"))
    var writeTimeout: String?

    @Option(name: .customLong("min-read-rate"), help: ArgumentHelp("Close a client that falls ever further behind while it reads less than this for --min-read-window; 0: never (default 1024).", valueName: "BYTES-PER-SECOND"))
    var minReadRate: String?

    @Option(name: .customLong("min-read-window"), help: ArgumentHelp("How long a client falling behind is watched before --min-read-rate applies (default 60).", valueName: "SECONDS"))
    var minReadWindow: String?

    @Option(name: .customLong("retry"), help: ArgumentHelp("Reconnection delay hinted to EventSource clients (default 2000).", valueName: "MILLISECONDS"))
    var retryMilliseconds: String?

    @Option(name: .customLong("shared-buffer-bytes"), help: "Bytes of recent lines per source kept in memory for all clients to share (default 4194304).")
    var sharedBufferBytes: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Option(name: .customLong("request-timeout"), help: ArgumentHelp("Close a connection that sends no whole request head for this long (new or idle; default 10).", valueName: "SECONDS"))
    var requestTimeout: String?

    @Option(name: .customLong("max-connections"), help: ArgumentHelp("Connections held at once; more get 503 (default: the open-file limit less 128).", valueName: "N"))
    var maxConnections: String?

    @Option(name: .customLong("max-connections-per-client"), help: ArgumentHelp("Connections held at once per client address (default: a sixteenth of --max-connections, at least 16).", valueName: "N"))
    var maxConnectionsPerClient: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp("Require a token: one per line, optionally followed by the sources it may read (TOKEN app nginx). SIGHUP re-reads it.", valueName: "FILE"))
    var tokenFile: String?

    @Flag(name: .customLong("allow-unauthenticated"), help: "Serve a non-loopback address without a token file (anyone who reaches the port reads every source).")
    var allowUnauthenticated = false

    @Option(name: .customLong("allowed-host"), help: ArgumentHelp("A host name requests may use besides loopback names and the listen address (repeatable).", valueName: "NAME"))
    var allowedHosts: [String] = []

    @Option(name: .customLong("allowed-origin"), help: ArgumentHelp("An origin whose pages may call the API and read streams, e.g. https://dash.example.com (repeatable).", valueName: "ORIGIN"))
    var allowedOrigins: [String] = []
    @Option(name: .customLong("trusted-proxy"), help: ArgumentHelp("A reverse proxy (address or network, e.g. 127.0.0.1 or 10.0.0.0/8) whose X-Forwarded-For names the client for per-client limits and logs (repeatable).", valueName: "ADDRESS"))
    var trustedProxies: [String] = []
    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate chain (PEM); needs --tls-key. SIGHUP re-reads it.", valueName: "FILE"))
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The certificate's private key (PEM).", valueName: "FILE"))
    var tlsKey: String?

    /// The options given on the command line, as configuration keys and values.
    var commandLine: [(key: String, value: String)] {
        var given: [(key: String, value: String)] = files.map { ("file", $0) }
        given += allowedHosts.map { ("allowed-host", $0) } + allowedOrigins.map { ("allowed-origin", $0) } + trustedProxies.map { ("trusted-proxy", $0) }
        let scalars: [(String, String?)] = [
            ("listen", listen), ("journal", journal ? "yes" : nil), ("journal-directory", journalDirectory), ("static-dir", staticDirectory), ("base-path", basePath), ("max-line-bytes", maxLineBytes), ("heartbeat", heartbeat),
            ("write-timeout", writeTimeout), ("min-read-rate", minReadRate), ("min-read-window", minReadWindow), ("retry", retryMilliseconds), ("shared-buffer-bytes", sharedBufferBytes), ("log-level", logLevel),
            ("request-timeout", requestTimeout), ("max-connections", maxConnections), ("max-connections-per-client", maxConnectionsPerClient),
            ("token-file", tokenFile), ("allow-unauthenticated", allowUnauthenticated ? "yes" : nil),
            ("tls-cert", tlsCertificate), ("tls-key", tlsKey),
        ]
        for case (let key, let value?) in scalars { given.append((key, value)) }
        return given
    }

    func validate() throws {
        _ = try settings()
    }

    /// Reads the configuration file (if any) and resolves every setting.
    func settings() throws(ConfigurationError) -> Settings {
        let file = try config.map { path throws(ConfigurationError) in try ConfigurationFile.read(path: path) }
        return try Settings.resolve(commandLine: commandLine, file: file)
    }

    func run() async throws {
        let settings = try settings()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = settings.logLevel
            return handler
        }
        let logger = Logger(label: "tailsse")
        Self.raiseOpenFileLimit(logger: logger)
        let sockets = try ListenSockets.inherited()
        try Self.refuseOpenDoor(settings: settings, sockets: sockets)
        let tokens = try settings.tokenFile.map { path throws(ConfigurationError) in try TokenFile.read(path: path, logger: logger) }
        let metrics = TailSSEMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        let watcher = try FileWatchService(logger: logger)
        let catalog = SourceCatalog(watcher: watcher, metrics: metrics, logger: logger)
        let registry = SourceRegistry()
        let sources = try catalog.sources(for: settings)
        if let tokens { TokenFile.warnAboutUnknownSources(in: tokens, sources: sources.map(\.name), logger: logger) }
        let access = try AccessControl(
            tokens: tokens, hosts: HostPolicy(allowedNames: settings.allowedHosts),
            origins: OriginPolicy(allowedOrigins: settings.allowedOrigins), secure: settings.tls != nil,
            basePath: settings.basePath, trustedProxies: settings.trustedProxies
        )
        try await registry.apply(sources)
        if !sockets.isEmpty { logger.info("serving on the sockets systemd passed", metadata: ["count": .stringConvertible(sockets.count)]) }
        var configuration = ServerConfiguration(
            listen: sockets.isEmpty ? .address(host: settings.host, port: settings.port) : .sockets(sockets),
            staticDirectory: settings.staticDirectory ?? Self.defaultStaticDirectory(),
            stream: StreamSettings(
                heartbeat: .milliseconds(Int64(settings.heartbeat * 1000)),
                writeTimeout: .milliseconds(Int64(settings.writeTimeout * 1000)),
                retryMilliseconds: settings.retryMilliseconds,
                slowReader: SlowReaderRule(minimumBytesPerSecond: settings.minReadRate, window: .milliseconds(Int64(settings.minReadWindow * 1000))),
                // TAILSSE_LIVE_PUSH=off: every client reads the live end in a task of its own (to compare).
                livePush: getenv("TAILSSE_LIVE_PUSH").map { String(cString: $0) } != "off"
            ),
            tls: settings.tls,
            access: access
        )
        configuration.requestTimeout = .milliseconds(Int64(settings.requestTimeout * 1000))
        configuration.connectionLimits = settings.connectionLimits(openFiles: Self.openFileLimit())
        configuration.metrics = metrics
        let reloader = Reloader(command: self, running: settings, catalog: catalog, registry: registry, access: access, logger: logger)
        try await runServer(
            configuration: configuration,
            registry: registry,
            services: [watcher],
            probes: [progressProbe("the inotify thread", limit: .seconds(5), counter: { watcher.passes })],
            reload: { await reloader.reload() },
            logger: logger
        ) { address in
            print("tailsse: listening on \(settings.tls == nil ? "http" : "https")://\(address)\(settings.basePath)")
            fflush(nil)
        }
    }

    /// Without a token file, serving an address other machines can reach must be asked for with
    /// `--allow-unauthenticated`: logs hold secrets.
    private static func refuseOpenDoor(settings: Settings, sockets: [Int32]) throws(ConfigurationError) {
        guard settings.tokenFile == nil, !settings.allowUnauthenticated else { return }
        let exposed = sockets.isEmpty
            ? (Settings.isLoopback(host: settings.host) ? [] : ["\(settings.host):\(settings.port)"])
            : sockets.compactMap { ListenSockets.localAddress(of: $0) }.filter { !Settings.isLoopback(host: $0.host) }.map(\.description)
        guard let first = exposed.first else { return }
        throw ConfigurationError("refusing to serve \(first) without a token file: anyone who reaches it could read every log. Give --token-file FILE (token-file = FILE in the configuration), listen on 127.0.0.1, or add --allow-unauthenticated if the open door is intended")
    }

    /// The installed page (`PREFIX/share/tailsse/static` beside `PREFIX/bin`), else `./static`.
    private static func defaultStaticDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if length > 0 {
            let executable = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var components = executable.split(separator: "/", omittingEmptySubsequences: false)
            components.removeLast(min(2, components.count))
            let installed = components.joined(separator: "/") + "/share/tailsse/static"
            if access(installed + "/index.html", R_OK) == 0 { return installed }
        }
        return access("static/index.html", R_OK) == 0 ? "static" : nil
    }

    /// The soft limit on open files (after ``raiseOpenFileLimit(logger:)``).
    private static func openFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(min(limit.rlim_cur, 1 << 24))
    }

    /// Every client is a socket: raise the soft limit on open files to the hard limit (systemd's
    /// default soft limit of 1,024 would cap tailsse near a thousand clients).
    private static func raiseOpenFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let previous = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.warning("cannot raise the open-file limit", metadata: ["soft": "\(previous)", "hard": "\(limit.rlim_max)"])
        }
    }
}
