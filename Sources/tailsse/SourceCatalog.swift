#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOPosix
import Synchronization
import TailSSECore
import TailSSEHTTP
import TailSSESources

/// Makes the sources that settings ask for (not yet begun: ``SourceRegistry`` begins them).
struct SourceCatalog: Sendable {
    let watcher: FileWatchService
    /// Where the sources count for `/metrics`.
    let metrics: TailSSEMetrics
    let logger: Logger

    func sources(for settings: Settings) throws(ConfigurationError) -> [any ManagedSource] {
        var files = settings.files
        var journal: JournalLocation? = settings.journalDirectory.map { .directory($0) } ?? (settings.journal ? .local : nil)
        if files.isEmpty, journal == nil {
            files = Self.defaultFiles()
            journal = localJournalHasEntries() ? .local : nil
            guard !files.isEmpty || journal != nil else {
                throw ConfigurationError("no sources: add --file NAME=PATH or --journal, or 'file = NAME=PATH' or 'journal = yes' in the configuration (no readable journal, /var/log/syslog or /var/log/messages here to follow by default)")
            }
            logger.info("no sources given; following the system log", metadata: [
                "files": .string(files.map(\.path).joined(separator: ", ")), "journal": .string(journal == nil ? "no" : "yes"),
            ])
        }
        var sources: [any ManagedSource] = files.map { file -> any ManagedSource in
            if FileGlob.isGlob(file.path), let glob = try? FileGlob(path: file.path) {
                return GlobSource(
                    name: file.name, glob: glob, maxLineBytes: settings.maxLineBytes, sharedBytes: settings.sharedBufferBytes, watcher: watcher,
                    meter: metrics.source(named: file.name), logger: logger
                )
            }
            return FileSource(
                name: file.name, path: file.path, maxLineBytes: settings.maxLineBytes, sharedBytes: settings.sharedBufferBytes, watcher: watcher,
                meter: metrics.source(named: file.name), logger: logger
            )
        }
        if let journal {
            sources.append(JournalSource(location: journal, sharedBytes: settings.sharedBufferBytes, meter: metrics.source(named: "journal"), logger: logger))
        }
        return sources
    }

    private static func defaultFiles() -> [Settings.FileSpec] {
        [("syslog", "/var/log/syslog"), ("messages", "/var/log/messages")]
            .filter { access($0.1, R_OK) == 0 }
            .map { Settings.FileSpec(name: $0.0, path: $0.1) }
    }
}

/// Re-reads the configuration on `SIGHUP` and applies its sources; other changed settings are
/// reported as needing a restart. A configuration with errors changes nothing.
final class Reloader: Sendable {
    private let command: TailSSECommand
    private let catalog: SourceCatalog
    private let registry: SourceRegistry
    private let access: AccessControl
    private let logger: Logger
    private let running: Settings

    init(command: TailSSECommand, running: Settings, catalog: SourceCatalog, registry: SourceRegistry, access: AccessControl, logger: Logger) {
        self.command = command
        self.running = running
        self.catalog = catalog
        self.registry = registry
        self.access = access
        self.logger = logger
    }

    /// Returns the problem, if the reload failed, for systemd's status line.
    func reload() async -> String? {
        logger.info("reloading the configuration", metadata: ["file": .string(command.config ?? "(none)")])
        let command = self.command
        let catalog = self.catalog
        let logger = self.logger
        let keepsTokens = running.tokenFile != nil
        let outcome: Result<(Settings, [any ManagedSource], TokenList?), ConfigurationError>
        do {
            outcome = try await NIOThreadPool.singleton.runIfActive { () -> Result<(Settings, [any ManagedSource], TokenList?), ConfigurationError> in
                do throws(ConfigurationError) {
                    let settings = try command.settings()
                    let sources = try catalog.sources(for: settings)
                    let tokens = try settings.tokenFile.flatMap { path throws(ConfigurationError) in
                        keepsTokens ? try TokenFile.read(path: path, logger: logger) : nil
                    }
                    if let tokens { TokenFile.warnAboutUnknownSources(in: tokens, sources: sources.map(\.name), logger: logger) }
                    return .success((settings, sources, tokens))
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            outcome = .failure(ConfigurationError("cannot read the configuration: \(error)"))
        }
        do {
            let (settings, sources, tokens) = try outcome.get()
            if let tokens {
                access.replaceTokens(tokens)
                logger.info("token file reloaded", metadata: ["tokens": .stringConvertible(tokens.count)])
            }
            let changes = try await registry.apply(sources)
            logger.info("configuration reloaded", metadata: ["sources": .string(changes.description)])
            let ignored = settings.restartNeeded(comparedTo: running)
            if !ignored.isEmpty {
                logger.warning("changed settings take effect only after a restart", metadata: ["settings": .string(ignored.joined(separator: ", "))])
            }
            return nil
        } catch {
            logger.error("reload failed; keeping the current sources", metadata: ["error": .string("\(error)")])
            return "reload failed: \(error)"
        }
    }
}
