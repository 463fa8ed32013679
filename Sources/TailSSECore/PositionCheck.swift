/// A short fingerprint of the bytes just before a position in a file.
///
/// Stored in file event ids so that resuming verifies the file still holds the same bytes there:
/// a reused inode, or a file truncated and rewritten past the old offset, is noticed, not trusted.
public struct PositionCheck: Sendable, Equatable {
    /// How many bytes before the position are fingerprinted.
    public static let windowSize = 16
    // The window as a 16-byte shift register: `high` holds the older 8 bytes.
    private var high: UInt64 = 0
    private var low: UInt64 = 0
    private var count = 0

    public init() {}

    /// Creates the check of `bytes`, the stream bytes just before the position.
    public init(of bytes: some Collection<UInt8>) { feed(bytes) }

    /// Appends stream bytes; only the last ``windowSize`` count.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        let n = bytes.count
        guard n > 0 else { return }
        let tail = n > Self.windowSize ? bytes.suffix(Self.windowSize) : bytes[...]
        for byte in tail {
            high = (high << 8) | (low >> 56)
            low = (low << 8) | UInt64(byte)
        }
        count = min(Self.windowSize, count + min(n, Self.windowSize))
    }

    /// Appends stream bytes from raw memory; only the last ``windowSize`` count.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        let from = max(0, n - Self.windowSize)
        for i in from..<n {
            high = (high << 8) | (low >> 56)
            low = (low << 8) | UInt64(bytes[i])
        }
        count = min(Self.windowSize, count + (n - from))
    }

    /// 32-bit FNV-1a of the window, oldest byte first; 0 for an empty window (position 0).
    public var value: UInt32 {
        if count == 0 { return 0 }
        var hash: UInt32 = 0x811c_9dc5
        for i in stride(from: count - 1, through: 0, by: -1) {
            let byte = i >= 8 ? UInt8(truncatingIfNeeded: high >> UInt64((i - 8) * 8)) : UInt8(truncatingIfNeeded: low >> UInt64(i * 8))
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }
}
