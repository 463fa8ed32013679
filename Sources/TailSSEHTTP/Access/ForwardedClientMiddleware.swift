import HTTPTypes
import Hummingbird
import TailSSECore

/// Counts a request from a trusted reverse proxy (``TrustedProxies``, `--trusted-proxy`) against
/// the client the proxy names in `X-Forwarded-For`: its failed token attempts, and the address the
/// access log shows. From any other peer the header is ignored.
struct ForwardedClientMiddleware: RouterMiddleware {
    let proxies: TrustedProxies

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    func handle(_ request: Request, context: TailSSERequestContext, next: (Request, TailSSERequestContext) async throws -> Response) async throws -> Response {
        guard !proxies.isEmpty, let client = proxies.client(peer: context.clientAddress, forwardedFor: request.headers[values: Self.forwardedFor]),
              client != context.clientAddress
        else { return try await next(request, context) }
        var context = context
        context.clientAddress = client
        context.clientKey = FailedAttemptLimiter.key(forAddress: client)
        return try await next(request, context)
    }
}
