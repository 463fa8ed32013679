public import NIOCore

/// Writes log bytes as the inside of a JSON string: escaped, and valid UTF-8.
///
/// Invalid UTF-8 becomes U+FFFD, one per maximal invalid subpart (as browsers and Swift's
/// `String(decoding:as:)` do); NUL and other control characters become escapes, so no byte of a
/// line can break SSE or NDJSON framing.
public enum JSONText {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
    private static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// Appends the escaped form of `bytes` (without quotes) to `buffer`.
    public static func writeEscaped(_ bytes: UnsafeRawBufferPointer, to buffer: inout ByteBuffer) {
        var runStart = 0
        var i = 0
        let n = bytes.count
        buffer.reserveCapacity(minimumWritableBytes: n + 8)
        while i < n {
            if i + 8 <= n, Self.isPlainWord(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                i += 8
                continue
            }
            let byte = bytes[i]
            if byte >= 0x20 && byte < 0x80 && byte != 0x22 && byte != 0x5C {
                i += 1
                continue
            }
            if runStart < i { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])) }
            if byte < 0x80 {
                writeEscape(byte, to: &buffer)
                i += 1
            } else {
                let length = validSequenceLength(bytes, at: i)
                if length.valid {
                    buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + length.count)]))
                } else {
                    buffer.writeBytes(replacement)
                }
                i += length.count
            }
            runStart = i
        }
        if runStart < n { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<n])) }
    }

    /// Appends the escaped form of `bytes` (without quotes) to `buffer`.
    public static func writeEscaped(_ bytes: [UInt8], to buffer: inout ByteBuffer) {
        bytes.withUnsafeBytes { writeEscaped($0, to: &buffer) }
    }

    /// Appends `bytes` as valid UTF-8, with invalid sequences replaced by U+FFFD and nothing escaped.
    public static func writeRepaired(_ bytes: UnsafeRawBufferPointer, to buffer: inout ByteBuffer) {
        var runStart = 0
        var i = 0
        let n = bytes.count
        while i < n {
            if i + 8 <= n, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & Self.highBits == 0 {
                i += 8
                continue
            }
            if bytes[i] < 0x80 { i += 1; continue }
            let length = validSequenceLength(bytes, at: i)
            if length.valid { i += length.count; continue }
            if runStart < i { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])) }
            buffer.writeBytes(replacement)
            i += length.count
            runStart = i
        }
        if runStart < n { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<n])) }
    }

    /// A complete JSON string literal (with quotes) for `text`.
    public static func quoted(_ text: String) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(ascii: "\""))
        writeEscaped(Array(text.utf8), to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
        return Array(buffer.readableBytesView)
    }

    private static func writeEscape(_ byte: UInt8, to buffer: inout ByteBuffer) {
        switch byte {
        case 0x22: buffer.writeBytes([0x5C, 0x22])
        case 0x5C: buffer.writeBytes([0x5C, 0x5C])
        case 0x0A: buffer.writeBytes([0x5C, UInt8(ascii: "n")])
        case 0x0D: buffer.writeBytes([0x5C, UInt8(ascii: "r")])
        case 0x09: buffer.writeBytes([0x5C, UInt8(ascii: "t")])
        default:
            buffer.writeBytes([0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
        }
    }

    private static let highBits: UInt64 = 0x8080_8080_8080_8080
    private static let ones: UInt64 = 0x0101_0101_0101_0101

    /// Whether none of the 8 bytes of `word` needs escaping or checking: all are printable ASCII
    /// other than `"` and `\` (tests on all 8 at once; exact as a yes/no answer).
    @inline(__always)
    static func isPlainWord(_ word: UInt64) -> Bool {
        let control = (word &- 0x20 &* ones) & ~word & highBits
        let quote = word ^ (0x22 &* ones)
        let backslash = word ^ (0x5C &* ones)
        let quotes = (quote &- ones) & ~quote & highBits
        let backslashes = (backslash &- ones) & ~backslash & highBits
        return (word & highBits) | control | quotes | backslashes == 0
    }

    /// The length of the UTF-8 sequence starting at `i` if valid, else the length of its maximal
    /// invalid subpart (at least 1), which is replaced by one U+FFFD.
    @inline(__always)
    static func validSequenceLength(_ bytes: UnsafeRawBufferPointer, at i: Int) -> (valid: Bool, count: Int) {
        let lead = bytes[i]
        let needed: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: needed = 1
        case 0xE0: needed = 2; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: needed = 2
        case 0xED: needed = 2; high = 0x9F
        case 0xF0: needed = 3; low = 0x90
        case 0xF1...0xF3: needed = 3
        case 0xF4: needed = 3; high = 0x8F
        default: return (false, 1)
        }
        var k = 1
        while k <= needed {
            guard i + k < bytes.count else { return (false, k) }
            let byte = bytes[i + k]
            let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
            guard byte >= lo && byte <= hi else { return (false, k) }
            k += 1
        }
        return (true, needed + 1)
    }
}
