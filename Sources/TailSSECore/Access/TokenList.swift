/// The tokens of a token file (`--token-file`), each with the sources it may read.
///
/// One token per line, optionally followed by source names (`TOKEN app nginx`: only those; none:
/// every source), separated by blanks; blank lines and lines starting with `#` are ignored. A
/// token is 16–512 characters of `A-Z a-z 0-9 - . _ ~ + /`, optionally ending in `=` signs (the
/// characters a Bearer token may hold, RFC 6750). Only SHA-256 digests of the tokens are kept, and
/// every lookup compares the presented value's digest with every entry's, without stopping early.
public struct TokenList: Sendable {
    /// One token's grant, and the fingerprints that prove it.
    struct Entry: Sendable {
        var grant: AccessGrant
        /// SHA-256 of the session cookie's value derived from the token.
        var sessionDigest: [UInt8]
        var line: Int
    }

    private let entries: [Entry]

    /// The longest token file read (a larger one is refused).
    public static let maxFileBytes = 1 << 20
    static let tokenLengths = 16...512
    /// The HMAC message from which a token's session cookie is derived.
    private static let sessionLabel = Array("tailsse session cookie v1".utf8)

    /// Parses a token file's bytes.
    public init(parsing bytes: [UInt8]) throws(TokenFileError) {
        guard bytes.count <= Self.maxFileBytes else { throw TokenFileError("larger than \(Self.maxFileBytes) bytes") }
        var entries: [Entry] = []
        var lineNumber = 0
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = rawLine[...]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            let words = line.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
            guard let token = words.first, token.first != UInt8(ascii: "#") else { continue }
            try Self.validate(token: token, line: lineNumber)
            var sources: Set<String>?
            if words.count > 1 {
                var names = Set<String>()
                for (index, word) in words.enumerated().dropFirst() {
                    guard SourceName.isValid(word) else {
                        // Not echoed: it may be a second token written on the same line.
                        throw TokenFileError(line: lineNumber, "word \(index + 1) is not a source name (1-64 characters of A-Z a-z 0-9 . _ -)")
                    }
                    names.insert(String(decoding: word, as: UTF8.self))
                }
                sources = names
            }
            let digest = SHA256.digest(token)
            if let earlier = entries.first(where: { $0.grant.credential == digest }) {
                throw TokenFileError(line: lineNumber, "repeats the token of line \(earlier.line)")
            }
            let session = Self.sessionValue(forToken: token)
            entries.append(Entry(grant: AccessGrant(credential: digest, sources: sources), sessionDigest: SHA256.digest(session.utf8), line: lineNumber))
        }
        self.entries = entries
    }

    /// Number of tokens.
    public var count: Int { entries.count }

    /// The source names the tokens are limited to (to warn about names no source has).
    public var namedSources: Set<String> { entries.reduce(into: []) { $0.formUnion($1.grant.sources ?? []) } }

    /// The grant of a token presented as `Authorization: Bearer TOKEN`, or `nil`.
    public func grant(forToken token: some StringProtocol) -> AccessGrant? {
        lookup(SHA256.digest(token.utf8), by: \.grant.credential)
    }

    /// The grant of a session cookie's value (see ``sessionValue(forToken:)``), or `nil`.
    public func grant(forSession value: some StringProtocol) -> AccessGrant? {
        lookup(SHA256.digest(value.utf8), by: \.sessionDigest)
    }

    /// The current grant of the token that `grant` came from, or `nil` if that token is gone.
    public func current(_ grant: AccessGrant) -> AccessGrant? {
        lookup(grant.credential, by: \.grant.credential)
    }

    /// The session cookie's value for a token: HMAC-SHA-256 of a fixed label under the token,
    /// base64url. It proves the token without being it, and stays valid across restarts for as
    /// long as the token is in the file.
    public static func sessionValue(forToken token: some Collection<UInt8>) -> String {
        Base64URL.encode(SHA256.hmac(key: token, message: sessionLabel))
    }

    private func lookup(_ digest: [UInt8], by keyPath: KeyPath<Entry, [UInt8]>) -> AccessGrant? {
        var found: AccessGrant?
        for entry in entries where SHA256.constantTimeEqual(entry[keyPath: keyPath], digest) {
            found = entry.grant
        }
        return found
    }

    private static func validate(token: ArraySlice<UInt8>, line: Int) throws(TokenFileError) {
        guard tokenLengths.contains(token.count) else {
            throw TokenFileError(line: line, "a token must be \(tokenLengths.lowerBound)-\(tokenLengths.upperBound) characters long (this one has \(token.count))")
        }
        let body = token.prefix { $0 != UInt8(ascii: "=") }
        let valid = body.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                true
            default:
                false
            }
        } && token[body.endIndex...].allSatisfy { $0 == UInt8(ascii: "=") } && !body.isEmpty
        guard valid else {
            throw TokenFileError(line: line, "a token may hold only A-Z a-z 0-9 - . _ ~ + / and end in = signs")
        }
    }
}
