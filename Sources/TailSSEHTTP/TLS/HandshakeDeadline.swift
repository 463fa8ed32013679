import NIOCore
import NIOTLS

/// Closes a connection that has not finished its TLS handshake within `timeout` of opening — a
/// client that connects and then sends nothing, or half a ClientHello, holds no descriptor for
/// long. Sits after the TLS handler: the handshake's completion, or any decrypted byte, disarms it.
/// (After the handshake, the HTTP/1.1 and HTTP/2 idle timeouts take over.) `onExpiry` is told
/// of each connection it closes.
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private var deadline: ConnectionDeadline
    private var done = false

    init(timeout: TimeAmount, onExpiry: @escaping @Sendable () -> Void = {}) {
        deadline = ConnectionDeadline(timeout: timeout, onExpiry: onExpiry)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context)
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { disarm() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        disarm()
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline.disarm()
    }

    private func arm(_ context: ChannelHandlerContext) {
        if !done { deadline.arm(context) }
    }

    private func disarm() {
        done = true
        deadline.disarm()
    }
}
