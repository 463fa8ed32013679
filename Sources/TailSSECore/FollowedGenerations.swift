/// The generations of one configured file that tailsse followed (or drained as its rotations),
/// newest last: the only files a resume id may lead to once this process no longer holds them open.
///
/// A file truncated in place (copytruncate) keeps, besides its entry, the fingerprint of what it
/// held before: the copy rotation left beside it is recognised by it.
///
/// Bounded to ``capacity`` entries. Stored as text, one entry a line —
/// `DEV INODE LENGTH HASH` in lower-case hex, and ` t` after an entry of content before a
/// truncation — after a header line, so it survives restarts; ``init(parsing:)`` takes only
/// well-formed lines and ignores the rest.
public struct FollowedGenerations: Sendable, Equatable {
    public static let capacity = 64
    static let header = "tailsse followed generations v1"

    public struct Entry: Sendable, Equatable {
        public var identity: FileIdentity
        public var fingerprint: GenerationFingerprint
        /// `true`: the file no longer holds this content (it was truncated in place).
        public var truncated: Bool

        public init(identity: FileIdentity, fingerprint: GenerationFingerprint, truncated: Bool = false) {
            self.identity = identity
            self.fingerprint = fingerprint
            self.truncated = truncated
        }
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// The entry of `identity` as it was last followed, if it was.
    public func entry(for identity: FileIdentity) -> Entry? {
        entries.last { $0.identity == identity && !$0.truncated }
    }

    /// The fingerprints of what `identity` held before it was truncated in place, newest first.
    public func truncatedContent(of identity: FileIdentity) -> [GenerationFingerprint] {
        entries.reversed().filter { $0.identity == identity && $0.truncated }.map(\.fingerprint)
    }

    /// Records that the file `identity` with `fingerprint` was followed (newest). Returns `false`
    /// when nothing changed.
    @discardableResult
    public mutating func record(_ identity: FileIdentity, fingerprint: GenerationFingerprint) -> Bool {
        let entry = Entry(identity: identity, fingerprint: fingerprint)
        if entries.last == entry { return false }
        entries.removeAll { $0.identity == identity && !$0.truncated }
        append(entry)
        return true
    }

    /// Records that `identity` was truncated in place: its entry becomes the fingerprint of its
    /// content before. Returns `false` when nothing changed (it had no entry).
    @discardableResult
    public mutating func recordTruncation(of identity: FileIdentity) -> Bool {
        guard let index = entries.lastIndex(where: { $0.identity == identity && !$0.truncated }) else { return false }
        var entry = entries.remove(at: index)
        entry.truncated = true
        entries.removeAll { $0 == entry }
        append(entry)
        return true
    }

    private mutating func append(_ entry: Entry) {
        entries.append(entry)
        if entries.count > Self.capacity { entries.removeFirst(entries.count - Self.capacity) }
    }

    /// The stored form.
    public var text: String {
        var text = Self.header + "\n"
        for entry in entries {
            text += [entry.identity.device, entry.identity.inode, UInt64(entry.fingerprint.length), entry.fingerprint.hash]
                .map { String($0, radix: 16) }.joined(separator: " ") + (entry.truncated ? " t\n" : "\n")
        }
        return text
    }

    /// Reads the stored form; a missing header gives no entries, malformed lines are skipped.
    public init(parsing text: some StringProtocol) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard let first = lines.popFirst(), first == Self.header else { return }
        for line in lines {
            let fields = line.split(separator: " ")
            guard fields.count == 4 || (fields.count == 5 && fields[4] == "t"),
                  let device = UInt64(fields[0], radix: 16), let inode = UInt64(fields[1], radix: 16),
                  let length = Int(fields[2], radix: 16), let hash = UInt64(fields[3], radix: 16),
                  let fingerprint = GenerationFingerprint(length: length, hash: hash)
            else { continue }
            let identity = FileIdentity(device: device, inode: inode)
            if fields.count == 5 {
                append(Entry(identity: identity, fingerprint: fingerprint, truncated: true))
            } else {
                record(identity, fingerprint: fingerprint)
            }
        }
    }
}
