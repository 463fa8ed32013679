/// The generations of one configured file that tailsse followed (or drained as its rotations),
/// newest last: the only files a resume id may lead to once this process no longer holds them open.
///
/// Bounded to ``capacity`` entries. Stored as text, one entry a line —
/// `DEV INODE LENGTH HASH` in lower-case hex after a header line — so it survives restarts;
/// ``init(parsing:)`` takes only well-formed lines and ignores the rest.
public struct FollowedGenerations: Sendable, Equatable {
    public static let capacity = 64
    static let header = "tailsse followed generations v1"

    public struct Entry: Sendable, Equatable {
        public var identity: FileIdentity
        public var fingerprint: GenerationFingerprint

        public init(identity: FileIdentity, fingerprint: GenerationFingerprint) {
            self.identity = identity
            self.fingerprint = fingerprint
        }
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// The entry of `identity`, if that file was followed.
    public func entry(for identity: FileIdentity) -> Entry? {
        entries.last { $0.identity == identity }
    }

    /// Records that the file `identity` with `fingerprint` was followed (newest). Returns `false`
    /// when nothing changed.
    @discardableResult
    public mutating func record(_ identity: FileIdentity, fingerprint: GenerationFingerprint) -> Bool {
        let entry = Entry(identity: identity, fingerprint: fingerprint)
        if entries.last == entry { return false }
        entries.removeAll { $0.identity == identity }
        entries.append(entry)
        if entries.count > Self.capacity { entries.removeFirst(entries.count - Self.capacity) }
        return true
    }

    /// The stored form.
    public var text: String {
        var text = Self.header + "\n"
        for entry in entries {
            text += [entry.identity.device, entry.identity.inode, UInt64(entry.fingerprint.length), entry.fingerprint.hash]
                .map { String($0, radix: 16) }.joined(separator: " ") + "\n"
        }
        return text
    }

    /// Reads the stored form; a missing header gives no entries, malformed lines are skipped.
    public init(parsing text: some StringProtocol) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard let first = lines.popFirst(), first == Self.header else { return }
        for line in lines {
            let fields = line.split(separator: " ")
            guard fields.count == 4,
                  let device = UInt64(fields[0], radix: 16), let inode = UInt64(fields[1], radix: 16),
                  let length = Int(fields[2], radix: 16), let hash = UInt64(fields[3], radix: 16),
                  let fingerprint = GenerationFingerprint(length: length, hash: hash)
            else { continue }
            record(FileIdentity(device: device, inode: inode), fingerprint: fingerprint)
        }
    }
}
