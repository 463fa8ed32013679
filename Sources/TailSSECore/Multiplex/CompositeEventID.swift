public import NIOCore

/// The resume id of a multiplexed stream: every source's own id at once.
///
/// Printed as `m1` followed by `,NAME=ID` for each source whose position is known, in the order
/// the sources were requested: `m1,app=f1.fe00.2a.1c.9e3779b9,journal=s=…;i=…`. Inside an `ID`,
/// `%`, `,`, `"`, `\` and any byte outside printable ASCII are written as `%XX`, so the whole id
/// is printable ASCII with no CR, LF or NUL, and needs no escaping inside a JSON string.
/// A source's own id is at most 256 bytes, so a composite id is at most about 330 bytes a source.
public struct CompositeEventID: Equatable, Sendable, CustomStringConvertible {
    public struct Part: Equatable, Sendable {
        public var source: String
        public var id: String

        public init(source: String, id: String) {
            self.source = source
            self.id = id
        }
    }

    /// At most this many bytes are parsed: 16 sources with the longest ids.
    public static let maxLength = 16 * (64 + 2 + 3 * 256) + 2

    public var parts: [Part]

    public init(parts: [Part]) { self.parts = parts }

    /// The id of `source`, if the composite id holds one.
    public subscript(source: String) -> String? { parts.first { $0.source == source }?.id }

    public var description: String {
        var buffer = ByteBuffer()
        buffer.writeStaticString("m1")
        for part in parts {
            buffer.writeInteger(UInt8(ascii: ","))
            buffer.writeString(part.source)
            buffer.writeInteger(UInt8(ascii: "="))
            Self.writeEscaped(part.id.utf8, to: &buffer)
        }
        return String(buffer: buffer)
    }

    /// Why a string is not a composite id.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case tooLong
        case notComposite
        case malformed

        public var description: String {
            switch self {
            case .tooLong: "the id is longer than \(CompositeEventID.maxLength) bytes"
            case .notComposite: "the id is not an id of a multiplexed stream (/events)"
            case .malformed: "the id is malformed"
            }
        }
    }

    /// Parses a composite id; any deviation from the printed form is an error, never a guess.
    public init(parsing text: some StringProtocol) throws(ParseError) {
        let bytes = Array(text.utf8)
        guard bytes.count <= Self.maxLength else { throw .tooLong }
        guard bytes.starts(with: [UInt8(ascii: "m"), UInt8(ascii: "1")]),
              bytes.count == 2 || bytes[2] == UInt8(ascii: ",")
        else { throw .notComposite }
        var parts: [Part] = []
        for item in bytes.dropFirst(3).split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) where bytes.count > 2 {
            guard let equals = item.firstIndex(of: UInt8(ascii: "=")) else { throw .malformed }
            let name = item[item.startIndex..<equals]
            guard SourceName.isValid(name), let id = Self.unescape(item[(equals + 1)...]), !id.isEmpty else { throw .malformed }
            let source = String(decoding: name, as: UTF8.self)
            guard !parts.contains(where: { $0.source == source }) else { throw .malformed }
            parts.append(Part(source: source, id: String(decoding: id, as: UTF8.self)))
        }
        self.parts = parts
    }

    /// `true` for a byte written as it is inside a part.
    @inline(__always)
    static func isPlain(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") && byte != UInt8(ascii: ",")
            && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
    }

    /// Appends a source's id as it appears inside a composite id.
    public static func writeEscaped(_ id: some Collection<UInt8>, to buffer: inout ByteBuffer) {
        var bytes: [UInt8] = []
        appendEscaped(id, to: &bytes)
        buffer.writeBytes(bytes)
    }

    /// Appends a source's id as it appears inside a composite id.
    public static func appendEscaped(_ id: some Collection<UInt8>, to bytes: inout [UInt8]) {
        if id.allSatisfy(isPlain) {
            bytes.append(contentsOf: id)
            return
        }
        for byte in id {
            if isPlain(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hexDigit(byte >> 4))
                bytes.append(hexDigit(byte & 0xF))
            }
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10
    }

    private static func unescape(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else { return nil }
                out.append(high << 4 | low)
                index += 3
            } else {
                guard isPlain(byte) || byte == UInt8(ascii: "=") else { return nil }
                out.append(byte)
                index += 1
            }
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
