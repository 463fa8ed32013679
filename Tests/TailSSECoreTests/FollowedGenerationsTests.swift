import TailSSECore
import Testing

@Suite("Followed generations")
struct FollowedGenerationsTests {
    private let identity = FileIdentity(device: 0xfe01, inode: 0x1234)

    @Test("a fingerprint matches the file it was taken of, and that file grown; not another")
    func fingerprint() {
        let start = Array("first line\nsecond".utf8)
        let print = GenerationFingerprint(of: start)
        #expect(print.length == start.count && !print.isComplete)
        #expect(print.matches(start))
        #expect(print.matches(start + Array(" line\nthird\n".utf8)))
        #expect(!print.matches(Array("first line\nsecond".utf8.dropLast())))
        #expect(!print.matches(Array("First line\nsecond".utf8)))
        let long = [UInt8](repeating: 0x61, count: 100)
        let full = GenerationFingerprint(of: long)
        #expect(full.isComplete && full.length == GenerationFingerprint.windowSize)
        #expect(full.matches(long.prefix(64)) && !full.matches(long.prefix(63)))
        #expect(GenerationFingerprint(of: [UInt8]()).matches([UInt8]()))
        #expect(GenerationFingerprint(length: 65, hash: 0) == nil)
        #expect(GenerationFingerprint(length: -1, hash: 0) == nil)
        #expect(GenerationFingerprint.fnv1a(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
    }

    @Test("entries round-trip through the stored text; the newest record of a file wins")
    func roundTrip() {
        var generations = FollowedGenerations()
        let added = generations.record(identity, fingerprint: GenerationFingerprint(of: [1, 2]))
        let again = generations.record(identity, fingerprint: GenerationFingerprint(of: [1, 2]))
        let grown = generations.record(identity, fingerprint: GenerationFingerprint(of: [1, 2, 3]))
        #expect(added && !again && grown)
        let other = FileIdentity(device: 0xfe01, inode: 0x99)
        generations.record(other, fingerprint: GenerationFingerprint(of: [UInt8]()))
        #expect(generations.entries.count == 2)
        #expect(generations.entry(for: identity)?.fingerprint == GenerationFingerprint(of: [1, 2, 3]))
        #expect(FollowedGenerations(parsing: generations.text) == generations)
        #expect(generations.entry(for: FileIdentity(device: 0xfe02, inode: 0x1234)) == nil)
    }

    @Test("at most `capacity` entries are kept, the oldest forgotten")
    func bounded() {
        var generations = FollowedGenerations()
        for inode in 0..<UInt64(FollowedGenerations.capacity + 5) {
            generations.record(FileIdentity(device: 1, inode: inode), fingerprint: GenerationFingerprint(of: [UInt8(inode & 0xff)]))
        }
        #expect(generations.entries.count == FollowedGenerations.capacity)
        #expect(generations.entry(for: FileIdentity(device: 1, inode: 0)) == nil)
        #expect(generations.entry(for: FileIdentity(device: 1, inode: 5)) != nil)
    }

    @Test("stored text without the header, or with malformed lines, yields only well-formed entries",
          arguments: [
              ("", 0), ("fe01 1234 2 99\n", 0), ("tailsse followed generations v1\n", 0),
              ("tailsse followed generations v1\nfe01 1234 2 99\nzz 1 1 1\nfe01 1 41 1\nfe01 2 1\n1 2 3 4 5\n", 1),
              ("tailsse followed generations v1\nfe01 1234 40 ffffffffffffffff\n", 1),
              ("tailsse followed generations v1\nfe01 1234 40 10000000000000000\n", 0),
          ] as [(String, Int)])
    func malformed(text: String, count: Int) {
        #expect(FollowedGenerations(parsing: text).entries.count == count)
    }
}

@Suite("Followed generations: truncation in place")
struct FollowedGenerationsTruncationTests {
    private let identity = FileIdentity(device: 7, inode: 8)

    @Test("a truncation keeps the fingerprint of the content before; the entry starts again")
    func truncation() {
        var generations = FollowedGenerations()
        let before = GenerationFingerprint(of: Array("old content\n".utf8))
        let after = GenerationFingerprint(of: Array("new\n".utf8))
        let withoutEntry = generations.recordTruncation(of: identity)
        generations.record(identity, fingerprint: before)
        let withEntry = generations.recordTruncation(of: identity)
        #expect(!withoutEntry && withEntry)
        #expect(generations.entry(for: identity) == nil)
        generations.record(identity, fingerprint: after)
        #expect(generations.entry(for: identity)?.fingerprint == after)
        #expect(generations.truncatedContent(of: identity) == [before])
        let reread = FollowedGenerations(parsing: generations.text)
        #expect(reread == generations)
        #expect(reread.truncatedContent(of: identity) == [before])
        #expect(generations.text.contains(" t\n"))
        #expect(FollowedGenerations(parsing: "tailsse followed generations v1\n7 8 1 2 x\n").entries.isEmpty)
    }
}
