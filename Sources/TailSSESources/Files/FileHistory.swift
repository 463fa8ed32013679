#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Synchronization
import TailSSECore

/// One line of a file's history: its bytes and its id (the same id a live stream gives it).
public struct HistoryLine: Sendable {
    public var text: [UInt8]
    public var id: FileEventID
    public var continues: Bool
}

/// The past of a file source, read by position: `GET /sources/NAME/lines`.
///
/// The file's generations, oldest first, are its rotated generations lying beside it — regular,
/// single-linked files on its device under a rotation name (``RotationSuffix``), never a symlink —
/// then the file followed now up to its last complete line. Lines are cut as a live stream cuts
/// them (same offsets, same ids), read in blocks from the anchor backwards or forwards: the cost
/// of `before=end&limit=100` does not depend on the file's size.
struct FileHistory {
    /// One generation: an open file and where its lines end.
    struct Generation {
        var file: OpenFile
        var end: Int64
        /// `false` for the file followed now: a partial last line is not a line yet.
        var isSealed: Bool
    }

    let generations: [Generation]
    let maxLineBytes: Int
    /// Bytes read back per step when looking for earlier lines.
    static let blockSize = 256 << 10

    /// The generations of `source` now, oldest first.
    static func generations(of source: FileSource) -> [Generation] {
        let (active, committed) = source.table.withLock { table in (table[table.active]?.file, table.committedEnd) }
        let device = active?.identity.device ?? fileDevice(source.path)
        var found: [Generation] = []
        if let device {
            for sibling in settledRotatedSiblings(directory: source.directoryPath, baseName: source.baseName, device: device) ?? [] where sibling.links == 1 {
                guard sibling.identity != active?.identity,
                      let file = try? OpenFile.openGeneration(path: sibling.path, identity: sibling.identity),
                      let size = try? file.size()
                else { continue }
                found.append(Generation(file: file, end: size, isSealed: true))
            }
        }
        if let active { found.append(Generation(file: active, end: committed, isSealed: false)) }
        return found
    }

    /// The generation and offset an anchor names; `nil` for an id that names no line held now.
    func locate(_ anchor: HistoryAnchor) throws(HistoryProblem) -> (index: Int, offset: Int64) {
        switch anchor {
        case .start:
            return (0, 0)
        case .end:
            guard let last = generations.indices.last else { throw HistoryProblem(description: "the file has no lines yet") }
            return (last, generations[last].end)
        case .id(let text):
            let id: FileEventID
            do {
                id = try FileEventID(parsing: text)
            } catch {
                throw HistoryProblem(description: "\(error.description)", isMalformed: true)
            }
            guard let index = generations.firstIndex(where: { $0.file.identity == id.file }) else {
                throw HistoryProblem(description: "the id names no file of this source that is still beside it")
            }
            let generation = generations[index]
            guard id.offset <= generation.end,
                  let before = try? generation.file.history(before: id.offset),
                  id.offset == 0 || PositionCheck(of: before).value == id.check
            else {
                throw HistoryProblem(description: "the file no longer holds the line this id names")
            }
            return (index, id.offset)
        }
    }

    /// Up to `limit` lines ending at or before `anchor`, oldest first (`grep`: only matching ones).
    /// `reachedStart`: nothing older is left.
    func lines(before anchor: HistoryAnchor, limit: Int, grep: GrepPattern?) throws(HistoryProblem) -> (lines: [HistoryLine], reachedStart: Bool) {
        guard !generations.isEmpty else { return ([], true) }
        var (index, offset) = try locate(anchor)
        var collected: [[HistoryLine]] = []
        var count = 0
        var exhausted = false
        while count < limit {
            let generation = generations[index]
            var upper = offset
            while count < limit, upper > 0 {
                let lower = try lineStart(in: generation.file, before: upper)
                let piece = try cut(generation, from: lower, to: upper, grep: grep)
                collected.append(piece)
                count += piece.count
                upper = lower
            }
            if upper == 0, index == 0 { exhausted = true }
            if count >= limit || index == 0 { break }
            index -= 1
            offset = generations[index].end
        }
        var lines = Array(collected.reversed().joined())
        if lines.count > limit { lines.removeFirst(lines.count - limit) }
        return (lines, exhausted && count <= limit)
    }

    /// Up to `limit` lines after `anchor`, oldest first (`grep`: only matching ones).
    /// `reachedEnd`: nothing newer is there yet.
    func lines(after anchor: HistoryAnchor, limit: Int, grep: GrepPattern?) throws(HistoryProblem) -> (lines: [HistoryLine], reachedEnd: Bool) {
        guard !generations.isEmpty else { return ([], true) }
        let walk = try HistoryWalk(history: self, from: anchor, through: .end, grep: grep)
        var lines: [HistoryLine] = []
        while lines.count < limit, let batch = try walk.next(limit: limit - lines.count) { lines += batch }
        return (lines, walk.isAtEnd)
    }

    /// The start of the block of lines just before `upper` (a line boundary): about
    /// ``blockSize`` bytes back, moved forward to a line start; further back when one line is longer.
    private func lineStart(in file: OpenFile, before upper: Int64) throws(HistoryProblem) -> Int64 {
        var probe = upper
        var block: [UInt8] = []
        while probe > 0 {
            let lower = max(0, probe - Int64(Self.blockSize))
            do {
                try file.read(at: lower, count: Int(probe - lower), into: &block)
            } catch {
                throw HistoryProblem(description: "cannot read the file: \(error)")
            }
            guard block.count == Int(probe - lower) else { throw HistoryProblem(description: "the file is shorter than expected") }
            if lower == 0 { return 0 }
            // The LF just before `upper` ends the previous line: a start is after an earlier LF.
            let searchEnd = probe == upper ? block.count - 1 : block.count
            if searchEnd > 0, let newline = block[..<searchEnd].firstIndex(of: 0x0A) {
                return lower + Int64(newline) + 1
            }
            probe = lower
        }
        return 0
    }

    /// The lines between two line starts `lower` and `upper` of a generation, as a live stream
    /// cuts them (a sealed generation's partial last line included).
    private func cut(_ generation: Generation, from lower: Int64, to upper: Int64, grep: GrepPattern?) throws(HistoryProblem) -> [HistoryLine] {
        var reached = lower
        return try cut(generation, from: lower, to: upper, grep: grep, limit: Int.max, reached: &reached)
    }

    /// At most `limit` lines; `reached`: the end of the last line cut.
    /// `flushAt`: where a sealed generation's lines end for this cut (its end by default): a
    /// partial last line there is cut too.
    func cut(
        _ generation: Generation, from lower: Int64, to upper: Int64, grep: GrepPattern?, limit: Int, reached: inout Int64,
        flushAt: Int64? = nil
    ) throws(HistoryProblem) -> [HistoryLine] {
        let file = generation.file
        let identity = file.identity
        var lines: [HistoryLine] = []
        do {
            var splitter = LineSplitter(maxLineBytes: maxLineBytes, offset: lower, history: try file.history(before: lower))
            var position = lower
            var block: [UInt8] = []
            var done = false
            var lastEnd = reached
            defer { reached = lastEnd }
            let take: (SplitLine) -> Void = { line in
                guard !done, line.end <= upper else { return }
                lastEnd = line.end
                if let grep, !grep.matches(line.text) { return }
                lines.append(HistoryLine(text: Array(line.text), id: FileEventID(file: identity, offset: line.end, check: line.check), continues: line.continues))
                if lines.count >= limit { done = true }
            }
            // A piece of a long line ending at `upper` is cut only once the splitter sees a byte
            // past it: read up to a piece further (the file holds it; nothing past `upper` is sent).
            let readEnd = upper + Int64(maxLineBytes) + 1
            while position < readEnd, !done {
                try file.read(at: position, count: Int(min(Int64(Self.blockSize), readEnd - position)), into: &block)
                guard !block.isEmpty else { break }
                position += Int64(block.count)
                block.withUnsafeBytes { splitter.consume($0, take) }
            }
            if !done, generation.isSealed, upper == generation.end, (flushAt ?? generation.end) == generation.end { splitter.flush(take) }
        } catch {
            throw HistoryProblem(description: "cannot read the file: \(error)")
        }
        return lines
    }
}

/// A walk through a file source's history from one anchor to another, a block at a time: what
/// `after=` reads, and a download of the whole history (`after=start&before=end`), never all of it
/// in memory.
final class HistoryWalk: @unchecked Sendable {
    private let history: FileHistory
    private var index: Int
    /// The end of the last line (or piece of one) walked past: a piece boundary cuts the rest of
    /// a long line as a read from its start does (each cut follows from the one before).
    private var offset: Int64
    private let stop: (index: Int, offset: Int64)
    private let grep: GrepPattern?

    init(history: FileHistory, from start: HistoryAnchor, through end: HistoryAnchor, grep: GrepPattern?) throws(HistoryProblem) {
        self.history = history
        (index, offset) = try history.locate(start)
        stop = try history.locate(end)
        self.grep = grep
    }

    /// Nothing is left before the end anchor.
    var isAtEnd: Bool { !((index, offset) < stop) }

    /// The next lines (up to `limit`, at most a block's worth), or `nil` once the end anchor is reached.
    func next(limit: Int = .max) throws(HistoryProblem) -> [HistoryLine]? {
        let step = Int64(max(FileHistory.blockSize, 2 * history.maxLineBytes + 2))
        while (index, offset) < stop {
            let generation = history.generations[index]
            let end = index == stop.index ? stop.offset : generation.end
            let upper = min(end, offset + step)
            var reached = offset
            let lines = offset < end
                ? try history.cut(generation, from: offset, to: upper, grep: grep, limit: limit, reached: &reached, flushAt: end)
                : []
            guard reached > offset else {
                index += 1
                offset = 0
                continue
            }
            offset = reached
            if !lines.isEmpty { return lines }
        }
        return nil
    }
}

extension FileSource {
    /// Streams the lines between two anchors, encoded, a block at a time; `nil` with a problem
    /// when an anchor names nothing held.
    public func historyDownload(from start: HistoryAnchor, through end: HistoryAnchor, grep: GrepPattern?, encoder: EventEncoder) async -> Result<AsyncThrowingStream<ByteBuffer, any Error>, HistoryProblem> {
        let walk = await runHistoryRead { [self] () -> Result<HistoryWalk, HistoryProblem> in
            do throws(HistoryProblem) {
                return .success(try HistoryWalk(history: FileHistory(generations: FileHistory.generations(of: self), maxLineBytes: maxLineBytes), from: start, through: end, grep: grep))
            } catch {
                return .failure(error)
            }
        }
        guard let walk else { return .failure(HistoryProblem(description: "the server is shutting down")) }
        switch walk {
        case .failure(let problem):
            return .failure(problem)
        case .success(let walk):
            return .success(AsyncThrowingStream { () -> ByteBuffer? in
                let lines = await runHistoryRead { () -> Result<[HistoryLine]?, HistoryProblem> in
                    do throws(HistoryProblem) { return .success(try walk.next()) } catch { return .failure(error) }
                }
                guard let lines, let batch = try lines.get() else { return nil }
                var body = ByteBufferAllocator().buffer(capacity: batch.reduce(0) { $0 + $1.text.count + 96 })
                for line in batch {
                    _ = line.text.withUnsafeBytes { encoder.encodeLine($0, id: line.id, continues: line.continues, into: &body) }
                }
                return body
            })
        }
    }
}

/// The device of the file at `path` (followed through symlinks, as the configured path is).
private func fileDevice(_ path: String) -> UInt64? {
    guard case .success(let info) = statIdentity(path: path) else { return nil }
    return info.identity.device
}

extension FileSource: HistoricalSource {
    public func history(_ request: HistoryRequest, encoder: EventEncoder) async -> Result<HistoryAnswer, HistoryProblem> {
        let outcome = await runHistoryRead { [self] () -> Result<HistoryAnswer, HistoryProblem> in
            let history = FileHistory(generations: FileHistory.generations(of: self), maxLineBytes: maxLineBytes)
            do throws(HistoryProblem) {
                var (lines, reachedEdge): ([HistoryLine], Bool)
                var startID: String?
                switch request.direction {
                case .before(let anchor):
                    // One line more: its id is where the answer starts.
                    (lines, reachedEdge) = try history.lines(before: anchor, limit: request.limit + 1, grep: request.grep)
                    if lines.count > request.limit {
                        startID = lines.removeFirst().id.description
                        reachedEdge = false
                    }
                case .after(let anchor):
                    (lines, reachedEdge) = try history.lines(after: anchor, limit: request.limit, grep: request.grep)
                }
                var body = ByteBufferAllocator().buffer(capacity: lines.reduce(0) { $0 + $1.text.count + 96 })
                for line in lines {
                    _ = line.text.withUnsafeBytes { encoder.encodeLine($0, id: line.id, continues: line.continues, into: &body) }
                }
                return .success(HistoryAnswer(body: body, count: lines.count, reachedEdge: reachedEdge, startID: startID))
            } catch {
                return .failure(error)
            }
        }
        return outcome ?? .failure(HistoryProblem(description: "the server is shutting down"))
    }
}

/// The thread history requests read on: one, at a lower CPU priority (nice 10) than the event loops
/// and the live streams' reads, so requests that scan much (a rare `grep=` over gigabytes, a
/// pattern at its match limit on every line) queue behind each other and never slow live lines.
private let historyReadPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 1)
    pool.start()
    return pool
}()

/// Runs a history read on ``historyReadPool``'s thread; `nil` on error.
private func runHistoryRead<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> T? {
    try? await historyReadPool.runIfActive {
        // On Linux, PRIO_PROCESS with 0 names the calling thread only.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        return try body()
    }
}
