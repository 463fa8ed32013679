import TailSSECore
import Testing

@Suite("Composite ids of multiplexed streams")
struct CompositeEventIDTests {
    @Test("the printed form names each source and its id")
    func printedForm() {
        let id = CompositeEventID(parts: [
            .init(source: "app", id: "f1.fe00.2a.1c.9e3779b9"),
            .init(source: "journal", id: "s=6c1a;i=2f;b=0f1e;m=3e8;t=5f2;x=9a"),
        ])
        #expect(id.description == "m1,app=f1.fe00.2a.1c.9e3779b9,journal=s=6c1a;i=2f;b=0f1e;m=3e8;t=5f2;x=9a")
        #expect(CompositeEventID(parts: []).description == "m1")
    }

    @Test("separators, quotes, backslashes, spaces and non-ASCII bytes inside an id are escaped and come back")
    func escaping() throws {
        let id = CompositeEventID(parts: [
            .init(source: "a.b_c-1", id: "x,y%z\"q\\ r=s\u{7F}é"),
            .init(source: "B", id: "plain"),
        ])
        let text = id.description
        #expect(text == "m1,a.b_c-1=x%2Cy%25z%22q%5C%20r=s%7F%C3%A9,B=plain")
        #expect(try CompositeEventID(parsing: text) == id)
    }

    @Test("random ids: printable ASCII without CR, LF, NUL, quote or backslash, and parsed back exactly", arguments: 0..<4)
    func randomRoundTrip(batch: Int) throws {
        var rng = SplitMix64(seed: 0xC0_0000 + UInt64(batch))
        let nameBytes = Array("abcXYZ019._-".utf8)
        for _ in 0..<200 {
            var parts: [CompositeEventID.Part] = []
            for index in 0..<rng.int(0...5) {
                let name = "\(index)" + String(decoding: (0..<rng.int(0...20)).map { _ in nameBytes[rng.int(0...(nameBytes.count - 1))] }, as: UTF8.self)
                var id = String(decoding: randomLogBytes(count: rng.int(1...256), using: &rng), as: UTF8.self)
                while id.utf8.count > 256 { id.removeLast() }
                if id.isEmpty { id = "x" }
                parts.append(.init(source: name, id: id))
            }
            let composite = CompositeEventID(parts: parts)
            let text = composite.description
            #expect(text.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
            #expect(try CompositeEventID(parsing: text) == composite)
            for part in parts { #expect(composite[part.source] == part.id) }
        }
    }

    @Test("anything but the printed form is rejected, never guessed", arguments: [
        ("", CompositeEventID.ParseError.notComposite),
        ("f1.fe00.2a.1c.9e3779b9", .notComposite),
        ("m2,a=b", .notComposite),
        ("m1a=b", .notComposite),
        ("m1,", .malformed),
        ("m1,a", .malformed),
        ("m1,a=", .malformed),
        ("m1,=x", .malformed),
        ("m1,a b=x", .malformed),
        ("m1,a=x,,b=y", .malformed),
        ("m1,a=x,a=y", .malformed),
        ("m1,a=%zz", .malformed),
        ("m1,a=%4", .malformed),
        ("m1,a=%2c", .malformed),
        ("m1,a=x y", .malformed),
        ("m1,a=x\"y", .malformed),
        ("m1,\(String(repeating: "n", count: 65))=x", .malformed),
    ])
    func rejects(text: String, error: CompositeEventID.ParseError) {
        #expect(throws: error) { try CompositeEventID(parsing: text) }
    }

    @Test("an id longer than the limit is rejected")
    func tooLong() {
        let text = "m1,a=" + String(repeating: "x", count: CompositeEventID.maxLength)
        #expect(throws: CompositeEventID.ParseError.tooLong) { try CompositeEventID(parsing: text) }
    }

    @Test("no parts is valid: every source starts at its tail position")
    func empty() throws {
        #expect(try CompositeEventID(parsing: "m1").parts.isEmpty)
    }
}
