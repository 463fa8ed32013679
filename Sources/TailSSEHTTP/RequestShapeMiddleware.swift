import HTTPTypes
import Hummingbird

/// Refuses requests whose target is too long (`414`) or that carry too many query parameters
/// (`400`), before anything parses them further: no request costs more than its size justifies.
struct RequestShapeMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The longest request target (path and query), in bytes.
    static var maxTargetBytes: Int { 8192 }
    /// The most query parameters a request may carry.
    static var maxQueryParameters: Int { 64 }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if (request.head.path?.utf8.count ?? 0) > Self.maxTargetBytes {
            return SourcesAPI.error("the request target is longer than \(Self.maxTargetBytes) bytes", status: .uriTooLong)
        }
        if let query = request.uri.query, query.utf8.lazy.filter({ $0 == UInt8(ascii: "&") }).count >= Self.maxQueryParameters {
            return SourcesAPI.error("at most \(Self.maxQueryParameters) query parameters", status: .badRequest)
        }
        return try await next(request, context)
    }
}
