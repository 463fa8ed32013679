#if canImport(Glibc)
import Glibc
#endif

/// A configuration file (`--config FILE`): the same settings as the long options, so a service
/// needs no long command line.
///
/// One `key = value` per line; keys are the long options' names without `--` (`listen`,
/// `file`, `static-dir`, `heartbeat`, ...). Blank lines and lines starting with `#` are ignored;
/// the value is the rest of the line after the first `=`, without surrounding blanks, taken
/// literally (no quotes, no escapes, `#` inside a value is part of it). `file = NAME=PATH` may
/// repeat; any other key may appear once. Relative paths are relative to the file's directory.
struct ConfigurationFile: Sendable {
    /// One `key = value` line.
    struct Entry: Sendable, Equatable {
        var key: String
        var value: String
        var line: Int
    }

    let path: String
    let entries: [Entry]

    /// Keys that may appear more than once.
    static let repeatableKeys: Set<String> = ["file", "allowed-host", "allowed-origin"]

    /// Reads and parses the file at `path` (blocking: call it off the cooperative pool).
    static func read(path: String) throws(ConfigurationError) -> ConfigurationFile {
        let bytes = try readWholeFile(path: path, what: "the configuration file", limit: 1 << 20)
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }

    /// Parses configuration text; errors name `path` and the line.
    static func parse(_ text: String, path: String) throws(ConfigurationError) -> ConfigurationFile {
        var entries: [Entry] = []
        var seen: [String: Int] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError("\(path):\(number): expected 'key = value', got '\(line.prefix(80))'")
            }
            let key = String(line[..<equals].trimmingBlanks())
            let value = String(line[line.index(after: equals)...].trimmingBlanks())
            guard !key.isEmpty else { throw ConfigurationError("\(path):\(number): a key is missing before '='") }
            guard Settings.keys.contains(key) else {
                throw ConfigurationError("\(path):\(number): unknown key '\(key.prefix(64))' (known keys: \(Settings.keys.sorted().joined(separator: ", ")))")
            }
            guard !value.isEmpty else { throw ConfigurationError("\(path):\(number): '\(key)' needs a value") }
            if !repeatableKeys.contains(key) {
                if let first = seen[key] { throw ConfigurationError("\(path):\(number): '\(key)' is already set on line \(first)") }
                seen[key] = number
            }
            entries.append(Entry(key: key, value: value, line: number))
        }
        return ConfigurationFile(path: path, entries: entries)
    }

    /// The directory relative paths in the file are resolved against (absolute).
    var directory: String {
        let absolute = path.hasPrefix("/") ? path : Settings.currentDirectory() + "/" + path
        let slash = absolute.lastIndex(of: "/")!
        return slash == absolute.startIndex ? "/" : String(absolute[..<slash])
    }
}

/// The bytes of the file at `path`, at most `limit` of them (blocking); errors name the file as
/// `what` ("the token file").
func readWholeFile(path: String, what: String, limit: Int) throws(ConfigurationError) -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        throw ConfigurationError("\(path): cannot read \(what): \(String(cString: strerror(errno)))")
    }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    while true {
        let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw ConfigurationError("\(path): cannot read \(what): \(String(cString: strerror(errno)))")
        }
        if count == 0 { break }
        bytes += chunk.prefix(count)
        guard bytes.count <= limit else { throw ConfigurationError("\(path): \(what) is larger than \(limit >> 10) KiB") }
    }
    return bytes
}

/// A problem in the arguments or the configuration file; the message names the option, or the
/// file and line.
struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    var description: String
    init(_ description: String) { self.description = description }
}

extension StringProtocol {
    fileprivate func trimmingBlanks() -> SubSequence {
        var start = startIndex
        var end = endIndex
        while start < end, self[start] == " " || self[start] == "\t" || self[start] == "\r" { start = index(after: start) }
        while end > start, self[index(before: end)] == " " || self[index(before: end)] == "\t" || self[index(before: end)] == "\r" { end = index(before: end) }
        return self[start..<end]
    }
}
