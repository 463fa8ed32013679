// Helpers shared by the suites: a seeded random generator, generators of log-like bytes and of
// chunkings, and independent reference implementations (FNV-1a, UTF-8 repair).

/// SplitMix64: a tiny seeded generator, so every random case can be reproduced from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    mutating func chance(_ numerator: Int, in denominator: Int) -> Bool { int(1...denominator) <= numerator }
}

/// Byte sequences that are not valid UTF-8 (each its own case of "maximal subpart").
let invalidUTF8Samples: [[UInt8]] = [
    [0x80], [0xBF], [0xC0], [0xC1, 0xBF], [0xC2], [0xE2, 0x82], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80],
    [0xF0, 0x9F], [0xF0, 0x9F, 0x98], [0xF0, 0x80, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5], [0xF8, 0x88, 0x80, 0x80, 0x80],
    [0xFE], [0xFF],
]

/// Valid multi-byte characters of every length.
let multiByteSamples: [[UInt8]] = ["é", "ß", "€", "한", "\u{2028}", "\u{FEFF}", "\u{FFFF}", "😀", "𝄞", "\u{10FFFF}"]
    .map { Array($0.utf8) }

/// Random bytes that look like a log under attack: LF, CR, CRLF, NUL, invalid and multi-byte UTF-8,
/// JSON-special characters and long runs without LF.
func randomLogBytes(count: Int, using rng: inout SplitMix64) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(count + 16)
    while out.count < count {
        appendAtom(to: &out, allowLF: true, using: &rng)
    }
    return out
}

private func appendAtom(to out: inout [UInt8], allowLF: Bool, using rng: inout SplitMix64) {
    switch rng.int(0...19) {
    case 0...4:
        for _ in 0..<rng.int(1...8) { out.append(UInt8(rng.int(0x61...0x7A))) }
    case 5, 6:
        out.append(allowLF ? 0x0A : 0x20)
    case 7:
        out.append(0x0D)
    case 8:
        out.append(contentsOf: allowLF ? [0x0D, 0x0A] : [0x0D])
    case 9:
        out.append(0x00)
    case 10:
        out.append(contentsOf: invalidUTF8Samples[rng.int(0...(invalidUTF8Samples.count - 1))])
    case 11, 12:
        out.append(contentsOf: multiByteSamples[rng.int(0...(multiByteSamples.count - 1))])
    case 13:
        var byte = UInt8(truncatingIfNeeded: rng.next())
        if !allowLF, byte == 0x0A { byte = 0x0B }
        out.append(byte)
    case 14:
        // A long run without LF (often longer than the small maxima the tests use); not nested,
        // or runs would spawn runs without end.
        guard allowLF else { out.append(0x78); return }
        let length = rng.chance(1, in: 8) ? rng.int(500...3000) : rng.int(20...200)
        let end = out.count + length
        while out.count < end { appendAtom(to: &out, allowLF: false, using: &rng) }
    case 15:
        // Stray continuation bytes.
        for _ in 0..<rng.int(1...6) { out.append(UInt8(rng.int(0x80...0xBF))) }
    case 16:
        out.append(contentsOf: Array("\"\\/\t\u{7F}\u{1B}".utf8)[rng.int(0...5)...].prefix(rng.int(1...3)))
    default:
        out.append(0x20)
    }
}

/// Random chunk boundaries for `count` bytes: sometimes byte by byte, sometimes small, sometimes large.
func randomChunks(count: Int, using rng: inout SplitMix64) -> [Range<Int>] {
    let maxSize: Int
    switch rng.int(0...4) {
    case 0: maxSize = 1
    case 1: maxSize = 3
    case 2: maxSize = 16
    case 3: maxSize = 256
    default: maxSize = max(1, count)
    }
    var chunks: [Range<Int>] = []
    var start = 0
    while start < count {
        let end = min(count, start + rng.int(1...maxSize))
        chunks.append(start..<end)
        start = end
    }
    return chunks
}

/// 32-bit FNV-1a, written independently of the core: the reference for ``PositionCheck``.
func fnv1a32(_ bytes: some Collection<UInt8>) -> UInt32 {
    var hash: UInt32 = 0x811C_9DC5
    for byte in bytes {
        hash ^= UInt32(byte)
        hash = hash &* 0x0100_0193
    }
    return hash
}

/// The reference check of a position: FNV-1a of the (at most) 16 bytes before it, 0 at offset 0.
func referenceCheck(_ before: some Collection<UInt8>) -> UInt32 {
    before.isEmpty ? 0 : fnv1a32(before.suffix(16))
}

/// What a browser shows for `bytes`: UTF-8 with U+FFFD per maximal invalid subpart.
func repairedUTF8(_ bytes: some Collection<UInt8>) -> [UInt8] {
    Array(String(decoding: bytes, as: UTF8.self).utf8)
}

func isValidUTF8(_ bytes: [UInt8]) -> Bool {
    String(validating: bytes, as: UTF8.self) != nil
}

/// A sendable async sequence of byte chunks, as a network connection would deliver them.
struct ChunkSequence: AsyncSequence, Sendable {
    typealias Element = ArraySlice<UInt8>
    typealias Failure = Never

    let chunks: [ArraySlice<UInt8>]

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: IndexingIterator<[ArraySlice<UInt8>]>
        mutating func next() async -> ArraySlice<UInt8>? { base.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: chunks.makeIterator()) }

    init(_ bytes: [UInt8], chunks ranges: [Range<Int>]) {
        chunks = ranges.map { bytes[$0] }
    }
}

/// `nil` when equal, else a short account of the first difference: for big values, comparing
/// inside `#expect` would make a failure print megabytes.
func difference<T: Equatable>(_ actual: [T], _ expected: [T]) -> String? {
    if actual == expected { return nil }
    let index = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(actual.count, expected.count)
    let got = index < actual.count ? "\(actual[index])" : "nothing"
    let wanted = index < expected.count ? "\(expected[index])" : "nothing"
    return "counts \(actual.count) vs \(expected.count); first difference at \(index): got \(got.prefix(300)), expected \(wanted.prefix(300))"
}
