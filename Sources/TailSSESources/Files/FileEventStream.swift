import Logging
import NIOCore
import Synchronization
import TailSSECore

/// One client's stream of a ``FileSource``.
///
/// It serves from the source's shared ``EventLog`` while the log holds its position, and reads the
/// file at its own position (on NIO's thread pool) when it is behind, so a slow client costs no
/// server memory and is never dropped.
final class FileEventStream: EventStream {
    private let source: FileSource
    private let encoder: EventEncoder
    private let cursor: SharedLogCursor<FilePosition>

    /// Bytes read from the file per catch-up step by a client that keeps up (``ReadPace``); enough
    /// for the longest line.
    private var readSize: Int { max(ReadPace.largeBytes, 2 * source.maxLineBytes + 2) }

    /// Where the stream started, and the id the client resumed with there (if it did).
    private let start: (position: FilePosition, id: String?)

    /// A chunk read and encoded from `from` while the one before it was being written.
    private struct ReadAhead {
        var from: FilePosition
        var limit: Int64
        var sealed: Bool
        var task: Task<Chunk?, Never>
    }

    /// Lines read and encoded from a generation: the bytes, the offset reached, how many events,
    /// and whether the read filled its buffer (more may follow at once).
    private typealias Chunk = (output: ByteBuffer, reached: Int64, lines: Int, full: Bool)

    private let readAhead = Mutex<ReadAhead?>(nil)
    /// Whether the client keeps up: large steps, and its next chunk read while this one is written;
    /// else small steps, one at a time.
    private let pace = Mutex(ReadPace())

    /// - Parameter startID: the id the client resumed with, which names `start`.
    init(source: FileSource, encoder: EventEncoder, start: FilePosition, startID: String? = nil, pending: StreamEvent?) {
        self.source = source
        self.encoder = encoder
        self.start = (start, startID)
        self.cursor = SharedLogCursor(log: source.log, start: start, pending: pending.map { [$0] } ?? [])
    }

    deinit {
        readAhead.withLock { $0?.task.cancel() }
        source.streamEnded()
    }

    func stop() { cursor.stop() }

    func followLive(_ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat) async -> LivePushReturn? {
        guard encoder.isPushable else { return nil }
        return await cursor.followLive(target, encoder: encoder, meter: meter, heartbeat: heartbeat).map(LivePushReturn.init)
    }

    func pushLive(
        _ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat, onLeave: @escaping @Sendable (LivePushReturn) -> Void
    ) -> Bool {
        guard encoder.isPushable else { return false }
        return cursor.pushLive(target, encoder: encoder, meter: meter, heartbeat: heartbeat) { onLeave(LivePushReturn($0)) }
    }

    /// The id of the stream's position. At its start that is the id it resumed from (the id of a
    /// position in a file whose descriptor was let go, for one, cannot be computed without it).
    func currentID() async -> String? {
        let position = cursor.position
        if position == start.position, let id = start.id { return id }
        return await source.settledEventID(at: position)
    }

    func next(into buffer: inout ByteBuffer) async throws -> StreamStep {
        let keepsUp = pace.withLock { $0.keepsUp() }
        defer { pace.withLock { $0.handedOut() } }
        while true {
            switch await cursor.next(encoder: encoder, into: &buffer, maxBytes: ReadPace.bytes(keepingUp: keepsUp)) {
            case .done(let step):
                return step
            case .behind(let position, let observed):
                switch await catchUp(from: position, keepsUp: keepsUp, into: &buffer) {
                case .progressed:
                    if buffer.readableBytes > 0 { return .events }
                case .waitForFollower:
                    if let step = await cursor.wait(after: observed) { return step }
                }
            }
        }
    }

    private enum CatchUp {
        case progressed
        case waitForFollower
    }

    /// Moves the position forward by reading the file (or the generation table) directly.
    private func catchUp(from position: FilePosition, keepsUp: Bool, into buffer: inout ByteBuffer) async -> CatchUp {
        let lookup = source.table.withLock { table in
            (table[position.generation], table.active, table.committedEnd, table.committedCheck)
        }
        guard let generation = lookup.0 else {
            let target = await source.tailPosition(.last(0))
            let id = await runBlocking { [source] in source.eventID(at: target) } ?? nil
            move(to: target, emitting: .marker(.reset, id: id, message: "this client fell behind data that is no longer kept; continuing from the newest lines"), into: &buffer)
            return .progressed
        }
        if let sealedEnd = generation.sealedEnd, let successor = generation.successor {
            if position.offset >= sealedEnd {
                moveToStart(of: successor, after: generation, marker: generation.transition.map { ($0, FileFollower.message(for: $0)) }, into: &buffer)
                return .progressed
            }
            if generation.file == nil {
                // Its descriptor was let go (only a few sealed generations keep theirs): open the
                // rotated file again where it lies, under the rules of resume ids.
                if let released = generation.released,
                   let file = await runBlocking({ [source] in source.rotations.reopen(released) }) ?? nil {
                    source.table.withLock { $0.reattach(file, to: position.generation) }
                    return .progressed
                }
                if Task.isCancelled { return .waitForFollower }
                moveToStart(of: successor, after: generation, marker: (.reset, "the rest of a rotated file is no longer kept open; continuing with the file that replaced it"), into: &buffer)
                return .progressed
            }
            if generation.isOverwritten {
                moveToStart(of: successor, after: generation, marker: (.reset, "the file was truncated before these lines were sent; continuing after the truncation"), into: &buffer)
                return .progressed
            }
            return await read(generation: generation, from: position, limit: sealedEnd, sealed: true, keepsUp: keepsUp, into: &buffer)
        }
        guard position.generation == lookup.1, position.offset < lookup.2 else { return .waitForFollower }
        return await read(generation: generation, from: position, limit: lookup.2, sealed: false, verify: lookup.3, keepsUp: keepsUp, into: &buffer)
    }

    private static func emit(
        _ line: SplitLine, identity: FileIdentity, limit: Int64, encoder: EventEncoder,
        into output: inout ByteBuffer, reached: inout Int64, lines: inout Int
    ) {
        guard line.end <= limit else { return }
        if encoder.encodeLine(line.text, id: FileEventID(file: identity, offset: line.end, check: line.check), continues: line.continues, into: &output) {
            lines += 1
        }
        reached = line.end
    }

    /// Moves to the start of generation `successor`, which follows `generation`, sending `marker`
    /// (if any). A `rotated` or `truncated` marker, or any after a truncation, is named by where
    /// `generation` ends (``Generation/endID``), else by the start of `successor`'s file.
    private func moveToStart(
        of successor: UInt64, after generation: Generation, marker: (kind: StreamEvent.Kind, message: String)?, into buffer: inout ByteBuffer
    ) {
        let identity = source.table.withLock { $0[successor]?.identity }
        let byEnd = marker?.kind != .reset || generation.transition == .truncated || (identity != nil && identity == generation.identity)
        let id = (byEnd ? generation.endID : nil) ?? identity.map(FileEventID.start(of:))
        let event = marker.map { StreamEvent.marker($0.kind, id: id?.description, message: $0.message) }
        move(to: FilePosition(generation: successor, offset: 0), emitting: event, into: &buffer)
    }

    private func move(to target: FilePosition, emitting event: StreamEvent?, into buffer: inout ByteBuffer) {
        if let event {
            encoder.encode(event, into: &buffer)
            encoder.count(events: encoder.writes(event.kind) ? 1 : 0)
            if event.kind == .reset {
                source.meter.reset()
                source.logger.info("a client skips lines", metadata: ["reason": .string(String(decoding: event.text, as: UTF8.self))])
            }
        }
        cursor.move(to: target)
    }

    /// Reads lines from `position` up to `limit` (a line boundary of the follower, or a sealed end,
    /// where a final partial line is flushed).
    /// `verify`: for the active generation, the check of the bytes before `limit`; when the file no
    /// longer holds them (truncated before the follower looked), nothing read is sent: the follower
    /// seals the generation first (reading its rest from the copy, if one is beside it).
    /// A client that keeps up reads large chunks and gets its next one read while this one is
    /// written (``ReadAhead``); one that does not reads small ones (larger only when a line does
    /// not fit).
    private func read(
        generation: Generation, from position: FilePosition, limit: Int64, sealed: Bool, verify: UInt32? = nil, keepsUp: Bool, into buffer: inout ByteBuffer
    ) async -> CatchUp {
        guard let file = generation.file else { return .waitForFollower }
        let maxLineBytes = source.maxLineBytes
        let encoder = self.encoder
        let readSize = self.readSize
        let identity = generation.identity ?? file.identity
        source.meter.caughtUp()
        let read = { @Sendable (from: FilePosition, large: Bool) -> Chunk? in
            await runBlocking {
                let chunk = { (size: Int) in
                    try Self.readChunk(
                        file, identity: identity, from: from.offset, limit: limit, sealed: sealed, verify: verify,
                        readSize: size, maxLineBytes: maxLineBytes, encoder: encoder
                    )
                }
                if large { return try chunk(readSize) }
                guard let small = try chunk(ReadPace.smallBytes) else { return nil }
                // No line ended within the small read: the next one is longer than it.
                return small.full && small.reached == from.offset ? try chunk(readSize) : small
            } ?? nil
        }
        let ahead = readAhead.withLock { held -> ReadAhead? in
            defer { held = nil }
            return held
        }
        let outcome: Chunk?
        if let ahead, ahead.from == position, ahead.sealed == sealed, ahead.limit <= limit {
            outcome = await ahead.task.value
        } else {
            ahead?.task.cancel()
            outcome = await read(position, keepsUp)
        }
        if keepsUp, let outcome, outcome.full, outcome.reached > position.offset, outcome.reached < limit, !Task.isCancelled {
            let next = FilePosition(generation: position.generation, offset: outcome.reached)
            readAhead.withLock { $0 = ReadAhead(from: next, limit: limit, sealed: sealed, task: Task { await read(next, true) }) }
        }
        guard let (output, reached, lines, _) = outcome, reached > position.offset else {
            // A client gone (its task cancelled) reads nothing more; it skips nothing.
            guard sealed, let successor = generation.successor, !Task.isCancelled else { return .waitForFollower }
            moveToStart(of: successor, after: generation, marker: (.reset, "the rest of the replaced file could not be read; continuing with the new file"), into: &buffer)
            return .progressed
        }
        encoder.count(events: lines)
        if buffer.readableBytes == 0 {
            buffer = output
        } else {
            var output = output
            buffer.writeBuffer(&output)
        }
        cursor.move(to: FilePosition(generation: position.generation, offset: reached))
        return .progressed
    }

    /// Reads from `offset` (at most `readSize` bytes, up to `limit` when `sealed`) and encodes the
    /// lines that end at or before `limit`; `nil` when `verify` shows the file no longer holds what
    /// the follower committed (nothing is sent then).
    private static func readChunk(
        _ file: OpenFile, identity: FileIdentity, from offset: Int64, limit: Int64, sealed: Bool, verify: UInt32?,
        readSize: Int, maxLineBytes: Int, encoder: EventEncoder
    ) throws -> Chunk? {
        let history = try file.history(before: offset)
        var bytes: [UInt8] = []
        let wanted = sealed ? min(Int64(readSize), limit - offset) : Int64(readSize)
        try file.read(at: offset, count: Int(wanted), into: &bytes)
        var splitter = LineSplitter(maxLineBytes: maxLineBytes, offset: offset, history: history)
        var output = ByteBufferAllocator().buffer(capacity: bytes.count + bytes.count / 2 + 256)
        var reached = offset
        var lines = 0
        bytes.withUnsafeBytes { raw in
            splitter.consume(raw) { Self.emit($0, identity: identity, limit: limit, encoder: encoder, into: &output, reached: &reached, lines: &lines) }
        }
        if sealed, offset + Int64(bytes.count) >= limit {
            splitter.flush { Self.emit($0, identity: identity, limit: limit, encoder: encoder, into: &output, reached: &reached, lines: &lines) }
        }
        // Verified after the read: a file truncated since held other bytes when it was read.
        if let verify, limit > 0, try PositionCheck(of: file.history(before: limit)).value != verify {
            return (output, offset, 0, false)
        }
        return (output, reached, lines, bytes.count == Int(wanted) && wanted > 0)
    }

}
