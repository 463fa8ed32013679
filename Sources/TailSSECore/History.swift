public import NIOCore

/// Where a history request starts: `start`, `end`, or the position a line's id names.
public enum HistoryAnchor: Sendable, Equatable {
    /// Before the first line of the oldest generation still beside the file.
    case start
    /// After the last complete line of the file followed now (its live end).
    case end
    /// After the line whose id this is.
    case id(String)

    /// Parses `start`, `end` or an id.
    public init(parameter: String) {
        switch parameter {
        case "start": self = .start
        case "end": self = .end
        default: self = .id(parameter)
        }
    }
}

/// What `GET /sources/NAME/lines` asks: the lines just before or just after an anchor.
public struct HistoryRequest: Sendable {
    public enum Direction: Sendable, Equatable {
        case before(HistoryAnchor)
        case after(HistoryAnchor)
    }

    public var direction: Direction
    public var limit: Int
    /// Only lines this pattern matches count and are sent.
    public var grep: GrepPattern?
    /// For a journal source: which entries count (none: all).
    public var journalFilter: JournalFilter
    /// For a glob source: the one file asked for, answered with that file's own ids.
    public var file: String?

    /// Most lines one request may ask for.
    public static let maxLimit = 10_000

    public init(direction: Direction, limit: Int = 100, grep: GrepPattern? = nil, journalFilter: JournalFilter = JournalFilter(), file: String? = nil) {
        self.direction = direction
        self.limit = limit
        self.grep = grep
        self.journalFilter = journalFilter
        self.file = file
    }
}

/// The answer: the lines (encoded, oldest first) and whether the source's history ends there.
public struct HistoryAnswer: Sendable {
    public var body: ByteBuffer
    public var count: Int
    /// `true` when no line lies further in the request's direction (now).
    public var reachedEdge: Bool
    /// For a `before` answer: the id of the position just before its first line (a stream resumed
    /// from it gets exactly these lines next); `nil` when the answer starts at the oldest line.
    public var startID: String?

    public init(body: ByteBuffer, count: Int, reachedEdge: Bool, startID: String? = nil) {
        self.body = body
        self.count = count
        self.reachedEdge = reachedEdge
        self.startID = startID
    }
}

/// Why a history request cannot be answered.
public struct HistoryProblem: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The request itself is malformed (an id that is not one), not just unanswerable now.
    public var isMalformed: Bool

    public init(description: String, isMalformed: Bool = false) {
        self.description = description
        self.isMalformed = isMalformed
    }
}

/// A source that can answer history requests by position.
public protocol HistoricalSource: LogSource {
    /// The lines just before or after the request's anchor, encoded with `encoder`, oldest first.
    func history(_ request: HistoryRequest, encoder: EventEncoder) async -> Result<HistoryAnswer, HistoryProblem>
}
