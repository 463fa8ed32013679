/// Which `Host` (or HTTP/2 `:authority`) names a request may use: the defence against DNS
/// rebinding, where a web page points its own name at 127.0.0.1 to read a local service.
///
/// Allowed are loopback names (`localhost`, `*.localhost`) and addresses (127.0.0.0/8, `::1`),
/// the address the connection arrived on (the listen address, or the concrete address behind a
/// wildcard), and the names given with `--allowed-host`. The port is not compared. A name is
/// compared without case and without one trailing dot.
public struct HostPolicy: Sendable {
    public let allowedNames: Set<String>

    public init(allowedNames: [String] = []) {
        self.allowedNames = Set(allowedNames.compactMap { Self.hostName(ofAuthority: $0) })
    }

    /// Whether a request naming `authority` that arrived on the local address `localAddress`
    /// (an IP literal, if known) may be answered.
    public func allows(authority: String?, localAddress: String?) -> Bool {
        guard let authority, let host = Self.hostName(ofAuthority: authority) else { return false }
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        if Self.isLoopbackAddress(host) { return true }
        if let localAddress, host == localAddress.lowercased() { return true }
        return allowedNames.contains(host)
    }

    /// The host part of `host[:port]` or `[v6]:port`, lower-cased, without one trailing dot;
    /// `nil` when it is empty or holds characters no host name or address may hold.
    public static func hostName(ofAuthority authority: String) -> String? {
        var text = Substring(authority.lowercased())
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.first == ":" && rest.dropFirst().allSatisfy(\.isASCIIDigit)) else { return nil }
            text = text[text.index(after: text.startIndex)..<close]
            guard !text.isEmpty, text.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
            return String(text)
        }
        if let colon = text.lastIndex(of: ":") {
            guard text[text.index(after: colon)...].allSatisfy(\.isASCIIDigit) else { return nil }
            text = text[..<colon]
        }
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.count <= 253, !text.hasPrefix("."), !text.hasSuffix("."), !text.contains(".."),
              text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") })
        else { return nil }
        return String(text)
    }

    /// `true` for 127.0.0.0/8 in dotted-quad form and for `::1` (also spelled out, or IPv4-mapped).
    public static func isLoopbackAddress(_ host: String) -> Bool {
        if let octets = ipv4Octets(host) { return octets[0] == 127 }
        let lower = host.lowercased()
        if lower.hasPrefix("::ffff:"), let octets = ipv4Octets(String(lower.dropFirst(7))) { return octets[0] == 127 }
        let groups = lower.split(separator: ":", omittingEmptySubsequences: false)
        guard lower.contains(":"), groups.count <= 8 else { return false }
        let values = groups.filter { !$0.isEmpty }.map { UInt16($0, radix: 16) }
        guard values.allSatisfy({ $0 != nil }), values.last == 1 else { return false }
        let zeros = values.dropLast().allSatisfy { $0 == 0 }
        return zeros && (values.count == 8 || lower.contains("::"))
    }

    private static func ipv4Octets(_ host: String) -> [UInt8]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCIIDigit), let value = UInt8(part) else { return nil }
            octets.append(value)
        }
        return octets
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
