import TailSSECore
import Testing

@Suite("File event ids")
struct FileEventIDTests {
    private static func parse(_ text: String) -> Result<FileEventID, FileEventID.ParseError> {
        do throws(FileEventID.ParseError) {
            return .success(try FileEventID(parsing: text))
        } catch {
            return .failure(error)
        }
    }

    @Test("the printed form is f1.DEV.INODE.OFFSET.CHECK in lower-case hex")
    func printedForm() {
        let id = FileEventID(file: FileIdentity(device: 0x803, inode: 0x1A2B), offset: 4096, check: 0xDEAD_BEEF)
        #expect(id.description == "f1.803.1a2b.1000.deadbeef")
        #expect(FileEventID(file: FileIdentity(device: 0, inode: 0), offset: 0, check: 0).description == "f1.0.0.0.0")
        #expect(FileIdentity(device: 0x803, inode: 0x1A2B).description == "803:1a2b")
    }

    @Test("ids are printable ASCII without NUL, CR, LF, at most 256 bytes, even for the largest values")
    func printable() {
        let largest = FileEventID(file: FileIdentity(device: .max, inode: .max), offset: .max, check: .max)
        let bytes = Array(largest.description.utf8)
        #expect(bytes.count <= 256)
        #expect(bytes.allSatisfy { $0 >= 0x21 && $0 <= 0x7E })
    }

    @Test("description then parsing gives the same id, for random values, 0 and the largest values that fit")
    func roundTrip() throws {
        var rng = SplitMix64(seed: 0xF1)
        var ids: [FileEventID] = [
            FileEventID(file: FileIdentity(device: 0, inode: 0), offset: 0, check: 0),
            FileEventID(file: FileIdentity(device: .max, inode: .max), offset: (1 << 60) - 1, check: .max),
            FileEventID(file: FileIdentity(device: 1, inode: .max), offset: 1, check: 1),
        ]
        for _ in 0..<1000 {
            // Random values of random magnitudes, so every digit count occurs.
            func magnitude(_ bits: Int) -> UInt64 { bits == 0 ? 0 : rng.next() >> UInt64(64 - bits) }
            ids.append(FileEventID(
                file: FileIdentity(device: magnitude(rng.int(0...64)), inode: magnitude(rng.int(0...64))),
                offset: Int64(magnitude(rng.int(0...60))),
                check: UInt32(truncatingIfNeeded: magnitude(rng.int(0...32)))
            ))
        }
        for id in ids {
            let text = id.description
            #expect(try FileEventID(parsing: text) == id, "\(text)")
            #expect(try FileEventID(parsing: text[...]) == id, "substring \(text)")
        }
    }

    @Test("every non-negative file offset round-trips (a file may be sparse up to Int64.max)")
    func roundTripHugeOffsets() {
        for offset: Int64 in [1 << 60, 1 << 62, .max] {
            let id = FileEventID(file: FileIdentity(device: 0x803, inode: 12), offset: offset, check: 7)
            #expect(Self.parse(id.description) == .success(id), "\(id.description) printed but not parsed")
        }
    }

    @Test("anything but the printed form is rejected with the right error", arguments: [
        ("", FileEventID.ParseError.notAFileID),
        ("f1", .malformed),
        ("f1.", .malformed),
        ("f1....", .malformed),
        ("f1.....", .malformed),
        ("f1.1.2.3", .malformed),
        ("f2.1.2.3.4", .notAFileID),
        ("F1.1.2.3.4", .notAFileID),
        ("f10.1.2.3.4", .notAFileID),
        ("s=abc;i=1;b=2", .notAFileID),
        ("f1.A.2.3.4", .malformed),
        ("f1.1.2.3.ABCDEF", .malformed),
        ("f1.1.2.3.g", .malformed),
        ("f1.1.2.z3.4", .malformed),
        ("f1.0x1.2.3.4", .malformed),
        ("f1.1.2.3.4.5", .malformed),
        ("f1.1.2.3.4.", .malformed),
        ("f1..1.2.3", .malformed),
        ("f1.1.2.-3.4", .malformed),
        ("f1.1.2.+3.4", .malformed),
        ("f1.1.2\u{0}.3.4", .malformed),
        ("f1.1.2.3.4\r", .malformed),
        ("f1.1.2.3.4\n", .malformed),
        ("f1.1.2\n.3.4", .malformed),
        (" f1.1.2.3.4", .notAFileID),
        ("f1.1.2.3.4 ", .malformed),
        ("f1. 1.2.3.4", .malformed),
        ("f1.1.2.3.\t4", .malformed),
        ("f1.10000000000000000.2.3.4", .malformed),
        ("f1.1.10000000000000000.3.4", .malformed),
        ("f1.1.2.8000000000000000.4", .malformed),
        ("f1.1.2.3.100000000", .malformed),
        ("f1.\u{0661}.2.3.4", .malformed),
        ("f1.1.\u{FF12}.3.4", .malformed),
        ("f1.1.2.\u{00B3}.4", .malformed),
        ("f1.1.2.3.\u{0664}", .malformed),
        ("f1.1.2.3.4" + String(repeating: "0", count: 300), .tooLong),
        ("f1.1.2.3." + String(repeating: "é", count: 125), .tooLong),
    ])
    func rejectsGarbage(text: String, error: FileEventID.ParseError) {
        #expect(Self.parse(text) == .failure(error))
        #expect(throws: error) { try FileEventID(parsing: text) }
    }

    @Test("256 bytes is not too long; 257 bytes is")
    func lengthLimit() {
        let base = "f1.1.2.3."
        let at256 = base + String(repeating: "0", count: 256 - base.utf8.count)
        let at257 = at256 + "0"
        #expect(Self.parse(at256) == .failure(.malformed))
        #expect(Self.parse(at257) == .failure(.tooLong))
    }

    @Test("only the printed form parses: a parsed id prints back as the same text (no leading zeros)", arguments: [
        "f1.01.2.3.4", "f1.1.02.3.4", "f1.1.2.03.4", "f1.1.2.3.04", "f1.00.0.0.0", "f1.0000000000000001.2.3.4",
    ])
    func canonicalOnly(text: String) {
        #expect(Self.parse(text) == .failure(.malformed), "non-canonical \(text) was accepted")
    }

    @Test("errors have a readable description")
    func errorDescriptions() {
        let all: [FileEventID.ParseError] = [.tooLong, .notAFileID, .malformed]
        #expect(Set(all.map(\.description)).count == 3)
        #expect(all.allSatisfy { !$0.description.isEmpty })
    }
}
