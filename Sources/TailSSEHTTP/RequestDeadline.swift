import NIOCore
import NIOHTTPTypes

/// Closes a connection that has not sent a whole request head within `timeout` of opening or of
/// its last response's end (a slow or half-sent head, an idle kept-alive connection), and says so
/// through `onExpiry` so that the close is counted.
///
/// Sits right after the HTTP codec, in place of HummingbirdCore's idle timeout (which closes
/// without telling anyone). While a request is being answered — a stream can last for days — no
/// deadline runs.
final class RequestDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var deadline: ConnectionDeadline
    /// Request heads read whose response has not ended yet.
    private var unanswered = 0
    /// The client closed its sending side (the connection stays half open).
    private(set) var inputClosed = false

    init(timeout: TimeAmount, onExpiry: @escaping @Sendable () -> Void) {
        deadline = ConnectionDeadline(timeout: timeout, onExpiry: onExpiry)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadline.arm(context)
    }

    func channelActive(context: ChannelHandlerContext) {
        deadline.arm(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            unanswered += 1
            deadline.disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var ended = false
        if case .end = unwrapOutboundIn(data) { ended = true }
        context.write(data, promise: promise)
        if ended {
            unanswered = max(0, unanswered - 1)
            if unanswered == 0 { deadline.arm(context) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { inputClosed = true }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline.disarm()
    }
}
