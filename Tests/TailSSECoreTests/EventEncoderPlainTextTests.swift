import NIOCore
import TailSSECore
import Testing

@Suite("Plain text encoding")
struct EventEncoderPlainTextTests {
    private func plain(_ events: [StreamEvent]) -> [UInt8] {
        let encoder = EventEncoder(format: .plainText, source: "s")
        var buffer = ByteBuffer()
        encoder.preamble(retryMilliseconds: 3000, into: &buffer)
        for event in events {
            encoder.encode(event, into: &buffer)
            encoder.heartbeat(into: &buffer)
        }
        return Array(buffer.readableBytesView)
    }

    @Test("lines as they are, with a newline; markers, preamble and heartbeats write nothing")
    func wireForm() {
        let output = plain([
            .line(Array("first line".utf8), id: "f1.1.2.b.0"),
            .marker(.rotated, id: "f1.1.3.0.0", message: "the file was replaced"),
            .line(Array("tab\there, cr\rthere, nul\0".utf8), id: nil),
            .marker(.reset, id: nil, message: "why"),
            .marker(.truncated, id: nil, message: "cut"),
            .line([], id: "f1.1.3.1.0"),
        ])
        #expect(output == Array("first line\ntab\there, cr\rthere, nul\0\n\n".utf8))
    }

    @Test("invalid UTF-8 is repaired to U+FFFD, valid multi-byte text is untouched")
    func repaired() {
        let line: [UInt8] = Array("ok é€😀 ".utf8) + [0xE2, 0x82, 0x41, 0xFF, 0xED, 0xA0, 0x80]
        #expect(plain([.line(line, id: nil)]) == repairedUTF8(line) + [0x0A])
        #expect(isValidUTF8(plain([.line(line, id: nil)])))
    }

    @Test("a piece with continues=true is not followed by a newline")
    func piecesJoin() {
        let output = plain([
            .line(Array("abcd".utf8), id: "a", continues: true),
            .line(Array("efgh".utf8), id: "b", continues: true),
            .line(Array("ij".utf8), id: "c"),
            .line(Array("next".utf8), id: "d"),
        ])
        #expect(output == Array("abcdefghij\nnext\n".utf8))
    }

    @Test("random events: output is the repaired text of each line, newline unless continued", arguments: 0..<4)
    func randomEvents(batch: Int) {
        var rng = SplitMix64(seed: 0x7E_0000 + UInt64(batch))
        for round in 0..<50 {
            let events = (0..<rng.int(1...30)).map { _ in randomStreamEvent(using: &rng) }
            var expected: [UInt8] = []
            for event in events where event.kind == .line {
                expected += repairedUTF8(event.text)
                if !event.continues { expected.append(0x0A) }
            }
            #expect(difference(plain(events), expected) == nil, "batch \(batch) round \(round)")
        }
    }

    @Test("valid UTF-8 text split by LineSplitter into pieces comes out exactly as the input")
    func splitterRoundTrip() {
        var rng = SplitMix64(seed: 0xAB)
        for round in 0..<100 {
            let characters: [Character] = ["a", "b", " ", "\t", "é", "€", "😀", "\n", "\n", "\u{0}"]
            let text = String((0..<rng.int(0...2000)).map { _ in characters[rng.int(0...(characters.count - 1))] }) + "\n"
            let input = Array(text.utf8)
            var splitter = LineSplitter(maxLineBytes: rng.int(4...40))
            var events: [StreamEvent] = []
            input.withUnsafeBytes { raw in
                for range in randomChunks(count: input.count, using: &rng) {
                    splitter.consume(UnsafeRawBufferPointer(rebasing: raw[range])) { events.append(.line($0.text, id: nil, continues: $0.continues)) }
                }
            }
            #expect(difference(plain(events), input) == nil, "round \(round)")
        }
    }
}
