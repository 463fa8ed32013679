import HTTPTypes
import Hummingbird
import TailSSECore

/// Refuses cross-origin requests to the API and the streams (the routes that hold log data or
/// log a browser in) unless `--allowed-origin` lists the origin; for a listed origin it answers
/// CORS preflights and adds the CORS headers, credentials included.
///
/// A browser names the page's origin in `Origin` on cross-origin requests; where it sends no
/// `Origin`, `Sec-Fetch-Site: cross-site`/`same-site` still marks a request from another site.
struct OriginCheckMiddleware: RouterMiddleware {
    let access: AccessControl

    /// Whether `path` (below the base path) is one of the routes the check guards.
    static func isGuarded(path: String) -> Bool {
        path == "/sources" || path.hasPrefix("/sources/") || path == "/journal" || path == "/events" || path == "/metrics"
            || path == "/login" || path == "/logout"
    }

    func handle(_ request: Request, context: TailSSERequestContext, next: (Request, TailSSERequestContext) async throws -> Response) async throws -> Response {
        guard let route = access.basePath.route(ofPath: request.uri.path), Self.isGuarded(path: route) else {
            return try await next(request, context)
        }
        let scheme = access.secure ? "https" : "http"
        switch access.origins.decide(origin: request.headers[.origin], scheme: scheme, authority: request.head.authority) {
        case .sameOrigin:
            return try await next(request, context)
        case .noOrigin:
            if let site = request.headers[.secFetchSite], site == "cross-site" || site == "same-site" {
                return SourcesAPI.error("cross-site request refused", status: .forbidden)
            }
            return try await next(request, context)
        case .refused:
            return SourcesAPI.error("cross-origin request refused: the origin is not an --allowed-origin", status: .forbidden)
        case .allowed(let origin):
            if request.method == .options {
                var response = Response(status: .noContent)
                Self.addCORS(origin: origin, to: &response.headers)
                response.headers[.accessControlAllowMethods] = "GET, POST"
                response.headers[.accessControlAllowHeaders] = "Authorization, Last-Event-ID, Accept, Content-Type"
                response.headers[.accessControlMaxAge] = "600"
                return response
            }
            var response = try await next(request, context)
            Self.addCORS(origin: origin, to: &response.headers)
            return response
        }
    }

    private static func addCORS(origin: String, to headers: inout HTTPFields) {
        headers[.accessControlAllowOrigin] = origin
        headers[.accessControlAllowCredentials] = "true"
        headers[.vary] = "Origin"
    }
}

extension HTTPField.Name {
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}
