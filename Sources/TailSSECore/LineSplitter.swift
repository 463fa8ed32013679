#if canImport(Glibc)
import Glibc
#endif

/// One line (or one piece of an over-long line) cut from a byte stream.
///
/// The bytes are only valid inside the closure that receives the line.
public struct SplitLine {
    /// The line's bytes without its LF, and without the CR of a CRLF ending.
    public var text: UnsafeRawBufferPointer
    /// Byte offset of the line's first byte in the stream.
    public var start: Int64
    /// Byte offset just after the line (after its LF, if it has one).
    public var end: Int64
    /// `true` when this is a piece of a line longer than the maximum and another piece follows.
    public var continues: Bool
    /// The ``PositionCheck`` of the stream bytes just before ``end``.
    public var check: UInt32
}

/// Cuts a byte stream into lines at LF, whatever the chunking of the input.
///
/// Partial lines are held until their LF arrives (or ``flush(_:)`` is called when the stream is
/// known to have ended there). A line whose content exceeds ``maxLineBytes`` is cut into pieces of
/// at most that many bytes, each cut moved back to a UTF-8 character boundary where one is near.
/// Cuts depend only on the bytes, never on how they were chunked, so two splitters reading the same
/// stream from the same line start agree on every line's offsets.
public struct LineSplitter: Sendable {
    public let maxLineBytes: Int
    /// Offset just after the last emitted line: where the held partial line starts.
    public private(set) var emittedOffset: Int64
    /// Offset of the next byte to be consumed.
    public var consumedOffset: Int64 { emittedOffset + Int64(held.count) }
    /// Number of bytes held for a line whose LF has not arrived yet.
    public var heldCount: Int { held.count }
    private var held: [UInt8] = []
    private var check: PositionCheck

    /// - Parameters:
    ///   - offset: the stream offset of the first byte that will be consumed (a line start).
    ///   - history: the stream bytes just before `offset` (only the last few are used), so that the
    ///     check of a short first line covers the same bytes as when read from the start.
    public init(maxLineBytes: Int, offset: Int64 = 0, history: some Collection<UInt8> = [UInt8]()) {
        precondition(maxLineBytes >= 4, "maxLineBytes must be at least 4")
        self.maxLineBytes = maxLineBytes
        self.emittedOffset = offset
        self.check = PositionCheck()
        self.check.feed(history)
    }

    /// Consumes `chunk` and calls `body` for every complete line (and every full piece of a long line).
    public mutating func consume(_ chunk: UnsafeRawBufferPointer, _ body: (SplitLine) throws -> Void) rethrows {
        var index = 0
        let count = chunk.count
        while index < count {
            let remaining = UnsafeRawBufferPointer(rebasing: chunk[index...])
            let newline = remaining.baseAddress.flatMap { base in
                memchr(base, 0x0A, remaining.count).map { $0 - UnsafeMutableRawPointer(mutating: base) }
            }
            if held.isEmpty, let newline, newline <= maxLineBytes {
                let withLF = UnsafeRawBufferPointer(rebasing: remaining[...newline])
                try emit(withLF, contentCount: newline, hasLF: true, continues: false, body)
                index += newline + 1
                continue
            }
            let contentCount = newline ?? remaining.count
            var used = 0
            while used < contentCount {
                let n = min((maxLineBytes + 1) - held.count, contentCount - used)
                held.append(contentsOf: UnsafeRawBufferPointer(rebasing: remaining[used..<(used + n)]))
                used += n
                if held.count > maxLineBytes { try cutPiece(body) }
            }
            if newline != nil {
                held.append(0x0A)
                try emitHeld(hasLF: true, body)
                used += 1
            }
            index += used
        }
    }

    /// Emits the held partial line, if any, as a line of its own: the stream has ended here.
    public mutating func flush(_ body: (SplitLine) throws -> Void) rethrows {
        guard !held.isEmpty else { return }
        try emitHeld(hasLF: false, body)
    }

    /// Drops any held bytes and restarts at `offset` (after a truncation, say).
    public mutating func reset(offset: Int64, history: some Collection<UInt8> = [UInt8]()) {
        held.removeAll(keepingCapacity: true)
        emittedOffset = offset
        check = PositionCheck()
        check.feed(history)
    }

    private mutating func emitHeld(hasLF: Bool, _ body: (SplitLine) throws -> Void) rethrows {
        let bytes = held
        held.removeAll(keepingCapacity: true)
        try bytes.withUnsafeBytes { raw in
            try emit(raw, contentCount: hasLF ? raw.count - 1 : raw.count, hasLF: hasLF, continues: false, body)
        }
    }

    private mutating func cutPiece(_ body: (SplitLine) throws -> Void) rethrows {
        var cut = maxLineBytes
        var back = 0
        while back < 3, held[cut - back] & 0xC0 == 0x80 { back += 1 }
        if held[cut - back] & 0xC0 != 0x80 { cut -= back }
        let piece = Array(held[..<cut])
        held.removeFirst(cut)
        try piece.withUnsafeBytes { raw in
            try emit(raw, contentCount: raw.count, hasLF: false, continues: true, body)
        }
    }

    /// Emits a line whose stream bytes are `raw` (content, then the LF when `hasLF`).
    private mutating func emit(
        _ raw: UnsafeRawBufferPointer, contentCount: Int, hasLF: Bool, continues: Bool,
        _ body: (SplitLine) throws -> Void
    ) rethrows {
        let start = emittedOffset
        check.feed(raw)
        emittedOffset += Int64(raw.count)
        var text = UnsafeRawBufferPointer(rebasing: raw[..<contentCount])
        if hasLF, text.last == 0x0D { text = UnsafeRawBufferPointer(rebasing: text.dropLast()) }
        try body(SplitLine(text: text, start: start, end: emittedOffset, continues: continues, check: check.value))
    }
}
