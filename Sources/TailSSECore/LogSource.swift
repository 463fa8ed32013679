import NIOCore

/// Where a new stream starts when it does not resume (and after a `reset`).
public enum TailStart: Sendable, Equatable {
    /// The last `n` lines or entries, then live (`0`: only new ones).
    case last(Int)
    /// From the beginning of what the source holds.
    case all

    /// Parses the `tail` query parameter: a non-negative count or `all`.
    public init?(parameter: String) {
        if parameter == "all" { self = .all; return }
        guard !parameter.isEmpty, parameter.utf8.count <= 18, parameter.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let count = Int(parameter)
        else { return nil }
        self = .last(count)
    }
}

/// What a client asks of a source's stream.
public struct StreamRequest: Sendable {
    public var tail: TailStart
    /// The id of the last event the client received, if it is resuming.
    public var resumeID: String?
    /// For a journal source: which entries the client wants (none: all).
    public var journalFilter: JournalFilter
    /// Only lines this pattern matches are sent (`grep=`).
    public var grep: GrepPattern?

    public init(tail: TailStart = .last(10), resumeID: String? = nil, journalFilter: JournalFilter = JournalFilter(), grep: GrepPattern? = nil) {
        self.tail = tail
        self.resumeID = resumeID
        self.journalFilter = journalFilter
        self.grep = grep
    }
}

/// What one step of an ``EventStream`` produced.
public enum StreamStep: Sendable, Equatable {
    /// Encoded events were appended to the buffer.
    case events
    /// Nothing new; time has passed (the caller may send a heartbeat or check deadlines).
    case idle
    /// The stream is over (the source ended, or the stream was stopped).
    case finished
}

/// One client's stream of a source: it holds the client's position, not a copy of the log.
public protocol EventStream: AnyObject, Sendable {
    /// Waits until there is something to send, then appends the encoded events to `buffer`.
    func next(into buffer: inout ByteBuffer) async throws -> StreamStep
    /// Makes a pending or future ``next(into:)`` return ``StreamStep/finished``; callable from any task.
    func stop()
    /// The id of the stream's current position (what a client that received everything so far
    /// would resume from), or `nil` when the source cannot tell. A multiplexed stream puts it in
    /// its first composite id, so a source that sent nothing yet still resumes exactly.
    func currentID() async -> String?
    /// Hands the stream's live delivery to its source's ``LivePush`` while the stream is at the
    /// live end: writes go straight to `target`, and this returns when the stream continues on its
    /// own (what was pushed counts in `meter`; a quiet connection gets its heartbeat there). `nil`
    /// at once when the stream cannot be pushed now (behind, filtered, or not a single source's
    /// stream).
    func followLive(_ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat) async -> LivePushReturn?
    /// Like ``followLive(_:meter:heartbeat:)`` without a task waiting: `true` when the stream
    /// joined the push path, and then `onLeave` is called once it continues on its own (on the
    /// connection's lane: start a task there, do not block).
    func pushLive(
        _ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat, onLeave: @escaping @Sendable (LivePushReturn) -> Void
    ) -> Bool
    /// Bytes written to the client for this stream outside ``next(into:)`` since the last call (a
    /// multiplexed stream's pushed sources).
    func takeBytesPushed() -> Int
}

/// What a stream that left the push path was sent there (``EventStream/followLive(_:meter:heartbeat:)``).
public struct LivePushReturn: Sendable {
    public var reason: LivePushExit
    public var bytes: Int
    public var lastWrite: ContinuousClock.Instant

    public init<Position>(_ outcome: LivePushOutcome<Position>) {
        self.reason = outcome.reason
        self.bytes = outcome.bytes
        self.lastWrite = outcome.lastWrite
    }
}

extension EventStream {
    public func currentID() async -> String? { nil }
    public func followLive(_ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat) async -> LivePushReturn? { nil }
    public func takeBytesPushed() -> Int { 0 }
    public func pushLive(
        _ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat, onLeave: @escaping @Sendable (LivePushReturn) -> Void
    ) -> Bool { false }
}

extension LogSource {
    public var meter: any SourceMeter { UncountedSource() }
    public var problem: String? { nil }
    public var notice: String? { nil }
    public var detailLists: [(key: String, values: [String])] { [] }
    public var pushedClientCount: Int { 0 }
    public var isHealthy: Bool { isFollowing }
}

/// A configured log source: a file or the journal.
public protocol LogSource: Sendable {
    var name: String { get }
    /// `"file"` or `"journal"`.
    var kind: String { get }
    /// JSON members describing the source for `GET /sources`, beyond `name` and `kind`.
    var details: [(key: String, value: String)] { get }
    /// JSON members whose values are lists of strings (a journal's `hosts`), for `GET /sources`.
    var detailLists: [(key: String, values: [String])] { get }
    /// `true` while the source is being followed (even if its file is missing for now).
    var isFollowing: Bool { get }
    /// Number of clients currently streaming this source.
    var clientCount: Int { get }
    /// Of those, the clients at the live end whose events are pushed to them (``LivePush``).
    var pushedClientCount: Int { get }
    /// Bytes of events the source has appended at its live end since it began (a running total):
    /// how fast the live end moves away from a client that is behind.
    var bytesAppended: UInt64 { get }
    /// Why the source cannot be read right now (its file missing or unreadable, its journal
    /// directory gone), if it cannot; tailsse keeps retrying.
    var problem: String? { get }
    /// Whether `/healthz` counts the source as working: followed, and (for the journal) readable.
    /// A file that is missing for a while (between rotations) is still healthy.
    var isHealthy: Bool { get }
    /// How the source works in a degraded but lossless way right now, if it does (e.g. it is
    /// polled because inotify's watch or instance limit is reached): shown in `GET /sources` and
    /// on the page, but the source stays healthy.
    var notice: String? { get }
    /// Counts what the source and its clients do, for `/metrics`.
    var meter: any SourceMeter { get }
    /// Opens a stream for one client, encoding with `encoder` (which counts the events it
    /// encodes in its ``EventEncoder/tally``, if it has one).
    func openStream(_ request: StreamRequest, encoder: EventEncoder) async -> any EventStream
    /// Wakes every idle client so it can send heartbeats and check deadlines.
    func tick()
}

/// The rule for source names: `[A-Za-z0-9._-]{1,64}`.
public enum SourceName {
    public static func isValid(_ name: some Collection<UInt8>) -> Bool {
        (1...64).contains(name.count) && name.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }
}
