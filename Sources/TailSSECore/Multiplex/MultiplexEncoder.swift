public import NIOCore

/// Writes the events of several sources as one stream, giving every event the
/// ``CompositeEventID`` of all the sources' positions just after it.
///
/// Each source's events come framed (``EventEncoder/framed(format:source:)``); the encoder keeps
/// each source's latest id and rewrites the id of every event in the order the events are sent, so
/// the id a client holds always names, for every source, exactly what it has received.
/// In plain text, each line is prefixed with `[NAME] `.
///
/// Sources can join a running stream (``addSource(_:startID:)``, the files of a glob source as
/// they appear) and leave it (``retire(_:)``). A *framed* multiplex encoder writes its events
/// framed in turn, with the composite id as their own, for a multiplexed stream that holds this
/// one as a source (a glob source in `GET /events`).
public struct MultiplexEncoder: Sendable {
    public let format: StreamFormat
    /// `true` when the output is framed (``EventFrame``) for an outer ``MultiplexEncoder``.
    public let isFramed: Bool
    private var sources: [String]
    /// Each source's latest id, escaped as it appears in the composite id.
    private var parts: [[UInt8]?]
    /// Plain text: the source whose last piece of a line is not finished yet.
    private var openLine: Int?
    private var prefixes: [[UInt8]]
    /// `,NAME=` of each source.
    private var separators: [[UInt8]]
    /// The composite id around one source's part, valid while only that source's part changes.
    private var around: (source: Int, before: [UInt8], after: [UInt8])?

    /// - Parameters:
    ///   - sources: the sources' names, in the order their ids appear in the composite id.
    ///   - startIDs: each source's id of where its stream starts, when known.
    ///   - framed: write frames for an outer multiplex encoder.
    public init(format: StreamFormat, sources: [String], startIDs: [String?], framed: Bool = false) {
        self.format = format
        self.isFramed = framed
        self.sources = sources
        self.parts = sources.indices.map { index in
            guard index < startIDs.count, let id = startIDs[index] else { return nil }
            var part: [UInt8] = []
            CompositeEventID.appendEscaped(id.utf8, to: &part)
            return part
        }
        self.prefixes = sources.map { Array("[\($0)] ".utf8) }
        self.separators = sources.map { Array(",\($0)=".utf8) }
    }

    /// Adds a source after the others (its index is returned), starting at `startID` if known.
    public mutating func addSource(_ name: String, startID: String?) -> Int {
        var part: [UInt8]?
        if let startID {
            part = []
            CompositeEventID.appendEscaped(startID.utf8, to: &part!)
        }
        sources.append(name)
        parts.append(part)
        prefixes.append(Array("[\(name)] ".utf8))
        separators.append(Array(",\(name)=".utf8))
        around = nil
        return sources.count - 1
    }

    /// Takes the source at `index` out of the composite id (its stream ended for good).
    public mutating func retire(_ index: Int) {
        guard parts.indices.contains(index) else { return }
        parts[index] = nil
        around = nil
        if openLine == index { openLine = nil }
    }

    /// The composite id of the positions so far.
    public var currentID: CompositeEventID {
        var buffer = ByteBuffer()
        writeID(to: &buffer)
        return (try? CompositeEventID(parsing: String(buffer: buffer))) ?? CompositeEventID(parts: [])
    }

    /// The bytes that open a stream: the reconnection hint for SSE, nothing otherwise.
    public func preamble(retryMilliseconds: Int, into buffer: inout ByteBuffer) {
        EventEncoder(format: format, source: "").preamble(retryMilliseconds: retryMilliseconds, into: &buffer)
    }

    /// A keep-alive that fires nothing in clients.
    public func heartbeat(into buffer: inout ByteBuffer) {
        EventEncoder(format: format, source: "").heartbeat(into: &buffer)
    }

    /// Writes the framed events of the source at `index` to `output`, each with its composite id.
    public mutating func write(frames: ByteBuffer, source index: Int, into output: inout ByteBuffer) {
        output.reserveCapacity(minimumWritableBytes: frames.readableBytes + frames.readableBytes / 4)
        EventFrame.forEach(in: frames) { frame in
            if let id = frame.id {
                var part = parts[index] ?? []
                parts[index] = nil
                part.removeAll(keepingCapacity: true)
                CompositeEventID.appendEscaped(id, to: &part)
                parts[index] = part
                if around?.source != index { around = nil }
            }
            if isFramed {
                writeFramed(frame, source: index, into: &output)
                return
            }
            if format == .plainText {
                writePlain(frame, source: index, into: &output)
                return
            }
            Self.splice(frame, into: &output) { buffer in
                if frame.id != nil { writeID(changing: index, to: &buffer) } else { writeID(to: &buffer) }
            }
        }
    }

    /// Writes a frame's event with `writeID` in place of the source's own id; returns where the
    /// id was written, if the event has one.
    @discardableResult
    private static func splice(_ frame: EventFrame, into buffer: inout ByteBuffer, writeID: (inout ByteBuffer) -> Void) -> Range<Int>? {
        guard let range = frame.idRange else {
            buffer.writeBytes(frame.bytes)
            return nil
        }
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: frame.bytes[..<range.lowerBound]))
        let start = buffer.writerIndex
        writeID(&buffer)
        let end = buffer.writerIndex
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: frame.bytes[range.upperBound...]))
        return start..<end
    }

    /// Writes one event as a frame whose id is the composite id (when the event changed it).
    private mutating func writeFramed(_ frame: EventFrame, source index: Int, into output: inout ByteBuffer) {
        var id: ByteBuffer?
        if frame.id != nil {
            var written = ByteBuffer()
            writeID(changing: index, to: &written)
            id = written
        }
        let kind: StreamEvent.Kind = frame.isLine ? .line : .reset
        guard format != .plainText else {
            if frame.isLine, let open = openLine, open != index {
                EventFrame.write(kind: .line, continues: false, id: Optional<ByteBuffer>.none, into: &output) { buffer in
                    buffer.writeInteger(UInt8(ascii: "\n"))
                    return nil
                }
                openLine = nil
            }
            let starts = frame.isLine && openLine == nil && (!frame.bytes.isEmpty || frame.continues)
            EventFrame.write(kind: kind, continues: frame.continues, id: id, into: &output) { buffer in
                if starts { buffer.writeBytes(prefixes[index]) }
                buffer.writeBytes(frame.bytes)
                return nil
            }
            if frame.isLine, !frame.bytes.isEmpty || frame.continues { openLine = frame.continues ? index : nil }
            return
        }
        EventFrame.write(kind: kind, continues: frame.continues, id: id, into: &output) { buffer in
            Self.splice(frame, into: &buffer) { buffer in
                if let id { buffer.writeImmutableBuffer(id) } else { writeID(to: &buffer) }
            }
        }
    }

    private mutating func writePlain(_ frame: EventFrame, source index: Int, into output: inout ByteBuffer) {
        guard frame.isLine, !frame.bytes.isEmpty || frame.continues else { return }
        if let open = openLine, open != index {
            output.writeInteger(UInt8(ascii: "\n"))
            openLine = nil
        }
        if openLine == nil { output.writeBytes(prefixes[index]) }
        output.writeBytes(frame.bytes)
        openLine = frame.continues ? index : nil
    }

    /// Writes the composite id after an event of the source at `index` (whose part changed).
    private mutating func writeID(changing index: Int, to buffer: inout ByteBuffer) {
        if around?.source != index {
            var before = Array("m1".utf8)
            for other in 0..<index { if let part = parts[other] { before += separators[other] + part } }
            var after: [UInt8] = []
            for other in (index + 1)..<sources.count { if let part = parts[other] { after += separators[other] + part } }
            around = (index, before, after)
        }
        guard let around, let part = parts[index] else { return writeID(to: &buffer) }
        buffer.writeBytes(around.before)
        buffer.writeBytes(separators[index])
        buffer.writeBytes(part)
        buffer.writeBytes(around.after)
    }

    private func writeID(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("m1")
        for index in sources.indices {
            guard let part = parts[index] else { continue }
            buffer.writeBytes(separators[index])
            buffer.writeBytes(part)
        }
    }
}

extension ByteBuffer: EventIDText {
    public func write(to buffer: inout ByteBuffer) { buffer.writeImmutableBuffer(self) }
}
