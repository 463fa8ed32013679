import NIOCore
import TailSSECore
import Testing

@Suite("Encoding a line straight from its bytes (encodeLine)")
struct EventEncoderEncodeLineTests {
    @Test("encodeLine with a FileEventID writes exactly what encode(.line) with its printed id writes", arguments: StreamFormat.allCases)
    func sameBytesAsEncode(format: StreamFormat) {
        var rng = SplitMix64(seed: 0xE1 + UInt64(format.rawValue.utf8.count))
        let encoder = EventEncoder(format: format, source: "src")
        for round in 0..<300 {
            let text = randomLogBytes(count: rng.int(0...300), using: &rng)
            let id = FileEventID(
                file: FileIdentity(device: rng.next() >> UInt64(rng.int(0...63)), inode: rng.next() >> UInt64(rng.int(0...63))),
                offset: Int64(rng.next() >> UInt64(rng.int(1...63))), check: UInt32(truncatingIfNeeded: rng.next() >> UInt64(rng.int(0...63))))
            let continues = rng.chance(1, in: 3)
            var viaEvent = ByteBuffer(string: "prefix")
            encoder.encode(.line(text, id: id.description, continues: continues), into: &viaEvent)
            var direct = ByteBuffer(string: "prefix")
            _ = text.withUnsafeBytes { encoder.encodeLine($0, id: id, continues: continues, into: &direct) }
            #expect(difference(Array(direct.readableBytesView), Array(viaEvent.readableBytesView)) == nil, "\(format) round \(round) id \(id)")
        }
    }

    @Test("FileEventID.write(to:) appends exactly its description")
    func writeMatchesDescription() {
        var rng = SplitMix64(seed: 0x17)
        var ids = [
            FileEventID(file: FileIdentity(device: 0, inode: 0), offset: 0, check: 0),
            FileEventID(file: FileIdentity(device: .max, inode: .max), offset: .max, check: .max),
        ]
        for _ in 0..<500 {
            ids.append(FileEventID(
                file: FileIdentity(device: rng.next() >> UInt64(rng.int(0...63)), inode: rng.next() >> UInt64(rng.int(0...63))),
                offset: Int64(rng.next() >> UInt64(rng.int(1...63))), check: UInt32(truncatingIfNeeded: rng.next() >> UInt64(rng.int(0...63)))))
        }
        for id in ids {
            var buffer = ByteBuffer(string: "id: ")
            id.write(to: &buffer)
            #expect(String(buffer: buffer) == "id: " + id.description)
            let expected = "f1.\(String(id.file.device, radix: 16)).\(String(id.file.inode, radix: 16)).\(String(id.offset, radix: 16)).\(String(id.check, radix: 16))"
            #expect(id.description == expected)
        }
    }
}
