#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import TailSSECore

/// Reads one ``FileSource``'s file as it grows and publishes its lines to the source's log.
///
/// Lives on the ``FileWatchService`` thread; ``sync()`` is idempotent and is called on every
/// inotify event for the file or its directory, after a queue overflow, and once a second, so a
/// missed event delays a line by at most a second and never loses it. When inotify's limits keep
/// it from watching the file, it is called every 250 ms instead (``InotifyShortage``): it needs no
/// event, finding appends, renames and truncations by `stat` of the path and `fstat` of the file.
final class FileFollower {
    let source: FileSource
    private(set) var file: OpenFile?
    private var splitter: LineSplitter
    private var buffer: [UInt8] = []
    /// The last bytes consumed, to notice a file truncated and rewritten past our offset.
    private var window: [UInt8] = []
    /// The followed generation's first (up to ``GenerationFingerprint/windowSize``) bytes as they
    /// were read: its fingerprint is taken of them, never of what the file holds when it is
    /// recorded (a copytruncate may have rewritten it since: the copy would not be recognised).
    /// `nil` when not known (then the file is fingerprinted as it is).
    private var leading: [UInt8]? = []
    /// How many leading bytes of the followed file its recorded fingerprint covers.
    private var fingerprinted = GenerationFingerprint.windowSize
    private static let readSize = 256 << 10

    init(source: FileSource) {
        self.source = source
        self.splitter = LineSplitter(maxLineBytes: source.maxLineBytes)
        self.appearedAfterStart = source.readsFromStart
    }

    /// Brings the published lines up to date with the file, handling rotation and truncation.
    /// Returns `true` when the followed file changed (its inotify watch must move).
    @discardableResult
    func sync() -> Bool {
        var switched = false
        if file == nil {
            switched = openInitial()
        }
        guard let current = file else { return switched }
        // Truncated in place (copytruncate), perhaps rewritten past our offset since: `truncated`,
        // then the file from its start. (Truncated again while read: the next look goes on.)
        var truncations = 0
        while !drain(current), truncations < 4 {
            truncate(current)
            truncations += 1
        }
        switch statIdentity(path: source.path) {
        case .success(let info) where info.identity != current.identity:
            do {
                let replacement = try source.openPath()
                drain(current)
                let walk = drainRotatedGenerations(after: current, replacement: replacement)
                switched = walk.moved || switched
                // Files still being renamed: the generations before the replacement may not all be
                // found yet, so it waits for the next look.
                guard walk.isComplete else { return switched }
                rotate(to: replacement)
                drain(replacement)
                switched = true
                source.report(problem: nil)
            } catch {
                source.report(problem: "a new file replaced it but cannot be opened: \(error)")
            }
        case .success:
            source.report(problem: nil)
        case .failure:
            switched = drainRotatedGenerations(after: current).moved || switched
        }
        return switched
    }

    /// Follows and drains, in order, the generations rotated after `current` that still lie beside
    /// it (several rotations between two looks): each after a `rotated` marker. `moved`: it moved to
    /// another file. Not `isComplete` when files kept being renamed while it looked: more of them
    /// may lie beside, found at the next look. `replacement` (the file now at the path) is left to
    /// the caller.
    private func drainRotatedGenerations(after current: OpenFile, replacement: OpenFile? = nil) -> (moved: Bool, isComplete: Bool) {
        var moved = false
        let found = source.rotations.openGenerations(after: current.identity)
        for generation in found.files {
            // The replacement was rotated too while we looked: it comes first, the rest next time.
            if generation.identity == replacement?.identity { return (moved, true) }
            if source.table.withLock({ !$0.serials(of: generation.identity).isEmpty }) { continue }
            if !moved { drain(current) }
            rotate(to: generation)
            drain(generation)
            moved = true
        }
        return (moved, found.isComplete)
    }

    /// Records the followed file's fingerprint while it is shorter than the fingerprint's window.
    /// `force` (nothing read of it yet, or where it starts at startup): fingerprinted as it is now;
    /// else by what was read of it (``leading``).
    private func recordFingerprint(of current: OpenFile, force: Bool = false) {
        guard force || (fingerprinted < GenerationFingerprint.windowSize && splitter.consumedOffset > Int64(fingerprinted)) else { return }
        fingerprinted = source.followed.record(current, leading: force ? nil : leading) ?? GenerationFingerprint.windowSize
    }

    /// Opens the file the first time it is found. At startup the stream begins at the last complete
    /// line; a file that appears later is read from its start.
    private func openInitial() -> Bool {
        let opened: OpenFile
        do {
            opened = try source.openPath()
        } catch {
            source.report(problem: error.errno == ENOENT ? "the file does not exist (yet)" : error.description)
            appearedAfterStart = true
            return false
        }
        source.report(problem: nil)
        let previous = source.table.withLock { $0.active }
        var start: Int64 = 0
        if !appearedAfterStart {
            start = (try? Self.lastLineStart(in: opened)) ?? 0
        }
        let history = (try? opened.history(before: start)) ?? []
        splitter.reset(offset: start, history: history)
        window = history
        let skipped = Int(min(start, Int64(GenerationFingerprint.windowSize)))
        var first: [UInt8] = []
        leading = (try? opened.read(at: 0, count: skipped, into: &first)) != nil && first.count == skipped ? first : nil
        let serial = source.table.withLock { table in
            let serial = table.advance(end: 0, to: opened, transition: nil)
            table.committedEnd = start
            table.committedCheck = PositionCheck(of: history).value
            return serial
        }
        source.log.append([LogRecord(
            from: FilePosition(generation: previous, offset: 0),
            to: FilePosition(generation: serial, offset: start),
            event: nil
        )])
        file = opened
        recordFingerprint(of: opened, force: true)
        source.logger.debug("following from", metadata: ["file": .stringConvertible(opened.identity), "offset": .stringConvertible(start)])
        return true
    }

    /// Set once a sync found no file: a file that appears later is read from offset 0.
    private var appearedAfterStart: Bool

    /// Reads and publishes what `current` holds past our offset. `false` when it no longer holds the
    /// bytes before our offset as we read them (``window``): it was truncated in place, perhaps
    /// rewritten past our offset since (copytruncate); nothing is read then. Those bytes are read
    /// with the new ones, in the same `pread`, so a truncation at any moment before it (also one
    /// while this thread did not run, between two calls) is seen, never read as if the file grew.
    @discardableResult
    private func drain(_ current: OpenFile) -> Bool {
        guard current === file else { return true }
        while true {
            let offset = splitter.consumedOffset
            let kept = window.count
            do {
                try current.read(at: offset - Int64(kept), count: kept + Self.readSize, into: &buffer)
            } catch {
                source.report(problem: error.description)
                return true
            }
            guard buffer.count >= kept, buffer.prefix(kept).elementsEqual(window) else { return false }
            if buffer.count == kept {
                // Nothing before the offset to compare (never so past the start of a file read
                // from its start): the size tells a truncation.
                if kept == 0, offset > 0, let size = try? current.size(), size < offset { return false }
                return true
            }
            let fresh = buffer[kept...]
            if var first = leading, first.count < GenerationFingerprint.windowSize, Int64(first.count) == offset {
                first.append(contentsOf: fresh.prefix(GenerationFingerprint.windowSize - first.count))
                leading = first
            }
            publish(fresh, identity: current.identity, fingerprinting: current)
            if fresh.count < Self.readSize { return true }
        }
    }

    /// Splits `bytes` into lines and publishes them; `fingerprinting`: the file read, whose
    /// fingerprint is recorded (saved) first, so that a client that got these lines can resume in
    /// them after a restart even when tailsse is killed right after.
    private func publish(_ bytes: ArraySlice<UInt8>, identity: FileIdentity, fingerprinting file: OpenFile? = nil) {
        if bytes.count >= PositionCheck.windowSize {
            window = Array(bytes.suffix(PositionCheck.windowSize))
        } else {
            window = Array((window + bytes).suffix(PositionCheck.windowSize))
        }
        let serial = source.table.withLock { $0.active }
        var records: [LogRecord<FilePosition>] = []
        var check: UInt32 = 0
        bytes.withUnsafeBytes { raw in
            splitter.consume(raw) { line in
                records.append(Self.record(line, serial: serial, identity: identity))
                check = line.check
            }
        }
        if let file { recordFingerprint(of: file) }
        commit(records, check: check)
    }

    private static func record(_ line: SplitLine, serial: UInt64, identity: FileIdentity) -> LogRecord<FilePosition> {
        let id = FileEventID(file: identity, offset: line.end, check: line.check).description
        return LogRecord(
            from: FilePosition(generation: serial, offset: line.start),
            to: FilePosition(generation: serial, offset: line.end),
            event: .line(line.text, id: id, continues: line.continues)
        )
    }

    /// `check`: the ``PositionCheck`` at the last record's end.
    private func commit(_ records: [LogRecord<FilePosition>], check: UInt32) {
        guard let last = records.last else { return }
        // Committed before they are appended (and pushed): a client that was sent a line and asks
        // for the tail next starts after that line.
        source.table.withLock {
            $0.committedEnd = last.to.offset
            $0.committedCheck = check
        }
        source.log.append(records)
        source.meter.read(lines: records.count)
    }

    /// Publishes a held partial line: the generation ends here.
    private func flushHeld(identity: FileIdentity) {
        let serial = source.table.withLock { $0.active }
        var records: [LogRecord<FilePosition>] = []
        var check: UInt32 = 0
        splitter.flush { line in
            records.append(Self.record(line, serial: serial, identity: identity))
            check = line.check
        }
        commit(records, check: check)
    }

    private func truncate(_ current: OpenFile) {
        source.followed.recordTruncation(of: current.identity)
        let copy = readRestFromCopy(of: current)
        flushHeld(identity: current.identity)
        let end = splitter.emittedOffset
        let endCheck = PositionCheck(of: window).value
        // Without a copy the generation's bytes are gone: only an id at its end can resume.
        let (previous, serial) = source.table.withLock { table in
            let previous = table.active
            return (previous, table.advance(end: end, endCheck: endCheck, overwritten: copy == nil, to: current, transition: .truncated))
        }
        splitter.reset(offset: 0)
        window = []
        leading = []
        recordFingerprint(of: current, force: true)
        source.log.append([LogRecord(
            from: FilePosition(generation: previous, offset: end),
            to: FilePosition(generation: serial, offset: 0),
            event: .marker(.truncated, id: FileEventID(file: current.identity, offset: end, check: endCheck).description, message: Self.message(for: .truncated))
        )])
        source.logger.info("file truncated; reading from the start", metadata: [
            "path": .string(source.path), "file": .stringConvertible(current.identity), "end": .stringConvertible(end),
        ])
    }

    /// copytruncate: the copy the rotation left beside `current` before truncating it holds the
    /// generation's bytes at the same offsets, also the lines written after our last read. Reads the
    /// rest of the generation from the copy, and clients still behind in it read it there too.
    /// `nil` when no copy beside the file holds our position (a truncation without a copy, or
    /// nothing read yet to recognise it by): what we had not read is gone.
    private func readRestFromCopy(of current: OpenFile) -> OpenFile? {
        guard splitter.consumedOffset > 0 else { return nil }
        let check = PositionCheck(of: window).value
        guard let copy = source.rotations.openCopy(of: current.identity, offset: splitter.consumedOffset, check: check)
        else { return nil }
        source.table.withLock { $0.readActive(from: copy) }
        while true {
            do {
                try copy.read(at: splitter.consumedOffset, count: Self.readSize, into: &buffer)
            } catch {
                break
            }
            if buffer.isEmpty { break }
            publish(buffer[...], identity: current.identity)
            if buffer.count < Self.readSize { break }
        }
        source.logger.info("file truncated; read the rest of it from its copy", metadata: ["path": .string(source.path)])
        return copy
    }

    private func rotate(to replacement: OpenFile) {
        if let old = file { flushHeld(identity: old.identity) }
        let end = splitter.emittedOffset
        let endCheck = PositionCheck(of: window).value
        let (previous, serial) = source.table.withLock { table in
            let previous = table.active
            return (previous, table.advance(end: end, endCheck: file == nil ? nil : endCheck, to: replacement, transition: .rotated))
        }
        // The marker is named by where the generation it leaves ends (``Generation/endID``).
        let id = file.map { FileEventID(file: $0.identity, offset: end, check: endCheck) } ?? FileEventID.start(of: replacement.identity)
        splitter.reset(offset: 0)
        window = []
        leading = []
        file = replacement
        recordFingerprint(of: replacement, force: true)
        source.log.append([LogRecord(
            from: FilePosition(generation: previous, offset: end),
            to: FilePosition(generation: serial, offset: 0),
            event: .marker(.rotated, id: id.description, message: Self.message(for: .rotated))
        )])
        source.logger.info("file replaced; following the new file", metadata: [
            "path": .string(source.path), "file": .stringConvertible(replacement.identity), "previous-end": .stringConvertible(end),
        ])
    }

    /// The human-readable text of a `rotated` or `truncated` marker.
    static func message(for kind: StreamEvent.Kind) -> String {
        kind == .truncated ? "the file was truncated; reading it from the start" : "the file was replaced; following the new file"
    }

    /// The offset after the last LF (where an unfinished last line starts).
    static func lastLineStart(in file: OpenFile) throws -> Int64 {
        let size = try file.size()
        var position = size
        var block: [UInt8] = []
        while position > 0 {
            let start = max(0, position - 65536)
            try file.read(at: start, count: Int(position - start), into: &block)
            if let index = block.lastIndex(of: 0x0A) { return start + Int64(index) + 1 }
            position = start
        }
        return 0
    }
}
