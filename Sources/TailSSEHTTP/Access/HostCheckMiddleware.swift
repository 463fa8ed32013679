import HTTPTypes
import Hummingbird
import TailSSECore

/// Answers 421 to any request whose `Host` (HTTP/2: `:authority`) the ``AccessControl/hosts``
/// policy does not allow, before any route runs: a page on another name that resolves to this
/// machine (DNS rebinding) gets nothing.
struct HostCheckMiddleware: RouterMiddleware {
    let access: AccessControl

    func handle(_ request: Request, context: TailSSERequestContext, next: (Request, TailSSERequestContext) async throws -> Response) async throws -> Response {
        guard access.hosts.allows(authority: request.head.authority, localAddress: context.localAddress) else {
            let shown = request.head.authority.map { "'\($0.prefix(100))'" } ?? "(none)"
            return SourcesAPI.error("this tailsse does not answer to the host name \(shown); add it with --allowed-host", status: .misdirectedRequest)
        }
        return try await next(request, context)
    }
}
