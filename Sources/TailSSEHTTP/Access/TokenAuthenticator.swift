import HTTPTypes
import Hummingbird
import HummingbirdAuth
import TailSSECore

/// Finds who a request is: the grant of its `Authorization: Bearer TOKEN`, else of its session
/// cookie (set by `POST /login`). Without a token file every request is granted everything.
/// A client that failed too often recently gets 429 with `Retry-After`, whatever it presents.
struct TokenAuthenticator: AuthenticatorMiddleware {
    typealias Context = TailSSERequestContext
    let access: AccessControl
    /// Counts wrong tokens and rate-limited attempts.
    let metrics: ServerMetrics

    func authenticate(request: Request, context: TailSSERequestContext) async throws -> AccessGrant? {
        let session = request.cookies[access.cookieName]?.value
        let outcome = access.authenticate(bearer: request.headers.bearer?.token, session: session, client: context.clientKey)
        metrics.record(outcome)
        switch outcome {
        case .granted(let grant):
            return grant
        case .missing, .refused:
            return nil
        case .limited(let wait):
            throw Self.tooManyAttempts(wait)
        }
    }

    static func tooManyAttempts(_ wait: Duration) -> HTTPError {
        let seconds = max(1, Int((wait / .seconds(1)).rounded(.up)))
        return HTTPError(.tooManyRequests, headers: [.retryAfter: "\(seconds)"], message: "too many failed attempts from this address; try again in \(seconds) s")
    }
}

/// Lets only authenticated requests through; the others get 401 with `WWW-Authenticate: Bearer`.
struct AccessRequiredMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: TailSSERequestContext, next: (Request, TailSSERequestContext) async throws -> Response) async throws -> Response {
        guard context.identity != nil else {
            var response = SourcesAPI.error("a valid token is required: send Authorization: Bearer TOKEN, or log in on the page", status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer realm=\"tailsse\""
            return response
        }
        return try await next(request, context)
    }
}
