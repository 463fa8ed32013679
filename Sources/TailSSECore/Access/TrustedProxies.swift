#if canImport(Glibc)
import Glibc
#endif

/// The reverse proxies whose `X-Forwarded-For` tailsse believes (`--trusted-proxy`): addresses or
/// networks in CIDR form (`127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`).
///
/// Behind a proxy every request comes from the proxy's address, so the per-client limits (failed
/// token attempts above all) would count every client as one: one client guessing tokens would
/// lock everyone out. A request from a trusted proxy is counted against the client that proxy names
/// instead: the right-most address of `X-Forwarded-For` that is not itself a trusted proxy (each
/// proxy appends the address it got the request from, so entries to the left of that one are
/// whatever the client claimed, and never believed). Without trusted proxies the header is ignored.
public struct TrustedProxies: Sendable, Equatable {
    /// Why a `--trusted-proxy` value is not an address or network.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        /// The value that is not one.
        public var value: String
        public var description: String
    }

    private struct Network: Sendable, Equatable {
        var bytes: [UInt8]
        var prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefixLength
            for (a, b) in zip(address, bytes) where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if a & mask != b & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    private let networks: [Network]

    /// No proxy is trusted: `X-Forwarded-For` is ignored.
    public init() {
        networks = []
    }

    /// Parses `--trusted-proxy` values: each an IPv4 or IPv6 address, optionally `/PREFIX`.
    public init(parsing values: [String]) throws(ParseError) {
        var networks: [Network] = []
        for value in values {
            let parts = value.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let bytes = Self.addressBytes(String(parts[0])) else {
                throw ParseError(value: value, description: "'\(value.prefix(80))' is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8)")
            }
            var prefixLength = bytes.count * 8
            if parts.count == 2 {
                guard parts[1].allSatisfy(\.isASCIIDigit), let length = Int(parts[1]), (0...bytes.count * 8).contains(length) else {
                    throw ParseError(value: value, description: "'\(value.prefix(80))' has no valid prefix length (0–\(bytes.count * 8))")
                }
                prefixLength = length
            }
            networks.append(Network(bytes: bytes, prefixLength: prefixLength))
        }
        self.networks = networks
    }

    public var isEmpty: Bool { networks.isEmpty }

    /// Whether `address` (as a peer address is printed) is a trusted proxy.
    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.addressBytes(address) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// The address of the client a request came from: `peer`, or when `peer` is a trusted proxy,
    /// the right-most entry of `forwardedFor` (the `X-Forwarded-For` headers in order) that is not
    /// a trusted proxy. An entry that is not an address ends the walk: the proxy that appended the
    /// entries to its right is then the client (an address is never taken from what a client may
    /// have written itself).
    public func client(peer: String?, forwardedFor: [String]) -> String? {
        guard let peer, !networks.isEmpty, contains(peer) else { return peer }
        let entries = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces }
        var client = peer
        for entry in entries.reversed().prefix(Self.maxEntries) {
            guard let address = Self.address(ofEntry: entry) else { return client }
            client = address
            if !contains(address) { return address }
        }
        return client
    }

    /// At most this many `X-Forwarded-For` entries are looked at, from the right.
    static let maxEntries = 32

    /// The address in one `X-Forwarded-For` entry (`203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443`,
    /// `203.0.113.7:5000`), in the form a peer address is printed; `nil` for anything else.
    static func address(ofEntry entry: Substring) -> String? {
        var text = entry
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let after = text[text.index(after: close)...]
            guard after.isEmpty || (after.first == ":" && after.dropFirst().allSatisfy(\.isASCIIDigit) && after.count > 1) else { return nil }
            text = text[text.index(after: text.startIndex)..<close]
        } else if text.filter({ $0 == ":" }).count == 1 {
            let colon = text.firstIndex(of: ":")!
            guard text[text.index(after: colon)...].allSatisfy(\.isASCIIDigit) else { return nil }
            text = text[..<colon]
        }
        guard let bytes = addressBytes(String(text)) else { return nil }
        return printed(bytes)
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address; an IPv4-mapped IPv6 address as its IPv4 bytes.
    static func addressBytes(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= 45, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }

    private static func printed(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var v6 = in6_addr()
        withUnsafeMutableBytes(of: &v6) { $0.copyBytes(from: bytes) }
        guard inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
