import HTTPTypes
import Hummingbird
import TailSSECore

/// `POST /login`: the page's login form. The body is a form with `token=TOKEN`; the answer sets a
/// session cookie (`HttpOnly; SameSite=Strict`, `Secure` under TLS) that the page's requests and
/// its EventSource then carry by themselves. The cookie holds a value derived from the token, not
/// the token; it stays valid for as long as the token is in the token file.
extension SourcesAPI {
    /// The largest login body read.
    static let maxLoginBodyBytes = 4096

    func login(_ request: Request, context: TailSSERequestContext) async throws -> Response {
        guard access.requiresToken else {
            return Self.error("this tailsse has no token file: no login is needed", status: .badRequest)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maxLoginBodyBytes)
        } catch {
            return Self.error("the login form is larger than \(Self.maxLoginBodyBytes) bytes", status: .contentTooLarge)
        }
        guard let token = FormFields.value(of: "token", in: body.readableBytesView), !token.isEmpty else {
            return Self.error("post the form field token=TOKEN (application/x-www-form-urlencoded)", status: .badRequest)
        }
        let outcome = access.authenticate(bearer: token, session: nil, client: context.clientKey)
        metrics.server.record(outcome)
        switch outcome {
        case .granted:
            var response = Response(status: .noContent)
            response.headers[.setCookie] = access.sessionCookie(forToken: token)
            response.headers[.cacheControl] = "no-store"
            return response
        case .missing, .refused:
            return Self.error("wrong token", status: .unauthorized)
        case .limited(let wait):
            throw TokenAuthenticator.tooManyAttempts(wait)
        }
    }
}
