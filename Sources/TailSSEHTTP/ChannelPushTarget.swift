import NIOCore
import NIOHTTPTypes
import TailSSECore

/// A streaming response's connection as a ``PushTarget``: pushed events are written as body parts
/// at the end of its pipeline, after the response's own writes (which reached the event loop
/// before the stream joined the push path), on the event loop that owns it.
final class ChannelPushTarget: PushTarget {
    private let channel: any Channel
    let lane: ObjectIdentifier

    init(channel: any Channel) {
        self.channel = channel
        self.lane = ObjectIdentifier(channel.eventLoop)
    }

    func run(_ job: @escaping @Sendable () -> Void) { channel.eventLoop.execute(job) }
    var isWritable: Bool { channel.isActive && channel.isWritable }
    func write(_ bytes: ByteBuffer) { channel.write(HTTPResponsePart.body(bytes), promise: nil) }
    func flush() { channel.flush() }
}
