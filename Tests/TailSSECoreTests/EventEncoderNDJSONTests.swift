import NIOCore
import TailSSECore
import Testing

@Suite("NDJSON encoding")
struct EventEncoderNDJSONTests {
    private let source = "app"

    @Test("each event is one line holding one JSON object with its id")
    func wireForm() {
        let encoder = EventEncoder(format: .ndjson, source: source)
        var buffer = ByteBuffer()
        encoder.preamble(retryMilliseconds: 3000, into: &buffer)
        encoder.heartbeat(into: &buffer)
        #expect(buffer.readableBytes == 0, "NDJSON has no preamble and no heartbeat")
        encoder.encode(.line(Array("a\r\n\0".utf8), id: "f1.1.2.3.4"), into: &buffer)
        encoder.encode(.marker(.truncated, id: "f1.1.2.0.0", message: "cut"), into: &buffer)
        encoder.encode(.marker(.reset, id: "f1.1.2.0.0", message: "why"), into: &buffer)
        encoder.encode(.line(Array("xy".utf8), id: "f1.1.2.5.6", continues: true), into: &buffer)
        #expect(String(buffer: buffer) == """
            {"id":"f1.1.2.3.4","source":"app","text":"a\\r\\n\\u0000"}
            {"id":"f1.1.2.0.0","event":"truncated","source":"app","text":"cut"}
            {"id":"f1.1.2.0.0","event":"reset","source":"app","reason":"why"}
            {"id":"f1.1.2.5.6","source":"app","text":"xy","continues":true}\n
            """)
    }

    @Test("random hostile events: one parseable object per line, with id, event, source and text", arguments: 0..<4)
    func randomEvents(batch: Int) throws {
        for round in 0..<25 {
            let seed = UInt64(batch * 100 + round)
            var rng = SplitMix64(seed: 0x2D_0000 + seed)
            let events = (0..<rng.int(1...40)).map { _ in randomStreamEvent(using: &rng) }
            let encoder = EventEncoder(format: .ndjson, source: source)
            var buffer = ByteBuffer()
            for event in events { encoder.encode(event, into: &buffer) }
            let bytes = Array(buffer.readableBytesView)
            #expect(!bytes.contains(0x0D) && !bytes.contains(0x00), "seed \(seed)")
            #expect(isValidUTF8(bytes), "seed \(seed)")
            #expect(bytes.last == 0x0A, "seed \(seed)")
            let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
            #expect(lines.count == events.count + 1 && lines.last?.isEmpty == true, "seed \(seed)")
            for (index, (event, line)) in zip(events, lines).enumerated() {
                let context = "seed \(seed) event \(index)"
                let object = try parseJSONObject(line)
                #expect(object["id"]?.string == event.id, "\(context)")
                #expect(object["event"]?.string == (event.kind == .line ? nil : event.kind.rawValue), "\(context)")
                expectObject(object, matches: event, source: source, context: context)
            }
        }
    }

    @Test("an id holding JSON-special characters still gives valid JSON")
    func idIsEscaped() throws {
        // Ids are opaque printable ASCII: `"` and `\` are printable ASCII.
        let id = #"cursor"with\quote"#
        let encoder = EventEncoder(format: .ndjson, source: source)
        var buffer = ByteBuffer()
        encoder.encode(.line(Array("x".utf8), id: id), into: &buffer)
        let object = try? parseJSONObject(buffer.readableBytesView.dropLast())
        #expect(object?["id"]?.string == id, "written: \(String(buffer: buffer))")
    }
}
