#if canImport(Glibc)
import Glibc
#endif
import Logging
import TailSSECore
import TailSSEHTTP

/// tailsse's settings, resolved from the command line over the configuration file over defaults.
///
/// Each value remembers where it came from, so an error names the option (`--heartbeat ...`) or
/// the file and line (`/etc/tailsse/tailsse.conf:7: heartbeat ...`).
struct Settings: Sendable, Equatable {
    var host = "127.0.0.1"
    var port = 8111
    var files: [FileSpec] = []
    var journal = false
    var journalDirectory: String?
    var staticDirectory: String?
    /// The path everything is served under (behind a proxy that forwards a sub-path).
    var basePath = BasePath.root
    var maxLineBytes = 64 << 10
    var heartbeat = 15.0
    var writeTimeout = 30.0
    /// The least bytes per second a client that keeps falling behind must read (0: no minimum).
    var minReadRate = 1024
    /// How long a client is watched before it is judged by `minReadRate`.
    var minReadWindow = 60.0
    var retryMilliseconds = 2000
    var sharedBufferBytes = 4 << 20
    var logLevel = Logger.Level.info
    /// Longest wait for a request head (new or idle kept-alive connections).
    var requestTimeout = 10.0
    /// Connections held at once in all; `nil`: derived from the open-file limit.
    var maxConnections: Int?
    /// Connections held at once per client address; `nil`: derived from the open-file limit.
    var maxConnectionsPerClient: Int?
    /// The token file; `nil`: no access control.
    var tokenFile: String?
    /// Serve a non-loopback address without a token file.
    var allowUnauthenticated = false
    /// Host names requests may use besides loopback names and the listen address.
    var allowedHosts: [String] = []
    /// Origins whose pages may call the API (CORS).
    var allowedOrigins: [String] = []
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    var trustedProxies = TrustedProxies()
    /// The certificate chain and private key (PEM) to serve HTTPS with.
    var tls: TLSSettings?

    /// A file source: `NAME=PATH`, the path absolute.
    struct FileSpec: Sendable, Equatable {
        var name: String
        var path: String
    }

    /// The keys of a configuration file: the long options' names.
    static let keys: Set<String> = [
        "listen", "file", "journal", "journal-directory", "static-dir", "base-path", "max-line-bytes", "heartbeat",
        "write-timeout", "min-read-rate", "min-read-window", "retry", "shared-buffer-bytes", "log-level", "token-file", "allow-unauthenticated", "allowed-host",
        "allowed-origin", "tls-cert", "tls-key", "request-timeout", "max-connections", "max-connections-per-client", "trusted-proxy",
    ]

    /// Keys whose values form a list: command-line values replace the configuration file's.
    static let listKeys: Set<String> = ["allowed-host", "allowed-origin", "trusted-proxy"]

    /// One raw value and where it was given.
    struct Given: Sendable {
        var key: String
        var value: String
        /// `nil` for the command line, else the configuration file's path and line.
        var file: (path: String, line: Int)?
        /// The directory a relative path in the value is resolved against.
        var directory: String

        func problem(_ message: String) -> ConfigurationError {
            if let file { return ConfigurationError("\(file.path):\(file.line): \(key) \(message)") }
            return ConfigurationError("--\(key) \(message)")
        }
    }

    /// Resolves settings from the configuration file's entries, then the command line's values
    /// (given as `key`/`value` pairs, in order): a command-line value replaces the file's, and a
    /// command-line `file` replaces a file source of the same name.
    static func resolve(commandLine: [(key: String, value: String)], file: ConfigurationFile?) throws(ConfigurationError) -> Settings {
        let workingDirectory = currentDirectory()
        var given: [String: Given] = [:]
        var files: [Given] = []
        var lists: [String: [Given]] = [:]
        if let file {
            for entry in file.entries {
                let value = Given(key: entry.key, value: entry.value, file: (file.path, entry.line), directory: file.directory)
                if entry.key == "file" { files.append(value) } else if listKeys.contains(entry.key) { lists[entry.key, default: []].append(value) } else { given[entry.key] = value }
            }
        }
        var commandLineFiles: [Given] = []
        var commandLineLists: [String: [Given]] = [:]
        for (key, value) in commandLine {
            let value = Given(key: key, value: value, file: nil, directory: workingDirectory)
            if key == "file" { commandLineFiles.append(value) } else if listKeys.contains(key) { commandLineLists[key, default: []].append(value) } else { given[key] = value }
        }
        lists.merge(commandLineLists) { _, commandLine in commandLine }
        var settings = Settings()
        var specs: [(FileSpec, Given)] = []
        for value in files + commandLineFiles {
            let spec = try fileSpec(value)
            if let existing = specs.firstIndex(where: { $0.0.name == spec.name }) {
                guard value.file == nil, specs[existing].1.file != nil else {
                    throw value.problem("names the source '\(spec.name)' a second time")
                }
                specs[existing] = (spec, value)
            } else {
                specs.append((spec, value))
            }
        }
        settings.files = specs.map(\.0)
        if let value = given["listen"] { (settings.host, settings.port) = try endpoint(value) }
        if let value = given["journal"] { settings.journal = try boolean(value) }
        if let value = given["journal-directory"] { settings.journalDirectory = absolute(value.value, in: value.directory) }
        if settings.journal || settings.journalDirectory != nil, let (_, value) = specs.first(where: { $0.0.name == "journal" }) {
            throw value.problem("names a file 'journal', a name taken by the journal source; name the file differently")
        }
        if let value = given["static-dir"] { settings.staticDirectory = absolute(value.value, in: value.directory) }
        if let value = given["base-path"] {
            guard let path = BasePath(parsing: value.value) else {
                throw value.problem("must be a path like /logs/: segments of A-Z a-z 0-9 . _ ~ - (not . or ..), at most \(BasePath.maxSegments), got '\(value.value.prefix(80))'")
            }
            settings.basePath = path
        }
        if let value = given["max-line-bytes"] { settings.maxLineBytes = try integer(value, in: 16...(16 << 20)) }
        if let value = given["heartbeat"] { settings.heartbeat = try seconds(value, in: 0.1...3600) }
        if let value = given["write-timeout"] { settings.writeTimeout = try seconds(value, in: 0.1...3600) }
        if let value = given["min-read-rate"] { settings.minReadRate = try integer(value, in: 0...(1 << 30)) }
        if let value = given["min-read-window"] { settings.minReadWindow = try seconds(value, in: 1...86400) }
        if let value = given["retry"] { settings.retryMilliseconds = try integer(value, in: 0...3_600_000, unit: "ms") }
        if let value = given["shared-buffer-bytes"] { settings.sharedBufferBytes = try integer(value, in: 4096...(1 << 40)) }
        if let value = given["request-timeout"] { settings.requestTimeout = try seconds(value, in: 0.1...3600) }
        if let value = given["max-connections"] { settings.maxConnections = try integer(value, in: 1...10_000_000) }
        if let value = given["max-connections-per-client"] { settings.maxConnectionsPerClient = try integer(value, in: 1...10_000_000) }
        if let value = given["token-file"] { settings.tokenFile = absolute(value.value, in: value.directory) }
        if let value = given["allow-unauthenticated"] { settings.allowUnauthenticated = try boolean(value) }
        for value in lists["allowed-host"] ?? [] {
            guard HostPolicy.hostName(ofAuthority: value.value) != nil, !value.value.contains("/") else {
                throw value.problem("must be a host name or address, e.g. logs.example.com, got '\(value.value.prefix(80))'")
            }
            settings.allowedHosts.append(value.value)
        }
        if let values = lists["trusted-proxy"], let first = values.first {
            do throws(TrustedProxies.ParseError) {
                settings.trustedProxies = try TrustedProxies(parsing: values.map(\.value))
            } catch {
                throw (values.first { $0.value == error.value } ?? first).problem(error.description)
            }
        }
        for value in lists["allowed-origin"] ?? [] {
            guard OriginPolicy.normalized(value.value) != nil else {
                throw value.problem("must be an origin, http(s)://HOST[:PORT] without a path, got '\(value.value.prefix(80))'")
            }
            settings.allowedOrigins.append(value.value)
        }
        if let value = given["log-level"] {
            guard let level = Logger.Level(rawValue: value.value) else {
                throw value.problem("must be one of trace, debug, info, notice, warning, error, critical")
            }
            settings.logLevel = level
        }
        switch (given["tls-cert"], given["tls-key"]) {
        case (let certificate?, let key?): settings.tls = TLSSettings(certificatePath: absolute(certificate.value, in: certificate.directory), keyPath: absolute(key.value, in: key.directory))
        case (let certificate?, nil): throw certificate.problem("needs tls-key too: the certificate's private key (PEM)")
        case (nil, let key?): throw key.problem("needs tls-cert too: the certificate (PEM) the key belongs to")
        case (nil, nil): break
        }
        return settings
    }

    /// The settings whose change needs a restart (everything but the sources), by key.
    func restartNeeded(comparedTo other: Settings) -> [String] {
        var keys: [String] = []
        if host != other.host || port != other.port { keys.append("listen") }
        if staticDirectory != other.staticDirectory { keys.append("static-dir") }
        if basePath != other.basePath { keys.append("base-path") }
        if heartbeat != other.heartbeat { keys.append("heartbeat") }
        if writeTimeout != other.writeTimeout { keys.append("write-timeout") }
        if minReadRate != other.minReadRate { keys.append("min-read-rate") }
        if minReadWindow != other.minReadWindow { keys.append("min-read-window") }
        if retryMilliseconds != other.retryMilliseconds { keys.append("retry") }
        if logLevel != other.logLevel { keys.append("log-level") }
        if requestTimeout != other.requestTimeout { keys.append("request-timeout") }
        if maxConnections != other.maxConnections { keys.append("max-connections") }
        if maxConnectionsPerClient != other.maxConnectionsPerClient { keys.append("max-connections-per-client") }
        if (tokenFile == nil) != (other.tokenFile == nil) { keys.append("token-file") }
        if allowUnauthenticated != other.allowUnauthenticated { keys.append("allow-unauthenticated") }
        if allowedHosts != other.allowedHosts { keys.append("allowed-host") }
        if allowedOrigins != other.allowedOrigins { keys.append("allowed-origin") }
        if trustedProxies != other.trustedProxies { keys.append("trusted-proxy") }
        if tls != other.tls { keys.append("tls-cert/tls-key") }
        return keys
    }

    private static func fileSpec(_ given: Given) throws(ConfigurationError) -> FileSpec {
        guard let equals = given.value.firstIndex(of: "=") else { throw given.problem("must be NAME=PATH, got '\(given.value.prefix(80))'") }
        let name = String(given.value[..<equals])
        let path = String(given.value[given.value.index(after: equals)...])
        guard SourceName.isValid(name.utf8) else { throw given.problem("source name '\(name.prefix(80))' must be 1-64 characters of A-Z a-z 0-9 . _ -") }
        guard !path.isEmpty, !path.hasSuffix("/") else { throw given.problem("\(name)= needs the path of a file") }
        let resolved = absolute(path, in: given.directory)
        if FileGlob.isGlob(resolved) {
            do throws(FileGlob.Problem) {
                _ = try FileGlob(path: resolved)
            } catch {
                throw given.problem("\(name)=: \(error.description)")
            }
        }
        return FileSpec(name: name, path: resolved)
    }

    private static func endpoint(_ given: Given) throws(ConfigurationError) -> (String, Int) {
        let listen = given.value
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw given.problem("must be HOST:PORT, e.g. 127.0.0.1:8111 or [::1]:8111")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw given.problem("needs a host, e.g. 127.0.0.1:\(port)") }
        return (host, port)
    }

    /// The connection limits: the given ones, the others derived from `openFiles`.
    func connectionLimits(openFiles: Int) -> ConnectionLimits {
        var limits = ConnectionLimits.defaults(openFiles: openFiles)
        if let maxConnections { limits.total = maxConnections }
        if let maxConnectionsPerClient { limits.perClient = maxConnectionsPerClient } else { limits.perClient = min(limits.perClient, limits.total) }
        return limits
    }

    /// Whether `host` (a listen address) can only be reached from this machine.
    static func isLoopback(host: String) -> Bool {
        host.lowercased() == "localhost" || HostPolicy.isLoopbackAddress(host)
    }

    private static func boolean(_ given: Given) throws(ConfigurationError) -> Bool {
        switch given.value.lowercased() {
        case "yes", "true", "on", "1": return true
        case "no", "false", "off", "0": return false
        default: throw given.problem("must be yes or no, got '\(given.value.prefix(80))'")
        }
    }

    private static func integer(_ given: Given, in range: ClosedRange<Int>, unit: String = "") throws(ConfigurationError) -> Int {
        guard let value = Int(given.value), range.contains(value) else {
            throw given.problem("must be a whole number between \(range.lowerBound) and \(range.upperBound)\(unit.isEmpty ? "" : " \(unit)")")
        }
        return value
    }

    private static func seconds(_ given: Given, in range: ClosedRange<Double>) throws(ConfigurationError) -> Double {
        guard let value = Double(given.value), value.isFinite, range.contains(value) else {
            throw given.problem("must be between \(range.lowerBound) and \(Int(range.upperBound)) seconds")
        }
        return value
    }

    private static func absolute(_ path: String, in directory: String) -> String {
        path.hasPrefix("/") ? path : (directory.hasSuffix("/") ? directory : directory + "/") + path
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
