import NIOCore

/// The identity of a file on disk: device and inode, as `stat` reports them.
public struct FileIdentity: Hashable, Sendable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    public var description: String { "\(String(device, radix: 16)):\(String(inode, radix: 16))" }
}

/// The resume id of a file event: which file, the byte offset just after the event, and a
/// ``PositionCheck`` of the bytes before that offset.
///
/// Printed as `f1.DEV.INODE.OFFSET.CHECK` (lower-case hex). It names the file by identity, not by
/// path, so it survives rotation and restarts of tailsse, and never becomes a path.
public struct FileEventID: Hashable, Sendable, CustomStringConvertible, EventIDText {
    public var file: FileIdentity
    public var offset: Int64
    public var check: UInt32

    public init(file: FileIdentity, offset: Int64, check: UInt32) {
        self.file = file
        self.offset = offset
        self.check = check
    }

    public var description: String {
        var buffer = ByteBuffer()
        write(to: &buffer)
        return String(buffer: buffer)
    }

    /// The id of the start of `file` (offset 0: nothing before it to check).
    public static func start(of file: FileIdentity) -> FileEventID {
        FileEventID(file: file, offset: 0, check: 0)
    }

    /// Writes the id as printed by ``description``, without allocating.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("f1.")
        Self.writeHex(file.device, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        Self.writeHex(file.inode, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        Self.writeHex(UInt64(offset), to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        Self.writeHex(UInt64(check), to: &buffer)
    }

    private static func writeHex(_ value: UInt64, to buffer: inout ByteBuffer) {
        let digits = value == 0 ? 1 : (64 - value.leadingZeroBitCount + 3) / 4
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: digits) { raw in
            var remaining = value
            for index in stride(from: digits - 1, through: 0, by: -1) {
                let nibble = UInt8(truncatingIfNeeded: remaining & 0xF)
                raw[index] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
                remaining >>= 4
            }
            return digits
        }
    }

    /// Why a string is not a valid file event id.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case tooLong
        case notAFileID
        case malformed

        public var description: String {
            switch self {
            case .tooLong: "the id is longer than 256 bytes"
            case .notAFileID: "the id is not a file event id of tailsse"
            case .malformed: "the id is malformed"
            }
        }
    }

    /// Parses an id; any deviation from the printed form is an error, never a guess.
    public init(parsing text: some StringProtocol) throws(ParseError) {
        let bytes = Array(text.utf8)
        guard bytes.count <= 256 else { throw .tooLong }
        let fields = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard fields.first.map({ Array($0) == Array("f1".utf8) }) == true else { throw .notAFileID }
        guard fields.count == 5,
              let device = Self.hex(fields[1], maxDigits: 16),
              let inode = Self.hex(fields[2], maxDigits: 16),
              let offset = Self.hex(fields[3], maxDigits: 16), offset <= UInt64(Int64.max),
              let check = Self.hex(fields[4], maxDigits: 8)
        else { throw .malformed }
        self.init(file: FileIdentity(device: device, inode: inode), offset: Int64(offset), check: UInt32(check))
    }

    private static func hex(_ digits: ArraySlice<UInt8>, maxDigits: Int) -> UInt64? {
        guard !digits.isEmpty, digits.count <= maxDigits else { return nil }
        if digits.count > 1, digits.first == UInt8(ascii: "0") { return nil }
        var value: UInt64 = 0
        for byte in digits {
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(nibble)
        }
        return value
    }
}
