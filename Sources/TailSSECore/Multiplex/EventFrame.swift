public import NIOCore

/// One event as a framed ``EventEncoder`` writes it: the encoded bytes, the source's own id, and
/// where in the bytes that id was written, so a ``MultiplexEncoder`` can put another id there.
///
/// Layout: flags (1 byte), raw id length (2 bytes, `0xFFFF` for none) and the raw id, the id's
/// start and end in the encoded bytes (4 bytes each, `0xFFFFFFFF` for none), the encoded length
/// (4 bytes) and the encoded bytes. Frames never leave the process.
public struct EventFrame {
    /// The event is a line (or a piece of one), not a marker.
    public var isLine: Bool
    /// The event is a piece of a long line that the next event of the same source continues.
    public var continues: Bool
    /// The source's own id of the event, as the source wrote it.
    public var id: UnsafeRawBufferPointer?
    /// The encoded event.
    public var bytes: UnsafeRawBufferPointer
    /// Where ``id`` was written in ``bytes`` (JSON-escaped for NDJSON), if it was.
    public var idRange: Range<Int>?

    private static let noID = UInt16.max
    private static let noRange = UInt32.max

    /// Writes one frame; `encode` writes the event's bytes and returns where it wrote the id.
    static func write(
        kind: StreamEvent.Kind, continues: Bool, id: (some EventIDText)?, into buffer: inout ByteBuffer,
        encode: (inout ByteBuffer) -> Range<Int>?
    ) {
        buffer.writeInteger(UInt8((continues ? 1 : 0) | (kind == .line ? 2 : 0)))
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(noID)
        if let id {
            let start = buffer.writerIndex
            id.write(to: &buffer)
            buffer.setInteger(UInt16(clamping: buffer.writerIndex - start), at: lengthIndex)
        }
        let headerIndex = buffer.writerIndex
        buffer.writeMultipleIntegers(noRange, noRange, UInt32(0))
        let start = buffer.writerIndex
        let range = encode(&buffer)
        if let range {
            buffer.setInteger(UInt32(range.lowerBound - start), at: headerIndex)
            buffer.setInteger(UInt32(range.upperBound - start), at: headerIndex + 4)
        }
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: headerIndex + 8)
    }

    /// Calls `body` with every frame in `buffer`, in order. A truncated frame ends the walk.
    public static func forEach(in buffer: ByteBuffer, _ body: (EventFrame) throws -> Void) rethrows {
        try buffer.withUnsafeReadableBytes { raw in
            var index = 0
            let count = raw.count
            func u16(_ at: Int) -> Int { Int(raw[at]) << 8 | Int(raw[at + 1]) }
            func u32(_ at: Int) -> Int { u16(at) << 16 | u16(at + 2) }
            while index + 3 <= count {
                let flags = raw[index]
                let idLength = u16(index + 1)
                index += 3
                var id: UnsafeRawBufferPointer?
                if idLength != Int(noID) {
                    guard index + idLength <= count else { return }
                    id = UnsafeRawBufferPointer(rebasing: raw[index..<(index + idLength)])
                    index += idLength
                }
                guard index + 12 <= count else { return }
                let idStart = u32(index)
                let idEnd = u32(index + 4)
                let length = u32(index + 8)
                index += 12
                guard index + length <= count else { return }
                let bytes = UnsafeRawBufferPointer(rebasing: raw[index..<(index + length)])
                index += length
                let range: Range<Int>? = idStart == Int(noRange) || idEnd > length || idStart > idEnd ? nil : idStart..<idEnd
                try body(EventFrame(isLine: flags & 2 != 0, continues: flags & 1 != 0, id: id, bytes: bytes, idRange: range))
            }
        }
    }
}
