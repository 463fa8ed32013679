import NIOCore
import NIOHTTPTypes
import TailSSECore

/// A streaming response's connection as a ``PushTarget``: pushed events are written as body parts
/// at the end of its pipeline, on the event loop that owns it.
///
/// The stream's own writes go the same way (``send(_:)``), not through the response's async
/// writer: that writer may still hold bytes after its `write` returned, and pushed bytes would
/// overtake them.
final class ChannelPushTarget: PushTarget {
    private let channel: any Channel
    let lane: ObjectIdentifier

    init(channel: any Channel) {
        self.channel = channel
        self.lane = ObjectIdentifier(channel.eventLoop)
    }

    func run(_ job: @escaping @Sendable () -> Void) { channel.eventLoop.execute(job) }
    var isWritable: Bool { channel.isActive && channel.isWritable }
    func write(_ bytes: ByteBuffer) -> Int? {
        channel.write(HTTPResponsePart.body(bytes), promise: nil)
        return bytes.readableBytes
    }
    func flush() { channel.flush() }

    /// Writes and flushes `bytes` in order with pushed writes; returns once the connection took
    /// them (throws when it closed).
    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(HTTPResponsePart.body(bytes)).get()
    }

    /// Closes the connection: a pending ``send(_:)`` the client never reads fails.
    func close() { channel.close(promise: nil) }
}
