import NIOCore
import OpenAPIRuntime
import TailSSECore
import Testing

/// Decodes SSE bytes with swift-openapi-runtime's parser, fed in the given chunks.
func decodeSSE(_ bytes: [UInt8], chunks: [Range<Int>]) async throws -> [ServerSentEvent] {
    var events: [ServerSentEvent] = []
    for try await event in ChunkSequence(bytes, chunks: chunks).asDecodedServerSentEvents() {
        events.append(event)
    }
    return events
}

@Suite("SSE encoding (text/event-stream)")
struct EventEncoderSSETests {
    private let source = "var.log-syslog_1"

    private func encoded(_ body: (EventEncoder, inout ByteBuffer) -> Void) -> [UInt8] {
        let encoder = EventEncoder(format: .eventStream, source: source)
        var buffer = ByteBuffer()
        body(encoder, &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test("the wire form of a line holding CR, LF, NUL and quotes")
    func wireForm() {
        let bytes = encoded { encoder, buffer in
            encoder.encode(.line(Array("a\rb\nc\0d\"e\\".utf8), id: "f1.803.c.1f.abc"), into: &buffer)
        }
        #expect(String(decoding: bytes, as: UTF8.self)
            == "id: f1.803.c.1f.abc\ndata: {\"source\":\"var.log-syslog_1\",\"text\":\"a\\rb\\nc\\u0000d\\\"e\\\\\"}\n\n")
    }

    @Test("markers are named events; reset carries a reason; pieces carry continues")
    func wireFormOfMarkers() {
        let bytes = encoded { encoder, buffer in
            encoder.encode(.marker(.reset, id: "f1.1.2.0.0", message: "why"), into: &buffer)
            encoder.encode(.marker(.rotated, id: nil, message: "new file"), into: &buffer)
            encoder.encode(.line(Array("abc".utf8), id: "f1.1.2.3.4", continues: true), into: &buffer)
        }
        #expect(String(decoding: bytes, as: UTF8.self) == """
            event: reset\nid: f1.1.2.0.0\ndata: {"source":"var.log-syslog_1","reason":"why"}\n\n\
            event: rotated\ndata: {"source":"var.log-syslog_1","text":"new file"}\n\n\
            id: f1.1.2.3.4\ndata: {"source":"var.log-syslog_1","text":"abc","continues":true}\n\n
            """)
    }

    @Test("the retry preamble is a retry field an SSE parser accepts, and fires no event")
    func retryPreamble() async throws {
        let bytes = encoded { encoder, buffer in encoder.preamble(retryMilliseconds: 2500, into: &buffer) }
        #expect(String(decoding: bytes, as: UTF8.self) == "retry: 2500\n\n")
        let events = try await decodeSSE(bytes, chunks: [0..<bytes.count])
        #expect(events == [ServerSentEvent(id: nil, event: nil, data: nil, retry: 2500)])
    }

    @Test("the heartbeat is a comment: no field, no data, so no event fires")
    func heartbeat() async throws {
        let bytes = encoded { encoder, buffer in encoder.heartbeat(into: &buffer) }
        #expect(bytes.first == UInt8(ascii: ":"))
        #expect(bytes.suffix(2) == [0x0A, 0x0A])
        // The parser reports the blank line as an empty event; WHATWG dispatches nothing for an
        // empty data buffer, so an event without data is what "fires nothing" looks like here.
        let events = try await decodeSSE(bytes, chunks: (0..<bytes.count).map { $0..<($0 + 1) })
        #expect(events == [ServerSentEvent()])
    }

    @Test("random hostile lines and markers, in random chunks: one event each, exact id, event, source and text", arguments: 0..<4)
    func independentParser(batch: Int) async throws {
        for round in 0..<5 {
            let seed = UInt64(batch * 100 + round)
            var rng = SplitMix64(seed: 0x55E_0000 + seed)
            var written: [Written] = []
            for _ in 0..<rng.int(1...40) {
                written.append(rng.chance(1, in: 8) ? .heartbeat : .event(randomStreamEvent(using: &rng)))
            }
            let retry = rng.int(0...60000)
            let bytes = encoded { encoder, buffer in
                encoder.preamble(retryMilliseconds: retry, into: &buffer)
                for item in written {
                    switch item {
                    case .event(let event): encoder.encode(event, into: &buffer)
                    case .heartbeat: encoder.heartbeat(into: &buffer)
                    }
                }
            }
            // Framing: no raw CR or NUL anywhere, and the stream is valid UTF-8 as sent.
            #expect(!bytes.contains(0x0D) && !bytes.contains(0x00), "seed \(seed)")
            #expect(isValidUTF8(bytes), "seed \(seed)")

            let decoded = try await decodeSSE(bytes, chunks: mixedChunks(count: bytes.count, using: &rng))
            let expectedEvents = written.compactMap { item -> StreamEvent? in
                if case .event(let event) = item { event } else { nil }
            }
            let heartbeats = written.count - expectedEvents.count
            let fired = decoded.filter { $0.data != nil }
            let silent = decoded.filter { $0.data == nil }
            #expect(fired.count == expectedEvents.count, "seed \(seed)")
            #expect(silent.count == 1 + heartbeats, "seed \(seed)")
            #expect(silent.first == ServerSentEvent(retry: Int64(retry)), "seed \(seed)")
            #expect(silent.dropFirst().allSatisfy { $0 == ServerSentEvent() }, "seed \(seed)")

            for (index, (event, sse)) in zip(expectedEvents, fired).enumerated() {
                let context = "seed \(seed) event \(index)"
                #expect(sse.id == event.id, "\(context)")
                #expect(sse.event == (event.kind == .line ? nil : event.kind.rawValue), "\(context)")
                #expect(sse.retry == nil, "\(context)")
                let data = try #require(sse.data)
                #expect(!data.contains("\n"), "\(context): one data line")
                let object = try parseJSONObject(data.utf8)
                #expect(object["id"] == nil && object["event"] == nil, "\(context): SSE data holds no id or event")
                expectObject(object, matches: event, source: source, context: context)
            }
        }
    }

    @Test("a long line split by LineSplitter comes back whole from the pieces' texts")
    func piecesReassemble() async throws {
        var rng = SplitMix64(seed: 0x9)
        let characters: [Character] = ["a", "é", "€", "😀", " ", "\t", "\""]
        let line = Array(String((0..<3000).map { _ in characters[rng.int(0...(characters.count - 1))] }).utf8)
        var splitter = LineSplitter(maxLineBytes: 100)
        var events: [StreamEvent] = []
        (line + [0x0A]).withUnsafeBytes { raw in
            splitter.consume(raw) { piece in
                events.append(.line(piece.text, id: FileEventID(file: FileIdentity(device: 1, inode: 2), offset: piece.end, check: piece.check).description, continues: piece.continues))
            }
        }
        #expect(events.count > 10)
        let bytes = encoded { encoder, buffer in for event in events { encoder.encode(event, into: &buffer) } }
        let decoded = try await decodeSSE(bytes, chunks: mixedChunks(count: bytes.count, using: &rng))
        var text = ""
        for sse in decoded {
            let object = try parseJSONObject(try #require(sse.data).utf8)
            text += try #require(object["text"]?.string)
        }
        #expect(difference(Array(text.utf8), line) == nil)
        #expect(decoded.map(\.id) == events.map(\.id))
    }
}
