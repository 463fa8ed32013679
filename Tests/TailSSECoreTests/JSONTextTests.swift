import Foundation
import NIOCore
import TailSSECore
import Testing

private func escaped(_ bytes: [UInt8]) -> [UInt8] {
    var buffer = ByteBuffer()
    JSONText.writeEscaped(bytes, to: &buffer)
    return Array(buffer.readableBytesView)
}

private func escapedViaPointer(_ bytes: [UInt8]) -> [UInt8] {
    var buffer = ByteBuffer()
    bytes.withUnsafeBytes { JSONText.writeEscaped($0, to: &buffer) }
    return Array(buffer.readableBytesView)
}

private func repaired(_ bytes: [UInt8]) -> [UInt8] {
    var buffer = ByteBuffer()
    bytes.withUnsafeBytes { JSONText.writeRepaired($0, to: &buffer) }
    return Array(buffer.readableBytesView)
}

@Suite("JSON text")
struct JSONTextTests {
    @Test("every ASCII byte is escaped exactly as JSON requires", arguments: 0...0x7F)
    func asciiByte(value: Int) throws {
        let byte = UInt8(value)
        let expected: [UInt8]
        switch byte {
        case 0x22: expected = Array(#"\""#.utf8)
        case 0x5C: expected = Array(#"\\"#.utf8)
        case 0x0A: expected = Array(#"\n"#.utf8)
        case 0x0D: expected = Array(#"\r"#.utf8)
        case 0x09: expected = Array(#"\t"#.utf8)
        case 0x00..<0x20:
            let hex = String(value, radix: 16)
            expected = Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
        default: expected = [byte]
        }
        #expect(escaped([byte]) == expected)
        #expect(escapedViaPointer([byte]) == expected)
        // In context too, and the result is a JSON string holding exactly that character.
        let inContext = escaped(Array("a".utf8) + [byte] + Array("z".utf8))
        #expect(inContext == Array("a".utf8) + expected + Array("z".utf8))
        let parsed = try parseJSONString(inContext)
        #expect(Array(parsed.unicodeScalars) == ["a", Unicode.Scalar(byte), "z"])
    }

    @Test("escaped output never holds a control byte, so no line can break SSE or NDJSON framing")
    func noControlBytes() {
        let all = (0...255).map(UInt8.init)
        let output = escaped(all + all.reversed())
        #expect(output.allSatisfy { $0 >= 0x20 })
        #expect(!output.contains(0x0A) && !output.contains(0x0D) && !output.contains(0x00))
        #expect(isValidUTF8(output))
    }

    @Test("invalid UTF-8 becomes one U+FFFD per maximal subpart", arguments: [
        ([0xE2, 0x82], 1), ([0xF0, 0x9F, 0x98], 1), ([0xC0, 0xAF], 2), ([0xE0, 0x80, 0xAF], 3),
        ([0xED, 0xA0, 0x80], 3), ([0xF0, 0x80, 0x80], 3), ([0xF4, 0x90, 0x80, 0x80], 4), ([0xF5, 0x80], 2),
        ([0xFF, 0xFE], 2), ([0x80, 0x80, 0x80], 3), ([0xE2, 0x41], 1), ([0xF1, 0x80, 0x80, 0x41], 1),
    ] as [([UInt8], Int)])
    func maximalSubparts(bytes: [UInt8], replacements: Int) throws {
        let fffd: [UInt8] = [0xEF, 0xBF, 0xBD]
        let ascii = bytes.filter { $0 < 0x80 }
        let expected = Array(repeating: fffd, count: replacements).flatMap { $0 } + ascii
        #expect(repaired(bytes) == expected)
        #expect(escaped(bytes) == expected)
        #expect(repaired(bytes) == repairedUTF8(bytes))
    }

    @Test("valid UTF-8 passes through unchanged, including U+2028, BOM, noncharacters and 4-byte characters")
    func validPassesThrough() throws {
        for sample in multiByteSamples + [Array("plain ascii ~".utf8), Array("mixed é€😀 text".utf8)] {
            #expect(repaired(sample) == sample)
            #expect(escaped(sample) == sample)
            #expect(Array(try parseJSONString(escaped(sample)).utf8) == sample)
        }
    }

    @Test("fuzz: escaped random bytes, in quotes, parse as JSON to String(decoding:as:)", arguments: 0..<4)
    func fuzzEscaped(batch: Int) throws {
        var rng = SplitMix64(seed: 0x15_0000 + UInt64(batch))
        for round in 0..<500 {
            let bytes: [UInt8] = rng.chance(1, in: 2)
                ? randomLogBytes(count: rng.int(0...300), using: &rng)
                : (0..<rng.int(0...64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let output = escaped(bytes)
            #expect(output == escapedViaPointer(bytes))
            #expect(isValidUTF8(output), "batch \(batch) round \(round)")
            let parsed = try parseJSONString(output)
            let mismatch = difference(Array(parsed.utf8), repairedUTF8(bytes))
            #expect(mismatch == nil, "batch \(batch) round \(round): \(bytes)")
        }
    }

    @Test("fuzz: writeRepaired equals Array(String(decoding:as:).utf8)", arguments: 0..<4)
    func fuzzRepaired(batch: Int) {
        var rng = SplitMix64(seed: 0x2E_0000 + UInt64(batch))
        for round in 0..<500 {
            let bytes: [UInt8] = rng.chance(1, in: 2)
                ? randomLogBytes(count: rng.int(0...300), using: &rng)
                : (0..<rng.int(0...64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let mismatch = difference(repaired(bytes), repairedUTF8(bytes))
            #expect(mismatch == nil, "batch \(batch) round \(round): \(bytes)")
        }
    }

    @Test("a long line of mixed content escapes and parses back")
    func longLine() throws {
        var rng = SplitMix64(seed: 77)
        let bytes = randomLogBytes(count: 200_000, using: &rng)
        let parsed = try parseJSONString(escaped(bytes))
        #expect(difference(Array(parsed.utf8), repairedUTF8(bytes)) == nil)
        #expect(difference(repaired(bytes), repairedUTF8(bytes)) == nil)
    }

    @Test("any byte at any place of a plain run is handled as on its own (8 bytes are tested at once)", arguments: 0...0xFF)
    func byteInPlainRun(value: Int) {
        let plain = Array("abcdefghijklmnopqrstuvwx".utf8)
        let byte = UInt8(value)
        // Fewer than 8 bytes are never tested at once: one byte alone is the reference.
        let alone = escaped([byte])
        let aloneRepaired = repaired([byte])
        for place in 0..<plain.count {
            var line = plain
            line[place] = byte
            #expect(escaped(line) == Array(plain[..<place]) + alone + Array(plain[(place + 1)...]), "byte \(value) at \(place)")
            #expect(repaired(line) == Array(plain[..<place]) + aloneRepaired + Array(plain[(place + 1)...]), "byte \(value) at \(place)")
        }
    }

    @Test("writing appends to what the buffer already holds")
    func appends() {
        var buffer = ByteBuffer(string: "{\"text\":\"")
        JSONText.writeEscaped(Array("a\"b".utf8), to: &buffer)
        Array("\n".utf8).withUnsafeBytes { JSONText.writeRepaired($0, to: &buffer) }
        #expect(String(buffer: buffer) == "{\"text\":\"a\\\"b\n")
    }

    @Test("quoted gives a complete JSON string literal")
    func quoted() throws {
        #expect(JSONText.quoted("syslog") == Array("\"syslog\"".utf8))
        #expect(JSONText.quoted("a\"b\\c\nd") == Array(#""a\"b\\c\nd""#.utf8))
        #expect(JSONText.quoted("") == Array("\"\"".utf8))
        let parsed = try JSONDecoder().decode(String.self, from: Data(JSONText.quoted("\u{FEFF}é\u{0}\u{FEFF}x")))
        #expect(Array(parsed.utf8) == Array("\u{FEFF}é\u{0}\u{FEFF}x".utf8))
    }
}
