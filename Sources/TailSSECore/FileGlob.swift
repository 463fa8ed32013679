#if canImport(Glibc)
import Glibc
#endif

/// The files of a glob source (`--file app=/var/log/app/*.log`): a directory, named literally,
/// and a pattern for the names of the files directly in it.
///
/// The pattern is `fnmatch(3)`'s (`*`, `?`, `[...]`) with a leading `.` matched only literally.
/// A name is a file of the glob when it matches the pattern and:
/// - it is a valid source name (`[A-Za-z0-9._-]{1,64}`): it names the file in resume ids;
/// - it is not a rotated generation of another matching name (`app.log.1`, `app.log-20261207`
///   under `*`: those are read as the past of `app.log`, see ``RotationSuffix``);
/// - it does not end in a compression suffix (`.gz`, `.xz`, `.bz2`, `.zst`, `.lz4`, `.Z`).
public struct FileGlob: Sendable, Equatable, CustomStringConvertible {
    /// The directory, absolute, without wildcards.
    public let directory: String
    /// The pattern for names in ``directory``.
    public let pattern: String

    /// Most files one glob source follows at once.
    public static let maxFiles = 64

    /// Why a path is not a usable glob.
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// `true` when `path` holds a wildcard (`*`, `?` or `[`): it is a glob, not a file.
    public static func isGlob(_ path: String) -> Bool {
        path.utf8.contains { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") }
    }

    /// Parses an absolute path whose last component is the pattern.
    public init(path: String) throws(Problem) {
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/") else { throw Problem(description: "a glob must be an absolute path") }
        let directory = String(path[..<slash])
        let pattern = String(path[path.index(after: slash)...])
        guard !Self.isGlob(directory) else {
            throw Problem(description: "only the file name may hold wildcards (*, ?, [...]), not the directory: '\(directory.prefix(200))'")
        }
        guard !pattern.isEmpty, Self.isGlob(pattern) else { throw Problem(description: "the glob's last component must be a pattern, e.g. /var/log/app/*.log") }
        guard !pattern.utf8.contains(0), !directory.utf8.contains(0) else { throw Problem(description: "a glob cannot hold a NUL byte") }
        self.directory = directory.isEmpty ? "/" : directory
        self.pattern = pattern
    }

    /// The glob as configured.
    public var description: String { directory == "/" ? "/\(pattern)" : "\(directory)/\(pattern)" }

    /// The path of the file `name` of the glob.
    public func path(of name: String) -> String { directory == "/" ? "/\(name)" : "\(directory)/\(name)" }

    /// `true` when `name` matches the pattern (and only that: see ``files(among:)``).
    public func matches(_ name: String) -> Bool {
        fnmatch(pattern, name, FNM_PERIOD) == 0
    }

    /// The names among a directory's `names` that are files of the glob, sorted.
    public func files(among names: [String]) -> [String] {
        let matching = names.filter { matches($0) && SourceName.isValid($0.utf8) && !Self.isCompressed($0) }
        return matching.filter { name in !isRotatedGeneration(name) }.sorted()
    }

    /// The names among `names` that the pattern matches but that cannot be files of the glob,
    /// because they are not valid in an id (`[A-Za-z0-9._-]{1,64}`).
    public func unfitNames(among names: [String]) -> [String] {
        names.filter { matches($0) && !SourceName.isValid($0.utf8) }.sorted()
    }

    /// `true` when `name` is a rotated generation of a name the pattern matches.
    private func isRotatedGeneration(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        for index in bytes.indices.dropFirst() where bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: "-") {
            let base = String(decoding: bytes[..<index], as: UTF8.self)
            if matches(base), RotationSuffix(name: name, rotating: base) != nil { return true }
        }
        return false
    }

    private static let compressionSuffixes = [".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z", ".zip"]

    private static func isCompressed(_ name: String) -> Bool {
        compressionSuffixes.contains { name.hasSuffix($0) }
    }
}
