import Logging
import NIOCore
import NIOPosix
import Synchronization
import TailSSECore

/// A log file followed like `tail -F`, losing nothing: the ``LogSource`` for `--file NAME=PATH`.
///
/// One follower (on the ``FileWatchService`` thread) reads the file and appends its lines to an
/// ``EventLog`` shared by every client. Each client's ``EventStream`` holds a ``FilePosition`` and
/// reads the file itself, off the cooperative pool, when it is behind what the log still holds.
/// As a ``ManagedSource`` it joins the watcher in ``begin()`` and leaves it in ``end(reason:)``.
public final class FileSource: ManagedSource {
    public let name: String
    public let path: String
    public let maxLineBytes: Int
    public var kind: String { "file" }
    /// `path`, and `watch`: `inotify`, or `polling` while inotify cannot watch the file (see ``notice``).
    public var details: [(key: String, value: String)] { [("path", path), ("watch", notice == nil ? "inotify" : "polling")] }
    public var definition: String { "file \(path) max-line-bytes=\(maxLineBytes) shared-buffer-bytes=\(sharedBytes)" }
    private let watcher: FileWatchService
    private let sharedBytes: Int
    /// `false` for a file of a glob: the path is opened with `O_NOFOLLOW`, so a symlink put in
    /// the directory never makes tailsse read the file it points to.
    let followsSymlinks: Bool
    /// `true` when the file is read from its start when first found, not from its last line.
    let readsFromStart: Bool

    let log: EventLog<FilePosition>
    let table = Mutex(GenerationTable())
    /// The generations of the file followed so far, remembered across restarts.
    let followed: FollowedGenerationStore
    let logger: Logger
    /// Counts the source's reads, streams and clients' sends for `/metrics`.
    public let meter: any SourceMeter
    private let status = Mutex<String?>(nil)
    private let pollingReason = Mutex<String?>(nil)
    private let following = Atomic<Bool>(false)
    private let streams = Atomic<Int>(0)

    /// - Parameters:
    ///   - maxLineBytes: longer lines are split into pieces of at most this many bytes.
    ///   - sharedBytes: bytes of recent events kept in memory for all clients to share.
    ///   - watcher: the inotify thread that follows the file once the source begins.
    ///   - stateDirectory: where to remember the generations followed (``defaultStateDirectory``);
    ///     `nil`: in memory only.
    ///   - meter: counts lines read, resumes, resets and catch-up reads.
    ///   - followsSymlinks: `false`: a symlink at `path` is never followed (the files of a glob).
    ///   - readsFromStart: `true`: the first file found is read from its start (a file of a glob
    ///     that appeared while tailsse runs), not from its last line.
    public init(
        name: String, path: String, maxLineBytes: Int = 64 << 10, sharedBytes: Int = 4 << 20,
        watcher: FileWatchService, stateDirectory: String? = FileSource.defaultStateDirectory, meter: any SourceMeter = UncountedSource(), logger: Logger,
        followsSymlinks: Bool = true, readsFromStart: Bool = false
    ) {
        self.name = name
        self.followsSymlinks = followsSymlinks
        self.readsFromStart = readsFromStart
        self.meter = meter
        self.path = path
        self.maxLineBytes = maxLineBytes
        self.sharedBytes = sharedBytes
        self.watcher = watcher
        self.log = EventLog(capacityBytes: sharedBytes, start: FilePosition(generation: 0, offset: 0))
        var logger = logger
        logger[metadataKey: "source"] = .string(name)
        self.logger = logger
        self.followed = FollowedGenerationStore(filePath: path, stateDirectory: stateDirectory, logger: logger)
    }

    /// `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/tailsse`, else `$HOME/.local/state/tailsse`.
    public static var defaultStateDirectory: String? { FollowedGenerationStore.defaultDirectory() }

    /// The rotated generations beside the file, under the confinement rules of resume ids.
    var rotations: RotatedGenerations {
        RotatedGenerations(directory: directoryPath, baseName: baseName, followed: followed)
    }

    public var isFollowing: Bool { following.load(ordering: .relaxed) }
    public var clientCount: Int { streams.load(ordering: .relaxed) }
    public var pushedClientCount: Int { log.push.memberCount }
    public var bytesAppended: UInt64 { log.bytesAppended }

    /// Why the file is not being read right now (missing, permission denied), if it is not.
    public var problem: String? { status.withLock { $0 } }

    /// Why the file is polled rather than watched with inotify (a limit is reached), if it is.
    public var notice: String? { pollingReason.withLock { $0 } }

    /// Records that inotify cannot watch the file (it is polled; logged once per change) or can again.
    func report(polling reason: String?) {
        let changed = pollingReason.withLock { current -> Bool in
            defer { current = reason }
            return current != reason
        }
        guard changed else { return }
        if let reason {
            logger.warning("inotify cannot watch the file; polling it", metadata: ["path": .string(path), "reason": .string(reason)])
        } else {
            logger.info("inotify watches the file again", metadata: ["path": .string(path)])
        }
    }

    func setFollowing(_ value: Bool) { following.store(value, ordering: .relaxed) }

    /// Records a problem (logged once per change) or its end.
    func report(problem: String?) {
        let changed = status.withLock { current -> Bool in
            defer { current = problem }
            return current != problem
        }
        guard changed else { return }
        if let problem {
            logger.warning("cannot read the file; retrying", metadata: ["path": .string(path), "problem": .string(problem)])
        } else {
            logger.info("following the file", metadata: ["path": .string(path)])
        }
    }

    public func tick() { log.tick() }

    public func begin() async {
        await watcher.add(self)
    }

    public func end(reason: String?) async {
        await watcher.remove(self)
        log.close(finalEvent: reason.map { endEvent(reason: $0) })
        if let reason { logger.info("source ended", metadata: ["reason": .string(reason)]) }
    }

    public func openStream(_ request: StreamRequest, encoder: EventEncoder) async -> any EventStream {
        streams.add(1, ordering: .relaxed)
        let start = await startPosition(for: request)
        let resumedID = start.reset == nil ? request.resumeID : nil
        return FileEventStream(source: self, encoder: encoder, start: start.position, startID: resumedID, pending: start.reset)
    }

    /// Opens a stream from the start of the oldest file this source holds: for a client that
    /// was already following a glob when this file of it appeared.
    func openStreamFromFirstFile(encoder: EventEncoder) -> any EventStream {
        streams.add(1, ordering: .relaxed)
        let start = table.withLock { FilePosition(generation: $0.oldestFile, offset: 0) }
        return FileEventStream(source: self, encoder: encoder, start: start, pending: nil)
    }

    /// Opens the file at `path` (never through a symlink unless ``followsSymlinks``).
    func openPath() throws(SystemError) -> OpenFile {
        followsSymlinks ? try OpenFile.open(path: path) : try OpenFile.openNoFollow(path: path)
    }

    func streamEnded() { streams.subtract(1, ordering: .relaxed) }

    // MARK: - Start positions

    private func startPosition(for request: StreamRequest) async -> (position: FilePosition, reset: StreamEvent?) {
        if let resumeID = request.resumeID {
            switch await resolve(resumeID) {
            case .success(let position):
                meter.resumed()
                return (position, nil)
            case .failure(let reason):
                meter.reset()
                logger.info("a client's resume id cannot be honoured", metadata: ["id": .string(resumeID), "reason": .string(reason.description)])
                let position = await tailPosition(request.tail)
                return (position, .marker(.reset, id: eventID(at: position), message: reason.description))
            }
        }
        return (await tailPosition(request.tail), nil)
    }

    /// Why a resume id cannot be honoured.
    struct ResumeFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Maps a client's last id to a position: in a generation this process holds, or in a rotated
    /// file beside the followed one that tailsse followed (``RotatedGenerations``) and that still
    /// holds the bytes the id's check names. Any other id opens nothing.
    func resolve(_ text: String) async -> Result<FilePosition, ResumeFailure> {
        let id: FileEventID
        do {
            id = try FileEventID(parsing: text)
        } catch {
            return .failure(ResumeFailure(description: "\(error.description); starting from the tail"))
        }
        var (position, rewritten) = await resolveInTable(id)
        if let position { return .success(position) }
        // Not in a generation this process holds: the follower may not have seen yet a truncation
        // or rotation that happened after this id's line. It looks first, so the id is resolved
        // against what it then holds (a truncated file's copy included), never beside it.
        await watcher.sync(self)
        (position, rewritten) = await resolveInTable(id)
        if let position { return .success(position) }
        if let position = await resumeInCopy(of: id) { return .success(position) }
        if rewritten {
            return .failure(ResumeFailure(description: "the file no longer holds the line this id names (truncated or replaced); starting from the tail"))
        }
        return await resumeInRotated(id)
    }

    /// The position of `id` in a generation this process holds; `rewritten` when one of its file
    /// holds other bytes there.
    private func resolveInTable(_ id: FileEventID) async -> (FilePosition?, rewritten: Bool) {
        var rewritten = false
        // The start of a file names where its first generation here began (the generations after
        // its truncations are named by the end of the one before: ``Generation/endID``).
        let serials = table.withLock { $0.serials(of: id.file) }
        for serial in id.offset == 0 ? serials.reversed() : serials {
            guard let generation = table.withLock({ $0[serial] }) else { continue }
            if generation.isOverwritten {
                // Its bytes are gone from the file: only an id at its very end is known to be right.
                if id.offset == generation.sealedEnd, id.check == generation.endCheck {
                    return (FilePosition(generation: serial, offset: id.offset), false)
                }
                continue
            }
            var file = generation.file
            if file == nil, let released = generation.released {
                let rotations = self.rotations
                file = await runBlocking { rotations.reopen(released) } ?? nil
                if let file { table.withLock { $0.reattach(file, to: serial) } }
            }
            guard let file else { continue }
            let verdict = await runBlocking { () -> Bool in
                let end = try generation.sealedEnd ?? file.size()
                return try id.offset <= end && PositionCheck(of: file.history(before: id.offset)).value == id.check
            }
            if verdict == true { return (FilePosition(generation: serial, offset: id.offset), false) }
            if verdict == false { rewritten = true }
        }
        return (nil, rewritten)
    }

    /// The position of `id` in a rotated file beside the followed one, read before the generations
    /// rotated after it (``RotatedGenerations/openChain(from:)``).
    private func resumeInRotated(_ id: FileEventID) async -> Result<FilePosition, ResumeFailure> {
        let rotations = self.rotations
        let lookup = await runBlocking { () -> ChainLookup in
            var found = rotations.openChain(from: id.file, offset: id.offset, check: id.check)
            // Files are being renamed (a rotation burst): look again once they have settled.
            var looks = 1
            while !found.isComplete, looks < Self.unsettledLooks {
                usleep(Self.unsettledPause)
                found = rotations.openChain(from: id.file, offset: id.offset, check: id.check)
                looks += 1
            }
            guard found.isComplete else { return .unsettled }
            guard let first = found.files.first else { return .none }
            let size = try first.size()
            guard id.offset <= size, try PositionCheck(of: first.history(before: id.offset)).value == id.check else { return .none }
            return .found(try found.files.map { file in
                let size = try file.size()
                return (file, size, PositionCheck(of: try file.history(before: size)).value)
            })
        }
        switch lookup ?? .none {
        case .found(let chain):
            // Rotations may have come since the follower last looked (a burst): it drains them now,
            // so the files of the chain it follows are its generations, where the chain goes on.
            // Added as the chain's, they would be files it skips (lost for live clients).
            await watcher.sync(self)
            let serial = table.withLock { $0.addDetachedChain(chain) }
            logger.debug("resuming in a rotated file", metadata: [
                "identity": .string(id.file.description),
                "files": .string(chain.map { "\($0.file.identity) to \($0.end)" }.joined(separator: ", ")),
            ])
            return .success(FilePosition(generation: serial, offset: id.offset))
        case .unsettled:
            return .failure(ResumeFailure(description: "the rotated files after the one this id names kept being renamed; starting from the tail"))
        case .none:
            return .failure(ResumeFailure(description: "this id names a file that is no longer here (rotated away, deleted, or another source's); starting from the tail"))
        }
    }

    private enum ChainLookup: Sendable {
        /// The id's file and the files rotated after it, oldest first, with their sizes and the
        /// checks of their ends.
        case found([(file: OpenFile, end: Int64, endCheck: UInt32)])
        case none
        case unsettled
    }

    /// How often a resume looks for the rotated files after its id's file while they are being
    /// renamed, and the pause between two looks in microseconds (1,000 × 2 ms: two seconds).
    private static let unsettledLooks = 1000
    private static let unsettledPause: UInt32 = 2000

    /// For an id in the followed file before it was truncated in place (copytruncate): the same
    /// position in the copy the rotation left beside it, which is followed by the file's content
    /// after the truncation.
    private func resumeInCopy(of id: FileEventID) async -> FilePosition? {
        guard let successor = table.withLock({ $0.generationAfterTruncation(of: id.file, offset: id.offset) }) else { return nil }
        let rotations = self.rotations
        // The file may have been truncated in place again since (also while tailsse was down): the
        // copies of what it held in between lie after this one, and are read before `successor`.
        guard let found = await runBlocking({ () -> [(file: OpenFile, end: Int64, endCheck: UInt32)]? in
            guard let copy = rotations.openCopy(of: id.file, offset: id.offset, check: id.check) else { return nil }
            let copies = [copy] + rotations.openLaterCopies(after: copy.identity, of: id.file)
            return try copies.map { copy in
                let size = try copy.size()
                return (copy, size, PositionCheck(of: try copy.history(before: size)).value)
            }
        }), let copies = found else { return nil }
        let serial = table.withLock { $0.addCopies(copies, before: successor) }
        logger.debug("resuming in the copy of a truncated file", metadata: ["identity": .string(id.file.description)])
        return FilePosition(generation: serial, offset: id.offset)
    }

    /// The position `tail` lines before the end of what the follower has published.
    func tailPosition(_ tail: TailStart) async -> FilePosition {
        let (serial, generation, end) = table.withLock { ($0.active, $0[$0.active], $0.committedEnd) }
        guard let file = generation?.file else { return FilePosition(generation: serial, offset: 0) }
        switch tail {
        case .all:
            return FilePosition(generation: serial, offset: 0)
        case .last(let count):
            guard count > 0 else { return FilePosition(generation: serial, offset: end) }
            let offset = await runBlocking { try Self.offset(ofLast: count, linesBefore: end, in: file) }
            return FilePosition(generation: serial, offset: offset ?? end)
        }
    }

    /// Scans back from `end` (a line start) for the start of the `count`-th last line.
    static func offset(ofLast count: Int, linesBefore end: Int64, in file: OpenFile) throws -> Int64 {
        var remaining = count
        var position = end
        var block: [UInt8] = []
        let blockSize = 64 << 10
        // The LF just before `end` ends the last line; it does not start one.
        var skipFirstLF = true
        while position > 0 {
            let start = max(0, position - Int64(blockSize))
            try file.read(at: start, count: Int(position - start), into: &block)
            guard block.count == Int(position - start) else { return position }
            var index = block.count - 1
            while index >= 0 {
                if block[index] == 0x0A {
                    if skipFirstLF, start + Int64(index) == end - 1 {
                        skipFirstLF = false
                    } else {
                        remaining -= 1
                        if remaining == 0 { return start + Int64(index) + 1 }
                    }
                }
                index -= 1
            }
            skipFirstLF = false
            position = start
        }
        return 0
    }

    // MARK: - Ids

    /// The id of a position: its file's identity, the offset and the check of the bytes before it.
    func eventID(at position: FilePosition) -> String? {
        guard let generation = table.withLock({ $0[position.generation] }), let file = generation.file else { return nil }
        let history = (try? file.history(before: position.offset)) ?? []
        // Fewer bytes than the position needs: the file was truncated and the follower has not
        // looked yet (``settledEventID(at:)``); an id without them could never be resumed.
        guard history.count == min(PositionCheck.windowSize, Int(clamping: position.offset)) else { return nil }
        return FileEventID(file: generation.identity ?? file.identity, offset: position.offset, check: PositionCheck(of: history).value).description
    }

    /// ``eventID(at:)``, after letting the follower look at the file when the file no longer holds
    /// the bytes before the position (truncated; the follower then reads it from its copy).
    func settledEventID(at position: FilePosition) async -> String? {
        if let id = await runBlocking({ [self] in eventID(at: position) }) ?? nil { return id }
        await watcher.sync(self)
        return await runBlocking { [self] in eventID(at: position) } ?? nil
    }

    var directoryPath: String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    var baseName: String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// Runs blocking file work on NIO's thread pool, never on the cooperative pool; `nil` on error.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> T? {
    try? await NIOThreadPool.singleton.runIfActive { try body() }
}
