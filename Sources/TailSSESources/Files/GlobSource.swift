import Logging
import NIOCore
import Synchronization
import TailSSECore

/// Several files as one source: the ``LogSource`` for `--file NAME=/dir/PATTERN` (e.g.
/// `app=/var/log/app/*.log`).
///
/// Each file of the ``FileGlob`` is followed by a ``FileSource`` of its own (rotations, truncation
/// and resume exactly as for `--file`), never through a symlink. The directory is watched with
/// inotify (``GlobWatch``): a file that appears is followed at once, and every client already
/// streaming gets it from its first line. A file missing for ``forgetMissingAfter`` seconds is no
/// longer followed (its descriptor is let go, so the space of a deleted file is freed).
///
/// A stream multiplexes the files' streams: each event carries `"file": NAME` (plain text:
/// `[NAME] ` before the line) and a ``CompositeEventID`` naming every file's position
/// (`m1,a.log=f1.…,b.log=f1.…`). Resuming, a file the id names continues from its part, and a
/// file it does not name (it appeared since) is sent from its start; `tail` applies to each file.
public final class GlobSource: ManagedSource {
    public let name: String
    public let glob: FileGlob
    public var kind: String { "file" }
    public var details: [(key: String, value: String)] {
        let polled = state.withLock { $0.members.contains { $0.source.notice != nil } }
        return [("path", glob.description), ("watch", polled ? "polling" : "inotify")]
    }

    /// `files`: the files followed now.
    public var detailLists: [(key: String, values: [String])] { [("files", state.withLock { $0.members.map(\.name) })] }
    public var definition: String { "glob \(glob) max-line-bytes=\(maxLineBytes) shared-buffer-bytes=\(sharedBytes)" }
    public let meter: any SourceMeter

    /// Seconds a file of the glob may be missing before it is no longer followed.
    public static let forgetMissingAfter = 60.0

    private let maxLineBytes: Int
    private let sharedBytes: Int
    private let watcher: FileWatchService
    private let stateDirectory: String?
    private let logger: Logger
    private let state = Mutex(State())
    private let running = Mutex<(watch: GlobWatch, task: Task<Void, Never>)?>(nil)

    private struct Member {
        var name: String
        var source: FileSource
        var missingSince: Double?
    }

    private struct State {
        var members: [Member] = []
        var streams: [ObjectIdentifier: WeakGlobStream] = [:]
        var problem: String?
        var unfollowed = 0
        var unfit: [String] = []
        var following = false
        var ended = false

        /// The clients' streams, still weak: a stream made strong inside the lock could end there,
        /// and its `deinit` takes the lock again (``GlobSource/streamEnded(_:)``).
        var streamReferences: [WeakGlobStream] { Array(streams.values) }
    }

    /// - Parameters:
    ///   - maxLineBytes: longer lines are split into pieces of at most this many bytes.
    ///   - sharedBytes: bytes of recent events kept in memory for all clients, per file.
    ///   - stateDirectory: where the files' generations are remembered (``FileSource``).
    public init(
        name: String, glob: FileGlob, maxLineBytes: Int = 64 << 10, sharedBytes: Int = 4 << 20, watcher: FileWatchService,
        stateDirectory: String? = FileSource.defaultStateDirectory, meter: any SourceMeter = UncountedSource(), logger: Logger
    ) {
        self.name = name
        self.glob = glob
        self.maxLineBytes = maxLineBytes
        self.sharedBytes = sharedBytes
        self.watcher = watcher
        self.stateDirectory = stateDirectory
        self.meter = meter
        var logger = logger
        logger[metadataKey: "source"] = .string(name)
        self.logger = logger
    }

    public var isFollowing: Bool { state.withLock { $0.following } }
    public var clientCount: Int { state.withLock(\.streamReferences).count { $0.stream != nil } }
    public var bytesAppended: UInt64 { state.withLock { $0.members.reduce(0) { $0 + $1.source.bytesAppended } } }
    /// Why the directory cannot be listed, or why files of the glob cannot be read, if so.
    public var problem: String? {
        let (own, members) = state.withLock { ($0.problem, $0.members) }
        let problems = (own.map { [$0] } ?? []) + members.compactMap { member in member.source.problem.map { "\(member.name): \($0)" } }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    public var notice: String? {
        let (unfollowed, unfit, polled) = state.withLock { state in
            (state.unfollowed, state.unfit, state.members.compactMap { member in member.source.notice.map { "\(member.name): \($0)" } })
        }
        var notes = polled
        if !unfit.isEmpty {
            let shown = unfit.prefix(3).map { "'\($0.prefix(80))'" }.joined(separator: ", ")
            notes.append("\(unfit.count) matching names are not followed (\(shown)\(unfit.count > 3 ? ", ..." : "")): a file's name must be 1-64 characters of A-Z a-z 0-9 . _ -")
        }
        if unfollowed > 0 { notes.append("\(unfollowed) more matching files are not followed: a glob follows at most \(FileGlob.maxFiles)") }
        return notes.isEmpty ? nil : notes.joined(separator: "; ")
    }

    public func tick() {
        let (members, streams) = state.withLock { ($0.members.map(\.source), $0.streamReferences) }
        for member in members { member.tick() }
        for stream in streams { stream.stream?.tick() }
    }

    /// Starts watching the directory and follows the files there now; returns once they are.
    public func begin() async throws {
        let watch = try GlobWatch(glob: glob, logger: logger)
        let ready = Completion()
        let task = Task { [self] in
            var initial = true
            for await listing in watch.listings {
                await apply(listing, initial: initial)
                if initial { ready.finish() }
                initial = false
            }
            ready.finish()
        }
        running.withLock { $0 = (watch, task) }
        state.withLock { $0.following = true }
        await ready.wait()
    }

    public func end(reason: String?) async {
        let streams = state.withLock { state in
            state.ended = true
            state.following = false
            return state.streamReferences
        }
        if let (watch, task) = running.withLock({ $0 }) {
            await watch.stop()
            await task.value
        }
        let members = state.withLock { state in
            defer { state.members = [] }
            return state.members.map(\.source)
        }
        for member in members { await member.end(reason: nil) }
        for stream in streams { stream.stream?.end(reason: reason) }
        if let reason { logger.info("source ended", metadata: ["reason": .string(reason)]) }
    }

    public func openStream(_ request: StreamRequest, encoder: EventEncoder) async -> any EventStream {
        var resume: CompositeEventID?
        var pending: StreamEvent?
        if let text = request.resumeID {
            do {
                resume = try CompositeEventID(parsing: text)
            } catch {
                meter.reset()
                logger.info("a client's resume id cannot be honoured", metadata: ["id": .string(String(text.prefix(256))), "reason": .string(error.description)])
                pending = .marker(.reset, id: nil, message: "the id is not an id of a glob source (m1,FILE=ID,...); starting from the tail")
            }
        }
        let stream = GlobEventStream(source: self, encoder: encoder, resume: resume, tail: request.tail, pending: pending)
        let (members, ended) = state.withLock { state in
            state.streams[ObjectIdentifier(stream)] = WeakGlobStream(stream: stream)
            return (state.members, state.ended)
        }
        if ended { stream.end(reason: nil) }
        for member in members { await stream.add(member.source, named: member.name, appeared: false) }
        return stream
    }

    /// The files followed now, in the order they were found, with their sources.
    var files: [(name: String, source: FileSource)] { state.withLock { $0.members.map { ($0.name, $0.source) } } }

    /// The source of the file named `name`, if the glob follows it now.
    func member(named name: String) -> FileSource? { state.withLock { $0.members.first { $0.name == name }?.source } }

    func streamEnded(_ stream: ObjectIdentifier) {
        _ = state.withLock { $0.streams.removeValue(forKey: stream) }
    }

    /// Follows the files that appeared (up to ``FileGlob/maxFiles``), forgets those missing for
    /// too long.
    private func apply(_ listing: GlobWatch.Listing, initial: Bool) async {
        let now = monotonicSeconds()
        let (known, forgotten) = state.withLock { state -> (Set<String>, [Member]) in
            if state.problem != listing.problem {
                if let problem = listing.problem {
                    logger.warning("cannot list the glob's directory; retrying", metadata: ["glob": .string(glob.description), "problem": .string(problem)])
                }
                state.problem = listing.problem
            }
            let present = Set(listing.files)
            var forgotten: [Member] = []
            state.members = state.members.compactMap { member in
                var member = member
                if present.contains(member.name) {
                    member.missingSince = nil
                    return member
                }
                let since = member.missingSince ?? now
                guard now - since < Self.forgetMissingAfter else {
                    forgotten.append(member)
                    return nil
                }
                member.missingSince = since
                return member
            }
            state.unfollowed = max(0, listing.files.count - FileGlob.maxFiles)
            state.unfit = listing.unfit
            return (Set(state.members.map(\.name)), forgotten)
        }
        for member in forgotten {
            logger.info("a file of the glob is gone; no longer following it", metadata: ["file": .string(member.name)])
            await member.source.end(reason: nil)
        }
        for file in listing.files where !known.contains(file) {
            guard state.withLock({ !$0.ended && $0.members.count < FileGlob.maxFiles }) else { break }
            let member = FileSource(
                name: "\(name)/\(file)", path: glob.path(of: file), maxLineBytes: maxLineBytes, sharedBytes: sharedBytes, watcher: watcher,
                stateDirectory: stateDirectory, meter: meter, logger: logger, followsSymlinks: false, readsFromStart: !initial
            )
            await member.begin()
            let streams: [WeakGlobStream]? = state.withLock { state in
                guard !state.ended else { return nil }
                state.members.append(Member(name: file, source: member))
                return state.streamReferences
            }
            guard let streams else {
                await member.end(reason: nil)
                break
            }
            if !initial { logger.info("following a new file of the glob", metadata: ["file": .string(file)]) }
            for stream in streams { await stream.stream?.add(member, named: file, appeared: true) }
        }
    }
}

private struct WeakGlobStream {
    weak var stream: GlobEventStream?
}

/// One client's stream of a ``GlobSource``: the files' streams multiplexed, files joining as they
/// appear.
final class GlobEventStream: EventStream {
    private let source: GlobSource
    private let encoder: EventEncoder
    private let files: MultiplexedEventStream
    private let resume: CompositeEventID?
    private let tail: TailStart
    /// Events to send first, and the reason of the `end` event once the source has ended.
    private let state: Mutex<(pending: [StreamEvent], endReason: String?)>

    init(source: GlobSource, encoder: EventEncoder, resume: CompositeEventID?, tail: TailStart, pending: StreamEvent?) {
        self.source = source
        self.encoder = encoder
        self.resume = resume
        self.tail = tail
        self.state = Mutex((pending.map { [$0] } ?? [], nil))
        let multiplex = MultiplexEncoder(format: encoder.format, sources: [], startIDs: [], framed: encoder.isFramed)
        self.files = MultiplexedEventStream(streams: [], encoder: multiplex, open: true)
    }

    deinit { source.streamEnded(ObjectIdentifier(self)) }

    /// Adds a file's stream: from the part of the resume id naming it; else, for a file that
    /// `appeared` while this stream runs, that the resume id does not name, or with `tail=all`,
    /// from the start of the oldest of its files tailsse holds (a rotation since it appeared
    /// included); else from `tail`.
    func add(_ member: FileSource, named file: String, appeared: Bool) async {
        let fileEncoder = encoder.framed(file: file)
        let stream: any EventStream
        if let part = resume?[file] {
            stream = await member.openStream(StreamRequest(tail: tail, resumeID: part), encoder: fileEncoder)
        } else if appeared || resume != nil || tail == .all {
            stream = member.openStreamFromFirstFile(encoder: fileEncoder)
        } else {
            stream = await member.openStream(StreamRequest(tail: tail), encoder: fileEncoder)
        }
        files.add(stream, source: file, startID: await stream.currentID())
    }

    func tick() { files.tick() }

    /// Ends the stream: with an `end` event carrying `reason`, or none (shutdown).
    func end(reason: String?) {
        state.withLock { $0.endReason = reason }
        files.stop()
    }

    func stop() { files.stop() }

    func currentID() async -> String? { await files.currentID() }

    func next(into buffer: inout ByteBuffer) async throws -> StreamStep {
        let pending = state.withLock { state in
            defer { state.pending = [] }
            return state.pending
        }
        if !pending.isEmpty {
            for event in pending { encoder.encode(event, into: &buffer) }
            return .events
        }
        let step = try await files.next(into: &buffer)
        if step == .finished, let reason = state.withLock({ state in
            defer { state.endReason = nil }
            return state.endReason
        }) {
            encoder.encode(source.endEvent(reason: reason), into: &buffer)
            return .events
        }
        return step
    }
}
