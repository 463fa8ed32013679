import Synchronization
import TailSSECore

/// Who may read what, and from where: the token file's grants, the allowed `Host` names and
/// `Origin`s, and the limit on failed attempts per client address. Shared by every request;
/// the token file can be replaced while running (SIGHUP).
public final class AccessControl: Sendable {
    /// How a request's credentials fared.
    public enum Outcome: Sendable, Equatable {
        case granted(AccessGrant)
        /// No credentials were presented.
        case missing
        /// Wrong credentials (counted against the client's address).
        case refused
        /// Too many failed attempts from this address: try again after this long.
        case limited(Duration)
    }

    public let hosts: HostPolicy
    public let origins: OriginPolicy
    /// Whether the server speaks TLS: session cookies are `Secure` and same-origin means `https`.
    public let secure: Bool
    /// The path everything is served under: the session cookie's `Path`.
    public let basePath: BasePath
    /// The reverse proxies whose `X-Forwarded-For` names the client (``ForwardedClientMiddleware``).
    public let trustedProxies: TrustedProxies

    private let tokens: Mutex<TokenList?>
    private let limiter: Mutex<FailedAttemptLimiter>
    private let listeners = Mutex<[@Sendable () -> Void]>([])

    /// - Parameter tokens: the token file's tokens, or `nil` for no access control (every request
    ///   reads everything).
    public init(
        tokens: TokenList?, hosts: HostPolicy = HostPolicy(), origins: OriginPolicy = .sameOriginOnly, secure: Bool = false,
        basePath: BasePath = .root, trustedProxies: TrustedProxies = TrustedProxies(), limiter: FailedAttemptLimiter = FailedAttemptLimiter()
    ) {
        self.trustedProxies = trustedProxies
        self.tokens = Mutex(tokens)
        self.hosts = hosts
        self.origins = origins
        self.secure = secure
        self.basePath = basePath
        self.limiter = Mutex(limiter)
    }

    /// Whether requests need a token.
    public var requiresToken: Bool { tokens.withLock { $0 != nil } }

    /// Replaces the tokens (a re-read token file); streams whose token is gone, or no longer
    /// grants their sources, are told through ``onTokensChanged(_:)``.
    public func replaceTokens(_ list: TokenList) {
        tokens.withLock { $0 = list }
        for listener in listeners.withLock({ $0 }) { listener() }
    }

    /// Calls `body` after every ``replaceTokens(_:)``.
    func onTokensChanged(_ body: @escaping @Sendable () -> Void) {
        listeners.withLock { $0.append(body) }
    }

    /// Checks a request's credentials: a Bearer token wins over a session cookie.
    public func authenticate(bearer: String?, session: String?, client: String?, now: ContinuousClock.Instant = .now) -> Outcome {
        guard let list = tokens.withLock({ $0 }) else { return .granted(.everything) }
        guard bearer != nil || session != nil else { return .missing }
        let key = client ?? "unknown"
        if let wait = limiter.withLock({ $0.retryAfter(for: key, now: now) }) { return .limited(wait) }
        let grant = bearer.map { list.grant(forToken: $0) } ?? session.flatMap { list.grant(forSession: $0) }
        if let grant { return .granted(grant) }
        limiter.withLock { $0.recordFailure(for: key, now: now) }
        return .refused
    }

    /// Whether `grant` (given earlier) still lets its holder read all of `sources`.
    public func stillAllows(_ grant: AccessGrant, sources: [String]) -> Bool {
        guard let list = tokens.withLock({ $0 }) else { return true }
        guard let current = list.current(grant) else { return false }
        return sources.allSatisfy(current.allows)
    }

    /// The session cookie's name: under TLS `__Host-` prefixed, so no other site can set it, or,
    /// under a base path (where `__Host-` cannot be used), `__Secure-` prefixed.
    public var cookieName: String {
        guard secure else { return "tailsse_session" }
        return basePath.isRoot ? "__Host-tailsse_session" : "__Secure-tailsse_session"
    }

    /// The `Set-Cookie` value that logs a browser in with `token`.
    public func sessionCookie(forToken token: String) -> String {
        "\(cookieName)=\(TokenList.sessionValue(forToken: Array(token.utf8))); Path=\(basePath.path); Max-Age=2592000; HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }

    /// The `Set-Cookie` value that logs a browser out.
    public var clearedCookie: String {
        "\(cookieName)=; Path=\(basePath.path); Max-Age=0; HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }
}
