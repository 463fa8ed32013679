import NIOCore
import NIOTLS

/// Closes a connection that has not finished its TLS handshake within `timeout` of opening — a
/// client that connects and then sends nothing, or half a ClientHello, holds no descriptor for
/// long. Sits after the TLS handler: the handshake's completion, or any decrypted byte, disarms it.
/// (After the handshake, the HTTP/1.1 and HTTP/2 idle timeouts take over.) `onExpiry` is told
/// of each connection it closes.
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private let onExpiry: @Sendable () -> Void
    private var deadline: Scheduled<Void>?
    private var done = false

    init(timeout: TimeAmount, onExpiry: @escaping @Sendable () -> Void = {}) {
        self.timeout = timeout
        self.onExpiry = onExpiry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
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
        deadline?.cancel()
        deadline = nil
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard !done, deadline == nil else { return }
        let channel = context.channel
        let onExpiry = self.onExpiry
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            onExpiry()
            channel.close(promise: nil)
        }
    }

    private func disarm() {
        done = true
        deadline?.cancel()
        deadline = nil
    }
}
