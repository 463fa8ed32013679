import Hummingbird
import HummingbirdAuth
import HummingbirdCore
import Logging
import NIOCore
import TailSSECore

/// The request context of tailsse's router: what the access checks need to know of a request
/// beyond its head — who it is (the grant of its token) and where it came from.
public struct TailSSERequestContext: AuthRequestContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// What the request's token (or session cookie) grants; set by ``TokenAuthenticator``.
    public var identity: AccessGrant?
    /// The client's IP address, if known: the peer's, or the one a trusted proxy names
    /// (``ForwardedClientMiddleware``).
    public internal(set) var clientAddress: String?
    /// The local IP address the connection arrived on, if known.
    public let localAddress: String?
    /// Whom failed attempts are counted against: the IPv4 address, or the /64 network of an IPv6
    /// address (one host commonly holds a whole /64).
    public internal(set) var clientKey: String?
    /// The connection the request arrived on.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
        identity = nil
        clientAddress = source.channel.remoteAddress?.ipAddress
        localAddress = source.channel.localAddress?.ipAddress
        clientKey = source.channel.remoteAddress?.ipAddress.map(FailedAttemptLimiter.key(forAddress:))
    }

    /// The grant of an authenticated request; nothing when it was not authenticated.
    var grant: AccessGrant { identity ?? AccessGrant(credential: [], sources: []) }
}
