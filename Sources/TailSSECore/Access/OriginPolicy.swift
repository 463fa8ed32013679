/// Which cross-origin pages may call the API and read streams (`--allowed-origin`), and whether a
/// request is cross-origin at all.
public struct OriginPolicy: Sendable {
    /// What to do with a request, by its `Origin` header.
    public enum Decision: Sendable, Equatable {
        /// No `Origin` header: not a cross-origin browser request (curl, or a same-origin GET).
        case noOrigin
        /// The page's own origin.
        case sameOrigin
        /// A listed origin: answer with CORS headers for it (credentials included).
        case allowed(String)
        /// Any other origin (also `null`): refuse.
        case refused
    }

    /// An `--allowed-origin` value that is not an origin.
    public struct InvalidOrigin: Error, CustomStringConvertible {
        public var description: String
    }

    public let allowedOrigins: Set<String>

    /// No cross-origin access at all.
    public static let sameOriginOnly = OriginPolicy(normalized: [])

    private init(normalized origins: Set<String>) { allowedOrigins = origins }

    /// - Throws: when an origin is not `http(s)://host[:port]`.
    public init(allowedOrigins: [String] = []) throws(InvalidOrigin) {
        var origins = Set<String>()
        for origin in allowedOrigins {
            guard let normal = Self.normalized(origin) else {
                throw InvalidOrigin(description: "'\(origin.prefix(100))' is not an origin: write it as http://HOST[:PORT] or https://HOST[:PORT], without a path")
            }
            origins.insert(normal)
        }
        self.allowedOrigins = origins
    }

    /// The decision for a request with the `Origin` header `origin`, received over `scheme`
    /// (`http` or `https`) for `authority` (its `Host`).
    public func decide(origin: String?, scheme: String, authority: String?) -> Decision {
        guard let origin else { return .noOrigin }
        guard let normal = Self.normalized(origin) else { return .refused }
        if let authority, let own = Self.normalized("\(scheme)://\(authority)"), own == normal { return .sameOrigin }
        return allowedOrigins.contains(normal) ? .allowed(origin) : .refused
    }

    /// `scheme://host[:port]` lower-cased, with the scheme's default port left out; `nil` for
    /// anything else (a path, user info, `null`, another scheme).
    public static func normalized(_ origin: String) -> String? {
        let lower = origin.lowercased()
        let scheme: String
        let defaultPort: String
        if lower.hasPrefix("http://") { (scheme, defaultPort) = ("http", "80") } else if lower.hasPrefix("https://") { (scheme, defaultPort) = ("https", "443") } else { return nil }
        let authority = String(lower.dropFirst(scheme.count + 3))
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@"), let host = HostPolicy.hostName(ofAuthority: authority) else { return nil }
        var port = defaultPort
        let afterHost = authority.hasPrefix("[") ? authority[(authority.firstIndex(of: "]").map { authority.index(after: $0) } ?? authority.endIndex)...] : authority.lastIndex(of: ":").map { authority[$0...] } ?? ""
        if afterHost.hasPrefix(":") {
            let digits = afterHost.dropFirst()
            guard !digits.isEmpty, let value = Int(digits), (1...65535).contains(value) else { return nil }
            port = String(value)
        }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return port == defaultPort ? "\(scheme)://\(shownHost)" : "\(scheme)://\(shownHost):\(port)"
    }
}
