import TailSSECore
import Testing

/// A ``SplitLine`` copied out of its closure.
struct Line: Equatable, CustomStringConvertible {
    var text: [UInt8]
    var start: Int64
    var end: Int64
    var continues: Bool
    var check: UInt32

    init(text: some Collection<UInt8>, start: Int64, end: Int64, continues: Bool, check: UInt32) {
        self.text = Array(text)
        self.start = start
        self.end = end
        self.continues = continues
        self.check = check
    }

    init(_ line: SplitLine) {
        self.init(text: Array(line.text), start: line.start, end: line.end, continues: line.continues, check: line.check)
    }

    var description: String {
        "\(start)..<\(end)\(continues ? "+" : "") check=\(check) text=\(text)"
    }
}

/// Feeds `input[ranges]` chunk by chunk and returns the lines emitted (then the flushed one).
func splitLines(
    _ splitter: inout LineSplitter, _ input: [UInt8], chunks ranges: [Range<Int>], flush: Bool
) -> [Line] {
    var lines: [Line] = []
    input.withUnsafeBytes { raw in
        for range in ranges {
            splitter.consume(UnsafeRawBufferPointer(rebasing: raw[range])) { lines.append(Line($0)) }
        }
    }
    if flush { splitter.flush { lines.append(Line($0)) } }
    return lines
}

func splitLines(
    _ input: [UInt8], maxLineBytes: Int, chunks: [Range<Int>]? = nil, flush: Bool = false
) -> [Line] {
    var splitter = LineSplitter(maxLineBytes: maxLineBytes)
    return splitLines(&splitter, input, chunks: chunks ?? [0..<input.count], flush: flush)
}

/// The reference: split at LF, drop a CR right before the LF, cut content longer than the maximum
/// into pieces, moving each cut back (at most 3 bytes) to just before a byte that is not a UTF-8
/// continuation byte. Offsets are relative to `offset`; checks cover `history` then `input`.
func referenceLines(
    _ input: [UInt8], maxLineBytes: Int, offset: Int64 = 0, history: [UInt8] = [], flush: Bool
) -> [Line] {
    let stream = history + input
    func check(_ end: Int) -> UInt32 { referenceCheck(stream[..<(history.count + end)]) }
    func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

    var lines: [Line] = []
    var position = 0
    while position < input.count {
        let lf = input[position...].firstIndex(of: 0x0A)
        let contentEnd = lf ?? input.count
        var start = position
        while contentEnd - start > maxLineBytes {
            var cut = start + maxLineBytes
            for back in 0...3 where !isContinuation(input[start + maxLineBytes - back]) {
                cut = start + maxLineBytes - back
                break
            }
            lines.append(Line(text: input[start..<cut], start: offset + Int64(start), end: offset + Int64(cut), continues: true, check: check(cut)))
            start = cut
        }
        if let lf {
            var text = input[start..<lf]
            if text.last == 0x0D { text = text.dropLast() }
            lines.append(Line(text: text, start: offset + Int64(start), end: offset + Int64(lf + 1), continues: false, check: check(lf + 1)))
            position = lf + 1
        } else {
            if flush, start < contentEnd {
                lines.append(Line(text: input[start..<contentEnd], start: offset + Int64(start), end: offset + Int64(contentEnd), continues: false, check: check(contentEnd)))
            }
            break
        }
    }
    return lines
}

private func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

@Suite("Line splitting")
struct LineSplitterTests {
    @Test("LF ends a line, the CR of CRLF is dropped, a lone CR and NUL stay in the text")
    func basicLines() {
        let input = bytes("one\ntwo\r\nth\rree\n\n\r\nnul\0byte\n\r\r\nend")
        let lines = splitLines(input, maxLineBytes: 64)
        #expect(lines.map(\.text) == [bytes("one"), bytes("two"), bytes("th\rree"), [], [], bytes("nul\0byte"), [0x0D]])
        #expect(lines.map(\.start) == [0, 4, 9, 16, 17, 19, 28])
        #expect(lines.map(\.end) == [4, 9, 16, 17, 19, 28, 31])
        #expect(lines.allSatisfy { !$0.continues })
        #expect(lines.map(\.check) == lines.map { referenceCheck(input[..<Int($0.end)]) })
    }

    @Test("a partial line is held until its LF arrives, even across many chunks")
    func partialLineHeld() {
        var splitter = LineSplitter(maxLineBytes: 100)
        var lines: [Line] = []
        for chunk in ["par", "tial", " line", "\r", "\nnext"] {
            Array(chunk.utf8).withUnsafeBytes { raw in splitter.consume(raw) { lines.append(Line($0)) } }
        }
        #expect(lines.map(\.text) == [bytes("partial line")])
        #expect(lines.first?.end == 14)
        #expect(splitter.emittedOffset == 14)
        #expect(splitter.heldCount == 4)
        #expect(splitter.consumedOffset == 18)
    }

    @Test("flush emits the held partial line (CR kept, no LF), then nothing more")
    func flushEmitsHeldLine() {
        var splitter = LineSplitter(maxLineBytes: 16)
        let input = bytes("done\nhalf a line\r")
        var lines = splitLines(&splitter, input, chunks: [0..<3, 3..<input.count], flush: false)
        #expect(lines.map(\.text) == [bytes("done")])
        #expect(splitter.heldCount == 12)
        splitter.flush { lines.append(Line($0)) }
        #expect(lines.count == 2)
        #expect(lines.last == Line(text: bytes("half a line\r"), start: 5, end: 17, continues: false, check: referenceCheck(input)))
        #expect(splitter.heldCount == 0)
        #expect(splitter.emittedOffset == 17)
        var more = 0
        splitter.flush { _ in more += 1 }
        #expect(more == 0)
        // What follows the flush starts a new line at the flushed end.
        let after = splitLines(&splitter, bytes("x\n"), chunks: [0..<2], flush: false)
        #expect(after == [Line(text: bytes("x"), start: 17, end: 19, continues: false, check: referenceCheck(input + bytes("x\n")))])
    }

    @Test("flush with nothing held emits nothing")
    func flushNothingHeld() {
        var splitter = LineSplitter(maxLineBytes: 8)
        var count = 0
        splitter.flush { _ in count += 1 }
        _ = splitLines(&splitter, bytes("a\nb\n"), chunks: [0..<4], flush: false)
        splitter.flush { _ in count += 1 }
        #expect(count == 0)
        #expect(splitter.emittedOffset == 4)
    }

    @Test("an empty chunk changes nothing")
    func emptyChunk() {
        var splitter = LineSplitter(maxLineBytes: 8)
        let lines = splitLines(&splitter, bytes("ab\n"), chunks: [0..<0, 0..<1, 1..<1, 1..<3, 3..<3], flush: false)
        #expect(lines == [Line(text: bytes("ab"), start: 0, end: 3, continues: false, check: fnv1a32(bytes("ab\n")))])
    }

    @Test("a line longer than the maximum is cut into pieces marked continues, never dropped")
    func longLinePieces() {
        let input = bytes("abcdefghij\n")
        let lines = splitLines(input, maxLineBytes: 4)
        #expect(lines.map(\.text) == [bytes("abcd"), bytes("efgh"), bytes("ij")])
        #expect(lines.map(\.continues) == [true, true, false])
        #expect(lines.map(\.start) == [0, 4, 8])
        #expect(lines.map(\.end) == [4, 8, 11])
        // Exactly the maximum: one line; one more byte: two pieces.
        #expect(splitLines(bytes("abcd\n"), maxLineBytes: 4).map(\.text) == [bytes("abcd")])
        #expect(splitLines(bytes("abcde\n"), maxLineBytes: 4).map(\.text) == [bytes("abcd"), bytes("e")])
    }

    @Test("pieces are cut at UTF-8 character boundaries")
    func piecesAtCharacterBoundaries() {
        for (character, max) in [("é", 5), ("€", 10), ("😀", 10), ("😀", 4), ("€", 4), ("é", 4)] {
            let line = Array(String(repeating: character, count: 40).utf8)
            let lines = splitLines(line + [0x0A], maxLineBytes: max, chunks: [0..<1, 1..<(line.count + 1)])
            let width = character.utf8.count
            #expect(lines.count > 1)
            for piece in lines {
                #expect(isValidUTF8(piece.text), "\(character) max \(max): \(piece)")
                #expect(piece.text.count <= max)
                #expect(piece.text.count == (piece.continues ? max / width * width : piece.text.count))
            }
            #expect(lines.flatMap(\.text) == line)
        }
    }

    @Test("no boundary within 3 bytes: the cut stays at the maximum")
    func cutWithoutBoundary() {
        let line: [UInt8] = [0x61] + Array(repeating: 0x80, count: 20)
        let lines = splitLines(line + [0x0A], maxLineBytes: 6)
        #expect(lines.map(\.text.count) == [6, 6, 6, 3])
        // A lead byte 3 bytes back is still a boundary.
        let four: [UInt8] = Array("ab".utf8) + [0xF0, 0x9F, 0x98, 0x80] + Array("c".utf8)
        #expect(splitLines(four + [0x0A], maxLineBytes: 5).map(\.text) == [bytes("ab"), Array(four[2...])])
    }

    @Test("the property: random bytes, random chunkings, same lines as whole input and as the reference", arguments: 0..<8)
    func chunkingInvariance(batch: Int) {
        for index in 0..<50 {
            let seed = UInt64(batch * 1000 + index)
            var rng = SplitMix64(seed: seed)
            let max = rng.chance(1, in: 10) ? rng.int(41...300) : rng.int(4...40)
            let input = randomLogBytes(count: rng.int(0...(rng.chance(1, in: 5) ? 6000 : 700)), using: &rng)
            for flush in [false, true] {
                let expected = referenceLines(input, maxLineBytes: max, flush: flush)
                let whole = splitLines(input, maxLineBytes: max, flush: flush)
                #expect(difference(whole, expected) == nil, "seed \(seed) max \(max) flush \(flush)")
                for _ in 0..<2 {
                    let chunks = randomChunks(count: input.count, using: &rng)
                    var splitter = LineSplitter(maxLineBytes: max)
                    let chunked = splitLines(&splitter, input, chunks: chunks, flush: flush)
                    #expect(difference(chunked, whole) == nil, "seed \(seed) max \(max) flush \(flush) chunks \(chunks.count)")
                    #expect(splitter.consumedOffset == Int64(input.count), "seed \(seed)")
                    #expect(splitter.emittedOffset == (chunked.last?.end ?? 0), "seed \(seed)")
                    if flush { #expect(splitter.heldCount == 0, "seed \(seed)") }
                }
            }
        }
    }

    @Test("offsets are contiguous, raw bytes cover the input, checks and piece sizes are right")
    func contiguityAndCoverage() {
        for seed in UInt64(0)..<300 {
            var rng = SplitMix64(seed: 0xC0FFEE + seed)
            let max = rng.int(4...40)
            let input = randomLogBytes(count: rng.int(0...800), using: &rng)
            var splitter = LineSplitter(maxLineBytes: max)
            let lines = splitLines(&splitter, input, chunks: randomChunks(count: input.count, using: &rng), flush: false)
            var previousEnd: Int64 = 0
            var covered: [UInt8] = []
            for line in lines {
                #expect(line.start == previousEnd, "seed \(seed): \(line)")
                #expect(line.end > line.start, "seed \(seed): \(line)")
                let raw = Array(input[Int(line.start)..<Int(line.end)])
                covered += raw
                if line.continues {
                    #expect(raw == line.text, "seed \(seed): a piece is its raw bytes")
                    #expect(line.text.count <= max && line.text.count >= max - 3, "seed \(seed): \(line)")
                } else {
                    #expect(raw == line.text + [0x0A] || raw == line.text + [0x0D, 0x0A], "seed \(seed): \(line)")
                    #expect(line.text.count <= max, "seed \(seed): \(line)")
                }
                #expect(line.check == referenceCheck(input[..<Int(line.end)]), "seed \(seed): \(line)")
                previousEnd = line.end
            }
            #expect(difference(covered, Array(input[..<Int(previousEnd)])) == nil, "seed \(seed)")
            // What is held is exactly what follows the last emitted end.
            #expect(Int64(splitter.heldCount) == Int64(input.count) - previousEnd, "seed \(seed)")
            var flushed: [Line] = []
            splitter.flush { flushed.append(Line($0)) }
            if previousEnd < Int64(input.count) {
                #expect(flushed == [Line(text: input[Int(previousEnd)...], start: previousEnd, end: Int64(input.count), continues: false, check: referenceCheck(input))], "seed \(seed)")
            } else {
                #expect(flushed.isEmpty, "seed \(seed)")
            }
        }
    }

    @Test("a splitter started mid-stream at a line start, with the preceding bytes as history, agrees with one started at 0")
    func startMidStream() {
        for seed in UInt64(0)..<300 {
            var rng = SplitMix64(seed: 0x5EED + seed)
            let max = rng.int(4...40)
            let input = randomLogBytes(count: rng.int(1...800), using: &rng)
            let full = splitLines(input, maxLineBytes: max, flush: true)
            let lineStarts = [0] + full.filter { !$0.continues }.map { Int($0.end) }
            let start = lineStarts[rng.int(0...(lineStarts.count - 1))]
            let expected = full.filter { $0.start >= Int64(start) }
            let rest = Array(input[start...])
            for history in [Array(input[..<start]), Array(input[..<start].suffix(PositionCheck.windowSize))] {
                var splitter = LineSplitter(maxLineBytes: max, offset: Int64(start), history: history)
                #expect(splitter.emittedOffset == Int64(start))
                let lines = splitLines(&splitter, rest, chunks: randomChunks(count: rest.count, using: &rng), flush: true)
                #expect(difference(lines, expected) == nil, "seed \(seed) start \(start) history \(history.count)")
                #expect(difference(lines, referenceLines(rest, maxLineBytes: max, offset: Int64(start), history: history, flush: true)) == nil, "seed \(seed)")
            }
            // reset(offset:history:) after unrelated bytes behaves like a fresh splitter.
            var splitter = LineSplitter(maxLineBytes: max)
            _ = splitLines(&splitter, [0x41, 0x42, 0x0A, 0x43], chunks: [0..<4], flush: false)
            splitter.reset(offset: Int64(start), history: input[..<start])
            #expect(splitter.heldCount == 0 && splitter.consumedOffset == Int64(start))
            let lines = splitLines(&splitter, rest, chunks: randomChunks(count: rest.count, using: &rng), flush: true)
            #expect(difference(lines, expected) == nil, "seed \(seed) reset to \(start)")
        }
    }

    @Test("very long runs without LF are emitted as pieces as they arrive, not held")
    func longRunBoundedMemory() {
        var splitter = LineSplitter(maxLineBytes: 1000)
        var pieces = 0
        let chunk = [UInt8](repeating: 0x78, count: 4096)
        chunk.withUnsafeBytes { raw in
            for _ in 0..<256 { splitter.consume(raw) { line in pieces += 1; #expect(line.continues && line.text.count == 1000) } }
        }
        #expect(pieces == 256 * 4096 / 1000)
        #expect(splitter.heldCount <= 1000)
        #expect(splitter.consumedOffset == 256 * 4096)
    }
}
