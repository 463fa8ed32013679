import NIOCore

/// One deadline on a channel: when it passes, `onExpiry` is told and the channel is closed.
/// Armed and disarmed on the channel's event loop by the handler that owns it.
struct ConnectionDeadline {
    let timeout: TimeAmount
    let onExpiry: @Sendable () -> Void
    private var scheduled: Scheduled<Void>?

    init(timeout: TimeAmount, onExpiry: @escaping @Sendable () -> Void) {
        self.timeout = timeout
        self.onExpiry = onExpiry
    }

    /// Starts the deadline, unless it runs already or the channel is closed.
    mutating func arm(_ context: ChannelHandlerContext) {
        guard scheduled == nil, context.channel.isActive else { return }
        let channel = context.channel
        let onExpiry = self.onExpiry
        scheduled = context.eventLoop.scheduleTask(in: timeout) {
            onExpiry()
            channel.close(promise: nil)
        }
    }

    mutating func disarm() {
        scheduled?.cancel()
        scheduled = nil
    }
}
