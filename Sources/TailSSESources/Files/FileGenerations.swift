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
    /// The identity the generation's ids name when its bytes are read from another file than its
    /// own: the copy a copytruncate rotation left of the file before truncating it (same bytes at
    /// the same offsets). `nil`: `file`'s own.
    var named: FileIdentity?
    /// The identity of the file once its descriptor was let go (``GenerationTable/openSealedFiles``),
    /// so a client still reading the generation can open it again.
    var released: FileIdentity?
    /// Where the generation ended, once it has (`nil` while it is the active one).
    var sealedEnd: Int64?
    /// The generation that follows, once this one has ended.
    var successor: UInt64?
    /// The marker sent when moving to the successor (`nil`: move silently).
    var transition: StreamEvent.Kind?
    /// The ``PositionCheck`` of the bytes before `sealedEnd`, once sealed: the id of the `rotated` or
    /// `truncated` marker that follows names that point (``endID``), and for a generation whose
    /// bytes are gone (``isOverwritten``) an id at its end still resumes exactly.
    var endCheck: UInt32?
    /// `true` when the file was truncated in place after this generation and no copy of it was
    /// found: its bytes are gone.
    var isOverwritten = false

    var identity: FileIdentity? { named ?? file?.identity ?? released }

    /// The id of the generation's end, when its check is known: the id of the `rotated` or
    /// `truncated` marker that follows it. (The start of the next file cannot name that point: a
    /// file's start names where its first content began, which after a copytruncate lies in the
    /// copy, and after a truncation the same file's start names the generation before.)
    var endID: FileEventID? {
        guard let sealedEnd, let endCheck, let identity else { return nil }
        return FileEventID(file: identity, offset: sealedEnd, check: endCheck)
    }
}

/// The generations of one file source, shared by its follower and its clients' streams.
///
/// Bounded: old generations are forgotten; a client still positioned in one gets a `reset`.
struct GenerationTable: Sendable {
    static let capacity = 32
    /// Sealed generations that keep their file open for clients still reading them; older ones
    /// let go, so the space of deleted rotated files is freed.
    static let openSealedFiles = 4
    private(set) var generations: [UInt64: Generation] = [:]
    private var order: [UInt64] = []
    private(set) var active: UInt64
    /// End of the last line the follower has published in the active generation.
    var committedEnd: Int64 = 0
    /// The ``PositionCheck`` of the bytes before `committedEnd`: a client reading the active file
    /// itself verifies the file still holds them (it may have been truncated since).
    var committedCheck: UInt32 = 0
    private var nextSerial: UInt64

    /// Starts with generation 0: before the file was found.
    init() {
        generations[0] = Generation(file: nil)
        order = [0]
        active = 0
        nextSerial = 1
    }

    subscript(serial: UInt64) -> Generation? { generations[serial] }

    /// The oldest generation held that is a file (the active one when none is older).
    var oldestFile: UInt64 { order.first { generations[$0]?.identity != nil } ?? active }

    /// Seals the active generation at `end` and makes a new one (for `file`) active.
    /// `endCheck` is given for a truncation in place, and `overwritten` when no copy of what it
    /// held was found (see ``Generation/endCheck``).
    mutating func advance(end: Int64, endCheck: UInt32? = nil, overwritten: Bool = false, to file: OpenFile, transition: StreamEvent.Kind?) -> UInt64 {
        let serial = insert(Generation(file: file))
        generations[active]?.sealedEnd = end
        generations[active]?.endCheck = endCheck
        generations[active]?.isOverwritten = overwritten
        generations[active]?.successor = serial
        generations[active]?.transition = transition
        active = serial
        committedEnd = 0
        committedCheck = 0
        closeOldSealedFiles()
        return serial
    }

    /// Adds the rotated files a resuming client must read, oldest first, each ending (for us) at
    /// the given size, up to the first that is a generation here already: the chain goes on there
    /// (the files after it are, or will be, the follower's own generations after it). With none
    /// here, the newest is followed by the generation this process followed first. Returns the
    /// first file's generation.
    mutating func addDetachedChain(_ files: [(file: OpenFile, end: Int64, endCheck: UInt32)]) -> UInt64 {
        // The oldest generation of a file here (also one whose descriptor was let go: a client
        // opens it again), never one after it.
        var successor = order.first { generations[$0]?.identity != nil } ?? active
        var unknown: [(file: OpenFile, end: Int64, endCheck: UInt32)] = []
        for (file, end, endCheck) in files {
            // A copytruncate copy read as a generation of the followed file (its ids name that
            // file) is the same content: the chain goes on there, it is not read twice.
            if let copy = order.last(where: {
                generations[$0]?.named != nil && (generations[$0]?.file?.identity ?? generations[$0]?.released) == file.identity
            }) {
                successor = copy
                break
            }
            if let known = serials(of: file.identity).last {
                if generations[known]?.file == nil, generations[known]?.named == nil {
                    generations[known]?.file = file
                    generations[known]?.released = nil
                }
                successor = known
                break
            }
            unknown.append((file, end, endCheck))
        }
        for (file, end, endCheck) in unknown.reversed() {
            successor = insert(Generation(file: file, sealedEnd: end, successor: successor, transition: .rotated, endCheck: endCheck))
        }
        return successor
    }

    /// Gives generation `serial`, whose descriptor was let go, its file again (opened anew).
    mutating func reattach(_ file: OpenFile, to serial: UInt64) {
        guard generations[serial]?.file == nil, generations[serial]?.released == file.identity else { return }
        generations[serial]?.file = file
        generations[serial]?.released = nil
    }

    /// Reads the active generation from `copy` from now on: the copy a copytruncate rotation left
    /// of its file before truncating it in place. Its ids go on naming the file.
    mutating func readActive(from copy: OpenFile) {
        guard let own = generations[active]?.identity else { return }
        generations[active]?.named = own
        generations[active]?.file = copy
    }

    /// Adds the copy a copytruncate rotation left of a generation of the followed file before it
    /// was truncated: read to `end`, then `successor` follows after a `truncated` marker.
    /// Every client resuming there shares one such generation (many of them would push the
    /// generations clients are reading out of the table).
    mutating func addCopy(_ file: OpenFile, end: Int64, endCheck: UInt32, before successor: UInt64) -> UInt64 {
        if let known = serials(of: file.identity).first(where: { generations[$0]?.successor == successor && generations[$0]?.named == nil }) {
            return known
        }
        return insert(Generation(file: file, sealedEnd: end, successor: successor, transition: .truncated, endCheck: endCheck))
    }

    /// Adds the copies a copytruncate rotation left of the followed file before each of its
    /// truncations in place, oldest first, each read to its end and followed by the next after a
    /// `truncated` marker, the newest by `successor`. A copy a generation here already reads (the
    /// follower read the rest of the file from it) is that generation. Returns the first copy's.
    mutating func addCopies(_ files: [(file: OpenFile, end: Int64, endCheck: UInt32)], before successor: UInt64) -> UInt64 {
        var next = successor
        for (file, end, endCheck) in files.reversed() {
            if let read = order.last(where: {
                generations[$0]?.named != nil && (generations[$0]?.file?.identity ?? generations[$0]?.released) == file.identity
            }) {
                next = read
                continue
            }
            next = addCopy(file, end: end, endCheck: endCheck, before: next)
        }
        return next
    }

    /// Where a client goes after the copy of content `identity` held before a truncation in place,
    /// content this table does not hold: after the oldest generation whose bytes are gone (truncated
    /// with no copy found) that reaches `offset`, else the oldest generation of `identity` here (a
    /// generation read from its copy holds its ids itself, so they never get here).
    func generationAfterTruncation(of identity: FileIdentity, offset: Int64) -> UInt64? {
        let serials = serials(of: identity)
        if let truncated = serials.last(where: { generations[$0]?.isOverwritten == true && (generations[$0]?.sealedEnd ?? 0) >= offset }) {
            return generations[truncated]?.successor
        }
        return serials.last
    }

    /// Generations whose file has `identity`, newest first.
    func serials(of identity: FileIdentity) -> [UInt64] {
        order.reversed().filter { generations[$0]?.identity == identity }
    }

    private mutating func closeOldSealedFiles() {
        var open = 0
        for serial in order.reversed() where generations[serial]?.sealedEnd != nil && generations[serial]?.file != nil {
            open += 1
            if open > Self.openSealedFiles, generations[serial]?.file?.identity != generations[active]?.file?.identity {
                let released = generations[serial]?.file?.identity
                generations[serial]?.released = released
                generations[serial]?.file = nil
            }
        }
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
