import NIOCore

/// Closes a connection whose writes have been stuck — the channel unwritable because the client
/// reads nothing — for longer than `timeout`.
///
/// Over HTTP/2 the write deadline of each stream (``StreamSweeper``) resets the streams of a client
/// that stopped reading, but resetting a stream does not close the connection under it, which
/// would stay open with its unsent bytes; this handler ends it after the same deadline, and tells
/// `onExpiry`.
final class StalledConnectionCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private let onExpiry: @Sendable () -> Void
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount, onExpiry: @escaping @Sendable () -> Void = {}) {
        self.timeout = timeout
        self.onExpiry = onExpiry
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            deadline?.cancel()
            deadline = nil
        } else if deadline == nil {
            let channel = context.channel
            let onExpiry = self.onExpiry
            deadline = context.eventLoop.scheduleTask(in: timeout) {
                onExpiry()
                channel.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }
}
