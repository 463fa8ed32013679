import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Logging
import ServiceLifecycle
import TailSSECore
import TailSSEHTTP
import TailSSESources

@main
struct TailSSECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tailsse",
        abstract: "Follow log files and stream every new line as Server-Sent Events, with exact resume."
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on.", valueName: "HOST:PORT"))
    var listen: String = "127.0.0.1:8111"

    @Option(name: .customLong("file"), help: ArgumentHelp("Follow a log file as the source NAME (repeatable).", valueName: "NAME=PATH"))
    var files: [String] = []

    @Flag(name: .customLong("journal"), help: "Follow this machine's systemd journal as the source 'journal'.")
    var journal = false

    @Option(name: .customLong("journal-directory"), help: ArgumentHelp("Follow the journal files in DIR as the source 'journal' (e.g. from systemd-journal-remote).", valueName: "DIR"))
    var journalDirectory: String?

    @Option(name: .customLong("static-dir"), help: ArgumentHelp("Directory of the viewer page.", valueName: "DIR"))
    var staticDirectory: String?

    @Option(name: .customLong("max-line-bytes"), help: "Lines longer than this are split into marked pieces.")
    var maxLineBytes: Int = 64 << 10

    @Option(name: .long, help: ArgumentHelp("Longest quiet time before a heartbeat.", valueName: "SECONDS"))
    var heartbeat: Double = 15

    @Option(name: .customLong("write-timeout"), help: ArgumentHelp("Disconnect a client that reads nothing for this long.", valueName: "SECONDS"))
    var writeTimeout: Double = 30

    @Option(name: .customLong("retry"), help: ArgumentHelp("Reconnection delay hinted to EventSource clients.", valueName: "MILLISECONDS"))
    var retryMilliseconds: Int = 2000

    @Option(name: .customLong("shared-buffer-bytes"), help: "Bytes of recent lines per source kept in memory for all clients to share.")
    var sharedBufferBytes: Int = 4 << 20

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        _ = try endpoint()
        let names = try fileSources().map(\.name)
        if journal || journalDirectory != nil, names.contains("journal") {
            throw ValidationError("the source name 'journal' is taken by --journal; name the file differently")
        }
        if let journalDirectory, journalDirectory.isEmpty { throw ValidationError("--journal-directory needs a directory") }
        guard maxLineBytes >= 16 && maxLineBytes <= 16 << 20 else { throw ValidationError("--max-line-bytes must be between 16 and 16777216") }
        guard heartbeat >= 0.1 && heartbeat <= 3600 else { throw ValidationError("--heartbeat must be between 0.1 and 3600 seconds") }
        guard writeTimeout >= 0.1 && writeTimeout <= 3600 else { throw ValidationError("--write-timeout must be between 0.1 and 3600 seconds") }
        guard retryMilliseconds >= 0 && retryMilliseconds <= 3_600_000 else { throw ValidationError("--retry must be between 0 and 3600000 ms") }
        guard sharedBufferBytes >= 4096 else { throw ValidationError("--shared-buffer-bytes must be at least 4096") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            return handler
        }
        let logger = Logger(label: "tailsse")
        var specs = try fileSources()
        var journalLocation: JournalLocation? = journalDirectory.map { .directory(Self.absolute($0)) } ?? (journal ? .local : nil)
        if specs.isEmpty && journalLocation == nil {
            specs = Self.defaultFiles()
            journalLocation = localJournalHasEntries() ? .local : nil
            guard !specs.isEmpty || journalLocation != nil else {
                throw ValidationError("no sources: add --file NAME=PATH or --journal (no readable journal, /var/log/syslog or /var/log/messages here to follow by default)")
            }
            logger.info("no sources given; following the system log", metadata: [
                "files": .string(specs.map(\.path).joined(separator: ", ")), "journal": .string(journalLocation == nil ? "no" : "yes"),
            ])
        }
        let fileSources = specs.map {
            FileSource(name: $0.name, path: $0.path, maxLineBytes: maxLineBytes, sharedBytes: sharedBufferBytes, logger: logger)
        }
        var sources: [any LogSource] = fileSources
        var services: [any Service] = [try FileWatchService(sources: fileSources, logger: logger)]
        if let journalLocation {
            let journalSource = JournalSource(location: journalLocation, sharedBytes: sharedBufferBytes, logger: logger)
            sources.append(journalSource)
            services.append(try JournalService(source: journalSource))
        }
        let (host, port) = try endpoint()
        let configuration = ServerConfiguration(
            host: host,
            port: port,
            staticDirectory: staticDirectory ?? Self.defaultStaticDirectory(),
            stream: StreamSettings(
                heartbeat: .milliseconds(Int64(heartbeat * 1000)),
                writeTimeout: .milliseconds(Int64(writeTimeout * 1000)),
                retryMilliseconds: retryMilliseconds
            )
        )
        try await runServer(configuration: configuration, sources: sources, services: services, logger: logger) { address in
            print("tailsse: listening on http://\(address)/")
            fflush(nil)
        }
    }

    private func endpoint() throws -> (String, Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8111 or [::1]:8111")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ValidationError("--listen needs a host, e.g. 127.0.0.1:\(port)") }
        return (host, port)
    }

    private struct FileSpec {
        var name: String
        var path: String
    }

    private func fileSources() throws -> [FileSpec] {
        var seen = Set<String>()
        return try files.map { spec in
            guard let equals = spec.firstIndex(of: "=") else { throw ValidationError("--file must be NAME=PATH, got '\(spec)'") }
            let name = String(spec[..<equals])
            let path = String(spec[spec.index(after: equals)...])
            guard Self.isValidSourceName(name) else {
                throw ValidationError("source name '\(name)' must be 1-64 characters of A-Z a-z 0-9 . _ -")
            }
            guard !path.isEmpty, !path.hasSuffix("/") else { throw ValidationError("--file \(name)= needs the path of a file") }
            guard seen.insert(name).inserted else { throw ValidationError("source name '\(name)' is given twice") }
            return FileSpec(name: name, path: Self.absolute(path))
        }
    }

    static func isValidSourceName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }

    /// `path` made absolute against the working directory.
    private static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
    }

    private static func defaultFiles() -> [FileSpec] {
        [("syslog", "/var/log/syslog"), ("messages", "/var/log/messages")]
            .filter { access($0.1, R_OK) == 0 }
            .map { FileSpec(name: $0.0, path: $0.1) }
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
}
