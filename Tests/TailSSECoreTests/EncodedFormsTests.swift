import NIOCore
import TailSSECore
import Testing

@Suite struct EncodedFormsTests {
    private let record = LogRecord(from: 0, to: 10, event: .line(Array("hello \"world\"".utf8), id: "10"))

    private func encoded(_ encoder: EventEncoder) -> ByteBuffer {
        var buffer = ByteBuffer()
        encoder.encode(record, into: &buffer)
        return buffer
    }

    @Test func framedBytesAreMadeOnceAndSharedByEveryEventsClientOfTheSource() {
        let first = encoded(.framed(format: .eventStream, source: "app"))
        let second = encoded(.framed(format: .eventStream, source: "app"))
        #expect(first == second)
        let cached = record.encoded?.bytes(.eventStream, framed: true) {
            Issue.record("the framed form was made again")
            return ByteBuffer()
        }
        #expect(cached == first)
        // The framed and the plain forms of one format are kept apart.
        var plain = ByteBuffer()
        EventEncoder(format: .eventStream, source: "app").encode(record.event!, into: &plain)
        #expect(encoded(EventEncoder(format: .eventStream, source: "app")) == plain)
        #expect(plain != first)
        // An encoder with a pattern makes its own bytes.
        let grep = try! GrepPattern("nothing matches this")
        #expect(encoded(.framed(format: .eventStream, source: "app", grep: grep)).readableBytes == 0)
    }

    @Test func clientsSharingAFrameEachGetTheirOwnCompositeID() {
        let frames = encoded(.framed(format: .eventStream, source: "a"))
        var texts: [String] = []
        for other in ["x", "y"] {
            var multiplex = MultiplexEncoder(format: .eventStream, sources: ["a", "b"], startIDs: [nil, other])
            var output = ByteBuffer()
            multiplex.write(frames: frames, source: 0, into: &output)
            texts.append(String(buffer: output))
        }
        #expect(texts[0].contains("id: m1,a=10,b=x\n"))
        #expect(texts[1].contains("id: m1,a=10,b=y\n"))
        #expect(texts[0].contains(#""text":"hello \"world\"""#))
    }
}
