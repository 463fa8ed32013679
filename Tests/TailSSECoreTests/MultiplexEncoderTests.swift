import NIOCore
import OpenAPIRuntime
import TailSSECore
import Testing

@Suite("Multiplexing framed events with composite ids")
struct MultiplexEncoderTests {
    private func framed(_ format: StreamFormat, _ source: String, _ events: [StreamEvent]) -> ByteBuffer {
        let encoder = EventEncoder.framed(format: format, source: source)
        var buffer = ByteBuffer()
        for event in events { encoder.encode(event, into: &buffer) }
        return buffer
    }

    private func plain(_ format: StreamFormat, _ source: String, _ events: [StreamEvent]) -> [UInt8] {
        let encoder = EventEncoder(format: format, source: source)
        var buffer = ByteBuffer()
        for event in events { encoder.encode(event, into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    @Test("a frame holds exactly the bytes the unframed encoder writes, and where its id is", arguments: StreamFormat.allCases)
    func framesHoldTheWireBytes(format: StreamFormat) {
        var rng = SplitMix64(seed: 0xF4A3E + UInt64(format.hashValue & 0xFF))
        for _ in 0..<200 {
            let event = randomStreamEvent(using: &rng)
            var frames: [(bytes: [UInt8], id: String?, range: Range<Int>?)] = []
            EventFrame.forEach(in: framed(format, "src", [event])) { frame in
                frames.append((Array(frame.bytes), frame.id.map { String(decoding: $0, as: UTF8.self) }, frame.idRange))
            }
            #expect(frames.count == 1)
            guard let frame = frames.first else { continue }
            #expect(frame.bytes == plain(format, "src", [event]))
            #expect(frame.id == event.id)
            if let range = frame.range, let id = event.id {
                #expect(Array(frame.bytes[range]) == Array(id.utf8) || format == .ndjson)
            } else {
                #expect(format == .plainText || event.id == nil)
            }
        }
    }

    @Test("every SSE event gets the composite id of all sources' positions after it, in the order sent")
    func sseCompositeIDs() async throws {
        var multiplexer = MultiplexEncoder(format: .eventStream, sources: ["a", "b", "c"], startIDs: ["f1.1.1.0.0", nil, "c-start"])
        var output = ByteBuffer()
        multiplexer.write(frames: framed(.eventStream, "b", [.line(Array("b1".utf8), id: "f1.2.2.3.aa")]), source: 1, into: &output)
        multiplexer.write(frames: framed(.eventStream, "a", [
            .line(Array("a1".utf8), id: "f1.1.1.3.bb"),
            .marker(.rotated, id: "f1.1.9.0.0", message: "new file"),
            .line(Array("a2".utf8), id: "f1.1.9.3.cc"),
        ]), source: 0, into: &output)
        multiplexer.write(frames: framed(.eventStream, "b", [.marker(.reset, id: "weird,id%", message: "why")]), source: 1, into: &output)
        let bytes = Array(output.readableBytesView)
        let events = try await decodeSSE(bytes, chunks: [0..<bytes.count])
        #expect(events.map(\.id) == [
            "m1,a=f1.1.1.0.0,b=f1.2.2.3.aa,c=c-start",
            "m1,a=f1.1.1.3.bb,b=f1.2.2.3.aa,c=c-start",
            "m1,a=f1.1.9.0.0,b=f1.2.2.3.aa,c=c-start",
            "m1,a=f1.1.9.3.cc,b=f1.2.2.3.aa,c=c-start",
            "m1,a=f1.1.9.3.cc,b=weird%2Cid%25,c=c-start",
        ])
        #expect(events.map(\.event) == [nil, nil, "rotated", nil, "reset"])
        #expect(events.map(\.data) == [
            #"{"source":"b","text":"b1"}"#, #"{"source":"a","text":"a1"}"#, #"{"source":"a","text":"new file"}"#,
            #"{"source":"a","text":"a2"}"#, #"{"source":"b","reason":"why"}"#,
        ])
        #expect(multiplexer.currentID.description == "m1,a=f1.1.9.3.cc,b=weird%2Cid%25,c=c-start")
        #expect(try CompositeEventID(parsing: events[4].id ?? "")["b"] == "weird,id%")
    }

    @Test("an event without an id keeps the last composite id (SSE ids are sticky)")
    func eventWithoutID() async throws {
        var multiplexer = MultiplexEncoder(format: .eventStream, sources: ["a"], startIDs: [nil])
        var output = ByteBuffer()
        multiplexer.write(frames: framed(.eventStream, "a", [.line(Array("x".utf8), id: "1"), .marker(.rotated, id: nil, message: "m")]), source: 0, into: &output)
        let bytes = Array(output.readableBytesView)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == "id: m1,a=1\ndata: {\"source\":\"a\",\"text\":\"x\"}\n\nevent: rotated\ndata: {\"source\":\"a\",\"text\":\"m\"}\n\n")
    }

    @Test("NDJSON objects carry the composite id as their id member")
    func ndjson() throws {
        var multiplexer = MultiplexEncoder(format: .ndjson, sources: ["a", "b"], startIDs: [nil, "b0"])
        var output = ByteBuffer()
        multiplexer.write(frames: framed(.ndjson, "a", [.line(Array("q\"\\".utf8), id: "a\"1")]), source: 0, into: &output)
        let lines = Array(output.readableBytesView).split(separator: 0x0A)
        #expect(lines.count == 1)
        let object = try parseJSONObject(lines[0])
        #expect(object["id"] == .string("m1,a=a%221,b=b0"))
        #expect(object["text"] == .string("q\"\\"))
        #expect(object["source"] == .string("a"))
    }

    @Test("plain text prefixes each line with its source, and never glues two sources' pieces together")
    func plainText() {
        var multiplexer = MultiplexEncoder(format: .plainText, sources: ["a", "b"], startIDs: [nil, nil])
        var output = ByteBuffer()
        multiplexer.write(frames: framed(.plainText, "a", [.line(Array("one".utf8), id: "1"), .line(Array("piece-".utf8), id: "2", continues: true)]), source: 0, into: &output)
        multiplexer.write(frames: framed(.plainText, "b", [.line(Array("other".utf8), id: "1"), .marker(.rotated, id: "2", message: "m")]), source: 1, into: &output)
        multiplexer.write(frames: framed(.plainText, "a", [.line(Array("rest".utf8), id: "3")]), source: 0, into: &output)
        #expect(String(buffer: output) == "[a] one\n[a] piece-\n[b] other\n[a] rest\n")
    }

    @Test("a source added while the stream runs gets its part after the others; a retired one leaves the id")
    func addAndRetire() async throws {
        var multiplexer = MultiplexEncoder(format: .eventStream, sources: [], startIDs: [])
        var output = ByteBuffer()
        let a = multiplexer.addSource("a.log", startID: "f1.1.1.0.0")
        multiplexer.write(frames: framed(.eventStream, "g", [.line(Array("one".utf8), id: "f1.1.1.4.aa")]), source: a, into: &output)
        let b = multiplexer.addSource("b.log", startID: nil)
        #expect(multiplexer.currentID.description == "m1,a.log=f1.1.1.4.aa")
        multiplexer.write(frames: framed(.eventStream, "g", [.line(Array("two".utf8), id: "f1.1.2.4.bb")]), source: b, into: &output)
        multiplexer.retire(a)
        multiplexer.write(frames: framed(.eventStream, "g", [.line(Array("three".utf8), id: "f1.1.2.8.cc")]), source: b, into: &output)
        let bytes = Array(output.readableBytesView)
        let events = try await decodeSSE(bytes, chunks: [0..<bytes.count])
        #expect(events.map(\.id) == ["m1,a.log=f1.1.1.4.aa", "m1,a.log=f1.1.1.4.aa,b.log=f1.1.2.4.bb", "m1,b.log=f1.1.2.8.cc"])
    }

    /// The files of a glob ("a.log", "b.log") inside an outer stream with another source ("sys"):
    /// the inner encoder is framed, the outer one sees its composite id as the glob's own id.
    private func nested(_ format: StreamFormat) -> ByteBuffer {
        let glob = EventEncoder.framed(format: format, source: "app")
        var inner = MultiplexEncoder(format: format, sources: ["a.log", "b.log"], startIDs: ["f1.1.1.0.0", nil], framed: true)
        var outer = MultiplexEncoder(format: format, sources: ["app", "sys"], startIDs: [nil, "s0"])
        var innerOutput = ByteBuffer()
        func file(_ name: String, _ events: [StreamEvent]) -> ByteBuffer {
            var buffer = ByteBuffer()
            let encoder = glob.framed(file: name)
            for event in events { encoder.encode(event, into: &buffer) }
            return buffer
        }
        inner.write(frames: file("b.log", [.line(Array("b1".utf8), id: "f1.1.2.3.bb"), .line(Array("long-".utf8), id: "f1.1.2.8.cc", continues: true)]), source: 1, into: &innerOutput)
        inner.write(frames: file("a.log", [.line(Array("a1".utf8), id: "f1.1.1.3.aa"), .marker(.rotated, id: "f1.1.1.3.aa", message: "new file")]), source: 0, into: &innerOutput)
        var output = ByteBuffer()
        outer.write(frames: innerOutput, source: 0, into: &output)
        outer.write(frames: framed(format, "sys", [.line(Array("s1".utf8), id: "s1")]), source: 1, into: &output)
        return output
    }

    @Test("a glob's files nested in a multiplexed stream: its part is its own composite id, escaped, in SSE and NDJSON")
    func nestedIDs() async throws {
        let app1 = "m1%2Ca.log=f1.1.1.0.0%2Cb.log=f1.1.2.3.bb"
        let app2 = "m1%2Ca.log=f1.1.1.0.0%2Cb.log=f1.1.2.8.cc"
        let app3 = "m1%2Ca.log=f1.1.1.3.aa%2Cb.log=f1.1.2.8.cc"
        let expected = ["m1,app=\(app1),sys=s0", "m1,app=\(app2),sys=s0", "m1,app=\(app3),sys=s0", "m1,app=\(app3),sys=s0", "m1,app=\(app3),sys=s1"]
        let sse = Array(nested(.eventStream).readableBytesView)
        let events = try await decodeSSE(sse, chunks: [0..<sse.count])
        #expect(events.map(\.id) == expected)
        let lines = Array(nested(.ndjson).readableBytesView).split(separator: 0x0A)
        let objects = try lines.map { try parseJSONObject($0) }
        #expect(objects.map { $0["id"]?.string } == expected)
        #expect(objects.map { $0["file"]?.string } == ["b.log", "b.log", "a.log", "a.log", nil])
        #expect(objects.map { $0["source"]?.string } == ["app", "app", "app", "app", "sys"])
        let parsed = try CompositeEventID(parsing: expected[2])
        #expect(try CompositeEventID(parsing: #require(parsed["app"]))["a.log"] == "f1.1.1.3.aa")
    }

    @Test("a glob's files nested in plain text: each line is prefixed with the source and the file, pieces kept apart")
    func nestedPlainText() {
        #expect(String(buffer: nested(.plainText)) == "[app] [b.log] b1\n[app] [b.log] long-\n[app] [a.log] a1\n[sys] s1\n")
    }

    @Test("random interleavings of three sources: every id is the composite of the latest id of each, in request order", arguments: 0..<4)
    func randomInterleavings(batch: Int) async throws {
        var rng = SplitMix64(seed: 0x3A1_0000 + UInt64(batch))
        let names = ["app", "journal", "web.1"]
        let start: [String?] = [rng.chance(1, in: 2) ? "f1.1.1.0.0" : nil, nil, "f1.9.9.0.0"]
        var multiplexer = MultiplexEncoder(format: .eventStream, sources: names, startIDs: start)
        var latest = start
        var expectedIDs: [String] = []
        var output = ByteBuffer()
        var lastID: String?
        for _ in 0..<300 {
            let index = rng.int(0...2)
            var events: [StreamEvent] = []
            for _ in 0..<rng.int(1...4) {
                var event = randomStreamEvent(using: &rng)
                if rng.chance(1, in: 6) { event.id = "id,with%odd\"bytes \(rng.int(0...99))" }
                events.append(event)
                if let id = event.id { latest[index] = id }
                let parts = names.indices.compactMap { i in latest[i].map { CompositeEventID.Part(source: names[i], id: $0) } }
                let composite = CompositeEventID(parts: parts).description
                if event.id != nil { lastID = composite }
                if let lastID { expectedIDs.append(lastID) }
            }
            multiplexer.write(frames: framed(.eventStream, names[index], events), source: index, into: &output)
        }
        let bytes = Array(output.readableBytesView)
        let decoded = try await decodeSSE(bytes, chunks: [0..<bytes.count])
        var sticky: String?
        var ids: [String] = []
        for event in decoded {
            if let id = event.id { sticky = id }
            if let sticky { ids.append(sticky) }
        }
        #expect(ids == expectedIDs)
        #expect(multiplexer.currentID.description == lastID ?? "m1")
    }
}
