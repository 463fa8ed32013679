import NIOCore
import OpenAPIRuntime
import TailSSECore
import Testing

/// One thing written to a stream, to know what the client must see.
enum Written {
    case event(StreamEvent)
    case heartbeat
}

/// A random event: a line of hostile bytes (sometimes very long, sometimes a piece), or a marker.
func randomStreamEvent(using rng: inout SplitMix64) -> StreamEvent {
    let id: String? = switch rng.int(0...9) {
    case 0: nil
    case 1: "s=6c1a0f2d9e3b4a5c8d7e6f5a4b3c2d1e;i=\(String(rng.next() >> 40, radix: 16));b=0f1e2d3c;m=\(rng.int(0...999_999));t=5f2;x=\(String(rng.next(), radix: 16))"
    default: FileEventID(file: FileIdentity(device: rng.next() >> 48, inode: rng.next() >> 20), offset: Int64(rng.next() >> 24), check: UInt32(truncatingIfNeeded: rng.next())).description
    }
    switch rng.int(0...11) {
    case 0: return .marker(.rotated, id: id, message: "the file was replaced; following the new file")
    case 1: return .marker(.truncated, id: id, message: "the file was truncated; reading it from the start")
    case 2: return .marker(.reset, id: id, message: "the id \"x\\y\" is not valid:\r\nreading from the tail")
    default:
        let length = rng.chance(1, in: 30) ? rng.int(5000...9000) : rng.int(0...200)
        return .line(randomLogBytes(count: length, using: &rng), id: id, continues: rng.chance(1, in: 5))
    }
}

/// Decodes SSE bytes with swift-openapi-runtime's parser, fed in the given chunks.
func decodeSSE(_ bytes: [UInt8], chunks: [Range<Int>]) async throws -> [ServerSentEvent] {
    var events: [ServerSentEvent] = []
    for try await event in ChunkSequence(bytes, chunks: chunks).asDecodedServerSentEvents() {
        events.append(event)
    }
    return events
}

/// Chunks of mixed sizes: small ones split field names, separators and blank lines; large ones
/// keep a long line from being fed byte by byte to a parser that rescans its buffer.
func mixedChunks(count: Int, using rng: inout SplitMix64) -> [Range<Int>] {
    var chunks: [Range<Int>] = []
    var start = 0
    while start < count {
        let size = rng.chance(1, in: 2) ? rng.int(1...8) : rng.int(1...2048)
        let end = min(count, start + size)
        chunks.append(start..<end)
        start = end
    }
    return chunks
}

/// Checks a decoded JSON object against the event it encodes (without the NDJSON-only members).
func expectObject(_ object: [String: JSONValue], matches event: StreamEvent, source: String, context: String) {
    #expect(object["source"] == .string(source), "\(context)")
    let textKey = event.kind == .reset ? "reason" : "text"
    let text = object[textKey]?.string
    let textDifference = difference(text.map { Array($0.utf8) } ?? [], repairedUTF8(event.text))
    #expect(text != nil && textDifference == nil, "\(context): \(textKey): \(textDifference ?? "missing")")
    #expect(object["continues"] == (event.continues ? .bool(true) : nil), "\(context): continues")
    var keys: Set<String> = ["source", textKey]
    if event.continues { keys.insert("continues") }
    #expect(Set(object.keys).subtracting(["id", "event"]) == keys, "\(context): keys \(object.keys.sorted())")
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
