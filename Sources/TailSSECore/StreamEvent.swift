/// One event of a source's stream: a line, or a marker for something that is not a line.
public struct StreamEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// A line (or piece of a long line) of the log.
        case line
        /// The file was replaced by a new one (rename rotation, or deletion and re-creation).
        case rotated
        /// The file was truncated in place (copytruncate); the stream continues from offset 0.
        case truncated
        /// A resume id could not be honoured; the stream continues from the `tail` position.
        case reset
        /// The source was removed from the configuration (on reload): the last event of its streams.
        case end
    }

    public var kind: Kind
    /// The resume id of the position just after this event; `nil` keeps the client's last id.
    public var id: String?
    /// The line's bytes (not yet validated as UTF-8), or a marker's human-readable message.
    public var text: [UInt8]
    /// For a piece of a long line: `true` when the next event continues the same line.
    public var continues: Bool
    /// For a journal entry: the entry (its `MESSAGE` is the text; ``text`` stays empty).
    public var entry: JournalEntry?

    public init(kind: Kind, id: String?, text: [UInt8], continues: Bool = false, entry: JournalEntry? = nil) {
        self.kind = kind
        self.id = id
        self.text = text
        self.continues = continues
        self.entry = entry
    }

    /// A journal entry as an event; its id is the entry's cursor.
    public static func journal(_ entry: JournalEntry) -> StreamEvent {
        StreamEvent(kind: .line, id: entry.cursor, text: [], entry: entry)
    }

    public static func line(_ text: some Collection<UInt8>, id: String?, continues: Bool = false) -> StreamEvent {
        StreamEvent(kind: .line, id: id, text: Array(text), continues: continues)
    }

    public static func marker(_ kind: Kind, id: String?, message: String) -> StreamEvent {
        StreamEvent(kind: kind, id: id, text: Array(message.utf8))
    }

    /// Approximate memory held by the event, for bounding buffers.
    public var footprint: Int { text.count + (id?.utf8.count ?? 0) + 48 + (entry?.footprint ?? 0) }
}
