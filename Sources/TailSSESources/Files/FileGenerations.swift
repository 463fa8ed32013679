import TailSSECore

/// A position in a file source's stream: a generation of the file and a byte offset in it.
///
/// A generation is one stretch of one file's life: a new one starts when the file is replaced
/// (rotation), truncated in place, or appears for the first time. Serials are unique in this
/// process only; ids sent to clients name the file by identity instead (``FileEventID``).
public struct FilePosition: Hashable, Sendable {
    public var generation: UInt64
    public var offset: Int64
}

/// What the stream knows of one generation.
struct Generation: Sendable {
    /// The open file, or `nil` for the generation before the file existed.
    var file: OpenFile?
    /// Where the generation ended, once it has (`nil` while it is the active one).
    var sealedEnd: Int64?
    /// The generation that follows, once this one has ended.
    var successor: UInt64?
    /// The marker sent when moving to the successor (`nil`: move silently).
    var transition: StreamEvent.Kind?

    var identity: FileIdentity? { file?.identity }
}

/// The generations of one file source, shared by its follower and its clients' streams.
///
/// Bounded: old generations are forgotten; a client still positioned in one gets a `reset`.
struct GenerationTable: Sendable {
    static let capacity = 32
    private(set) var generations: [UInt64: Generation] = [:]
    private var order: [UInt64] = []
    private(set) var active: UInt64
    /// End of the last line the follower has published in the active generation.
    var committedEnd: Int64 = 0
    private var nextSerial: UInt64

    /// Starts with generation 0: before the file was found.
    init() {
        generations[0] = Generation(file: nil)
        order = [0]
        active = 0
        nextSerial = 1
    }

    subscript(serial: UInt64) -> Generation? { generations[serial] }

    /// Seals the active generation at `end` and makes a new one (for `file`) active.
    mutating func advance(end: Int64, to file: OpenFile, transition: StreamEvent.Kind?) -> UInt64 {
        let serial = insert(Generation(file: file))
        generations[active]?.sealedEnd = end
        generations[active]?.successor = serial
        generations[active]?.transition = transition
        active = serial
        committedEnd = 0
        return serial
    }

    /// Adds a generation found by identity for a resuming client: a rotated file that ended
    /// (for us) at `end` and is followed by the oldest generation this process followed.
    mutating func addDetached(file: OpenFile, end: Int64) -> UInt64 {
        let successor = order.first { generations[$0]?.file != nil } ?? active
        return insert(Generation(file: file, sealedEnd: end, successor: successor, transition: .rotated))
    }

    /// Generations whose file has `identity`, newest first.
    func serials(of identity: FileIdentity) -> [UInt64] {
        order.reversed().filter { generations[$0]?.identity == identity }
    }

    private mutating func insert(_ generation: Generation) -> UInt64 {
        let serial = nextSerial
        nextSerial += 1
        generations[serial] = generation
        order.append(serial)
        while order.count > Self.capacity, let victim = order.first(where: { $0 != active && $0 != serial }) {
            order.removeAll { $0 == victim }
            generations[victim] = nil
        }
        return serial
    }
}
