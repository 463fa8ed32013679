#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import TailSSECore

/// The ``FollowedGenerations`` of one configured file, kept in memory and in a file of the state
/// directory, so a restarted tailsse still knows which rotated files it followed.
///
/// The state directory is `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else
/// `$XDG_STATE_HOME/tailsse`, else `$HOME/.local/state/tailsse`; when none can be written the
/// record lives in memory only (resumes into files rotated before a restart then get a `reset`).
final class FollowedGenerationStore: Sendable {
    private let state: Mutex<FollowedGenerations>
    private let storePath: String?
    private let logger: Logger
    private let warned = Atomic<Bool>(false)

    /// - Parameters:
    ///   - filePath: the configured path of the followed file (the record is kept per path).
    ///   - stateDirectory: where to keep the record; `nil`: in memory only.
    init(filePath: String, stateDirectory: String?, logger: Logger) {
        self.logger = logger
        storePath = stateDirectory.map { "\($0)/followed-\(String(GenerationFingerprint.fnv1a(filePath.utf8), radix: 16)).generations" }
        let stored = storePath.flatMap { readSmallFile($0, limit: 64 << 10) }.map { String(decoding: $0, as: UTF8.self) }
        state = Mutex(stored.map { FollowedGenerations(parsing: $0) } ?? FollowedGenerations())
    }

    /// The state directory from the environment (see the type's description), or `nil`.
    static func defaultDirectory() -> String? {
        if let value = environment("STATE_DIRECTORY"), let first = value.split(separator: ":").first {
            return String(first)
        }
        if let value = environment("XDG_STATE_HOME"), value.hasPrefix("/") { return value + "/tailsse" }
        if let home = environment("HOME"), home.hasPrefix("/"), home != "/" { return home + "/.local/state/tailsse" }
        return nil
    }

    func entry(for identity: FileIdentity) -> FollowedGenerations.Entry? {
        state.withLock { $0.entry(for: identity) }
    }

    /// The fingerprints of what `identity` held before it was truncated in place, newest first.
    func truncatedContent(of identity: FileIdentity) -> [GenerationFingerprint] {
        state.withLock { $0.truncatedContent(of: identity) }
    }

    /// Records that the followed file `identity` was truncated in place (see
    /// ``FollowedGenerations/recordTruncation(of:)``).
    func recordTruncation(of identity: FileIdentity) {
        let text: String? = state.withLock { $0.recordTruncation(of: identity) ? $0.text : nil }
        if let text { save(text) }
    }

    /// Records `file` (with the fingerprint of its first bytes: `leading`, as a reader read them,
    /// else what it holds now) as followed; returns the fingerprint's length, or `nil` when its
    /// first bytes could not be read. A file that no longer starts as recorded was rewritten in
    /// place (also while tailsse was down): what it held before is kept as truncated content.
    @discardableResult
    func record(_ file: OpenFile, leading given: [UInt8]? = nil) -> Int? {
        guard let leading = given.map({ Array($0.prefix(GenerationFingerprint.windowSize)) }) ?? (try? file.leadingBytes()) else { return nil }
        let fingerprint = GenerationFingerprint(of: leading)
        let text: String? = state.withLock { generations in
            var changed = false
            if let known = generations.entry(for: file.identity), !known.fingerprint.matches(leading) {
                changed = generations.recordTruncation(of: file.identity)
            }
            changed = generations.record(file.identity, fingerprint: fingerprint) || changed
            return changed ? generations.text : nil
        }
        if let text { save(text) }
        return fingerprint.length
    }

    private func save(_ text: String) {
        guard let storePath else { return }
        let directory = String(storePath[..<storePath.lastIndex(of: "/")!])
        let temporary = storePath + ".tmp"
        let saved = makeDirectories(directory) && writeFile(temporary, text) && rename(temporary, storePath) == 0
        if !saved, !warned.exchange(true, ordering: .relaxed) {
            logger.warning("cannot save which rotated files were followed; after a restart, ids in them get a reset",
                           metadata: ["file": .string(storePath), "problem": .string(String(cString: strerror(errno)))])
        }
    }

    private func makeDirectories(_ directory: String) -> Bool {
        var path = ""
        for component in directory.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o700) != 0, errno != EEXIST { return false }
        }
        return true
    }

    private func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            written += n
        }
        return true
    }

    private static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}
