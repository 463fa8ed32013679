/// A fingerprint of the first bytes of one generation of a followed file, taken when tailsse
/// followed it: a later file with the same device and inode but other first bytes (the inode was
/// freed and reused) does not match.
///
/// A generation that was still empty when tailsse last looked has an empty fingerprint, which any
/// file matches; it grows with the file until it covers ``windowSize`` bytes.
public struct GenerationFingerprint: Sendable, Hashable {
    /// How many leading bytes are fingerprinted at most.
    public static let windowSize = 64

    /// How many leading bytes the fingerprint covers (0...``windowSize``).
    public let length: Int
    /// 64-bit FNV-1a of those bytes.
    public let hash: UInt64

    /// The fingerprint of `leading`, the file's first bytes (only the first ``windowSize`` count).
    public init(of leading: some Collection<UInt8>) {
        let bytes = leading.prefix(Self.windowSize)
        length = bytes.count
        hash = Self.fnv1a(bytes)
    }

    /// A fingerprint as stored; `nil` when `length` is out of range.
    public init?(length: Int, hash: UInt64) {
        guard (0...Self.windowSize).contains(length) else { return nil }
        self.length = length
        self.hash = hash
    }

    /// `true` when this fingerprint covers all it can: later growth of the file cannot change it.
    public var isComplete: Bool { length == Self.windowSize }

    /// `true` when `leading` (a file's first bytes, at least ``length`` of them read if it has
    /// them) starts with the bytes this fingerprint was taken of.
    public func matches(_ leading: some Collection<UInt8>) -> Bool {
        let bytes = leading.prefix(length)
        return bytes.count == length && Self.fnv1a(bytes) == hash
    }

    /// 64-bit FNV-1a of `bytes`.
    public static func fnv1a(_ bytes: some Collection<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
