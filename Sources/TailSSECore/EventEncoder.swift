public import NIOCore

/// How a stream is written to one client: `text/event-stream`, NDJSON or plain text.
public enum StreamFormat: String, Sendable, CaseIterable {
    case eventStream
    case ndjson
    case plainText

    public var contentType: String {
        switch self {
        case .eventStream: "text/event-stream; charset=utf-8"
        case .ndjson: "application/x-ndjson; charset=utf-8"
        case .plainText: "text/plain; charset=utf-8"
        }
    }

    /// Picks the format for an `Accept` header: SSE or NDJSON when asked for, plain text otherwise.
    public static func negotiate(accept: String?) -> StreamFormat {
        guard let accept = accept?.lowercased() else { return .plainText }
        var best: (format: StreamFormat, quality: Double)?
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";").map { $0.trimmingASCIISpaces() }
            guard let type = parts.first else { continue }
            var quality = 1.0
            for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
                quality = Double(parameter.dropFirst(2)) ?? 0
            }
            let format: StreamFormat
            switch type {
            case "text/event-stream": format = .eventStream
            case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq": format = .ndjson
            case "text/plain": format = .plainText
            default: continue
            }
            if quality > 0, quality > (best?.quality ?? 0) { best = (format, quality) }
        }
        return best?.format ?? .plainText
    }
}

extension Substring {
    fileprivate func trimmingASCIISpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}

/// Encodes a source's events in one ``StreamFormat``.
///
/// SSE events carry `id:` and one `data:` line holding a JSON object
/// `{"source": NAME, "text": LINE}`; markers are named events (`rotated`, `truncated`, `reset`,
/// `end`), where `reset` and `end` carry a `"reason"` instead of a `"text"`.
/// NDJSON writes the same objects, one per line, with their `"id"` (and `"event"` for markers).
/// Plain text writes lines as they are and skips markers.
///
/// A *framed* encoder (``framed(format:source:)``) writes the same bytes, each event wrapped in a
/// small header saying where its id is, so that a ``MultiplexEncoder`` can rewrite the id of every
/// event in the order it sends them.
public struct EventEncoder: Sendable {
    public let format: StreamFormat
    /// `true` when events are wrapped in frames for a ``MultiplexEncoder``.
    public let isFramed: Bool
    private let sourceField: [UInt8]
    private let utcOffset: @Sendable (_ secondsSinceEpoch: Int64) -> Int
    /// Where the streams that encode with this encoder count the events they encode, a batch
    /// at a time (``count(events:)``); `nil` when nobody counts.
    public let tally: SentTally?
    /// Only lines this pattern matches are written (journal entries: by their `MESSAGE`); markers
    /// always are. With a pattern, each piece of an over-long line is matched, and sent, on its own.
    public let grep: GrepPattern?

    /// - Parameters:
    ///   - utcOffset: the local time zone's offset from UTC at a time, in seconds, for journal
    ///     timestamps in plain text (JSON times are always UTC).
    ///   - tally: where the number of events encoded is counted, for metrics.
    ///   - grep: write only the lines it matches.
    public init(
        format: StreamFormat, source: String, utcOffset: @escaping @Sendable (_ secondsSinceEpoch: Int64) -> Int = { _ in 0 }, tally: SentTally? = nil,
        grep: GrepPattern? = nil
    ) {
        self.init(format: format, source: source, utcOffset: utcOffset, framed: false, tally: tally, grep: grep)
    }

    private init(
        format: StreamFormat, source: String, utcOffset: @escaping @Sendable (_ secondsSinceEpoch: Int64) -> Int, framed: Bool, tally: SentTally?, grep: GrepPattern?
    ) {
        self.init(format: format, sourceField: Array("\"source\":".utf8) + JSONText.quoted(source), utcOffset: utcOffset, framed: framed, tally: tally, grep: grep)
    }

    private init(
        format: StreamFormat, sourceField: [UInt8], utcOffset: @escaping @Sendable (_ secondsSinceEpoch: Int64) -> Int, framed: Bool, tally: SentTally?, grep: GrepPattern?
    ) {
        self.format = format
        self.isFramed = framed
        self.sourceField = sourceField
        self.utcOffset = utcOffset
        self.tally = tally
        self.grep = grep
    }

    /// The framed encoder for one file of a glob source streamed with this encoder: its JSON
    /// objects carry `"file": NAME` after `"source"`; it counts in the same ``tally``.
    public func framed(file: String) -> EventEncoder {
        EventEncoder(format: format, sourceField: sourceField + Array(",\"file\":".utf8) + JSONText.quoted(file), utcOffset: utcOffset, framed: true, tally: tally, grep: grep)
    }

    /// This encoder with `"file": NAME` after `"source"` in its JSON objects, framed or not as it
    /// is: one file of a glob source on its own (its history by file).
    public func taggingFile(_ file: String) -> EventEncoder {
        EventEncoder(format: format, sourceField: sourceField + Array(",\"file\":".utf8) + JSONText.quoted(file), utcOffset: utcOffset, framed: isFramed, tally: tally, grep: grep)
    }

    /// An encoder for one source of a multiplexed stream: its output is read by a
    /// ``MultiplexEncoder``, never sent as it is.
    public static func framed(
        format: StreamFormat, source: String, utcOffset: @escaping @Sendable (_ secondsSinceEpoch: Int64) -> Int = { _ in 0 }, tally: SentTally? = nil,
        grep: GrepPattern? = nil
    ) -> EventEncoder {
        EventEncoder(format: format, source: source, utcOffset: utcOffset, framed: true, tally: tally, grep: grep)
    }

    /// Whether events of `kind` are written at all in this format (plain text writes only lines).
    public func writes(_ kind: StreamEvent.Kind) -> Bool {
        format != .plainText || kind == .line
    }

    /// Counts `events` events just encoded (one call per batch, not per event) in ``tally``.
    public func count(events: Int) {
        tally?.add(events: events)
    }

    /// The bytes that open a stream: the reconnection hint for SSE, nothing otherwise.
    public func preamble(retryMilliseconds: Int, into buffer: inout ByteBuffer) {
        if format == .eventStream { buffer.writeString("retry: \(retryMilliseconds)\n\n") }
    }

    /// A keep-alive that fires nothing in clients: an SSE comment; nothing for other formats.
    public func heartbeat(into buffer: inout ByteBuffer) {
        if format == .eventStream { buffer.writeStaticString(":\n\n") }
    }

    public func encode(_ event: StreamEvent, into buffer: inout ByteBuffer) {
        if let entry = event.entry {
            encodeEntry(entry, into: &buffer)
            return
        }
        _ = event.text.withUnsafeBytes { text in
            encode(kind: event.kind, id: event.id, text: text, continues: event.continues, into: &buffer)
        }
    }

    /// Encodes a line straight from the bytes read, without building a ``StreamEvent``; `false`
    /// when ``grep`` left it out.
    @discardableResult
    public func encodeLine(_ text: UnsafeRawBufferPointer, id: some EventIDText, continues: Bool, into buffer: inout ByteBuffer) -> Bool {
        encode(kind: .line, id: id, text: text, continues: continues, into: &buffer)
    }

    /// ``encodeLine(_:id:continues:into:)`` for a file's line: specialised here, so a reader in
    /// another module pays no generic dispatch per line.
    @discardableResult
    public func encodeLine(_ text: UnsafeRawBufferPointer, id: FileEventID, continues: Bool, into buffer: inout ByteBuffer) -> Bool {
        encode(kind: .line, id: id, text: text, continues: continues, into: &buffer)
    }

    @discardableResult
    private func encode(
        kind: StreamEvent.Kind, id: (some EventIDText)?, text: UnsafeRawBufferPointer, continues: Bool,
        into buffer: inout ByteBuffer
    ) -> Bool {
        var continues = continues
        if kind == .line, let grep {
            guard grep.matches(text) else { return false }
            continues = false
        }
        if isFramed {
            EventFrame.write(kind: kind, continues: continues, id: id, into: &buffer) { buffer in
                encodeWire(kind: kind, id: id, text: text, continues: continues, into: &buffer)
            }
        } else {
            encodeWire(kind: kind, id: id, text: text, continues: continues, into: &buffer)
        }
        return true
    }

    /// Writes one event as sent; returns where its id was written, if it was.
    @discardableResult
    private func encodeWire(
        kind: StreamEvent.Kind, id: (some EventIDText)?, text: UnsafeRawBufferPointer, continues: Bool,
        into buffer: inout ByteBuffer
    ) -> Range<Int>? {
        var idRange: Range<Int>?
        switch format {
        case .eventStream:
            if kind != .line { buffer.writeString("event: \(kind.rawValue)\n") }
            if let id {
                buffer.writeStaticString("id: ")
                let start = buffer.writerIndex
                id.write(to: &buffer)
                idRange = start..<buffer.writerIndex
                buffer.writeInteger(UInt8(ascii: "\n"))
            }
            buffer.writeStaticString("data: ")
            writeObject(kind: kind, id: Optional<String>.none, namingMarker: false, text: text, continues: continues, into: &buffer)
            buffer.writeStaticString("\n\n")
        case .ndjson:
            idRange = writeObject(kind: kind, id: id, namingMarker: true, text: text, continues: continues, into: &buffer)
            buffer.writeInteger(UInt8(ascii: "\n"))
        case .plainText:
            guard kind == .line else { return nil }
            JSONText.writeRepaired(text, to: &buffer)
            if !continues { buffer.writeInteger(UInt8(ascii: "\n")) }
        }
        return idRange
    }

    @discardableResult
    private func writeObject(
        kind: StreamEvent.Kind, id: (some EventIDText)?, namingMarker: Bool, text: UnsafeRawBufferPointer, continues: Bool,
        into buffer: inout ByteBuffer
    ) -> Range<Int>? {
        var idRange: Range<Int>?
        buffer.writeInteger(UInt8(ascii: "{"))
        if let id {
            buffer.writeStaticString("\"id\":\"")
            let start = buffer.writerIndex
            id.writeJSONEscaped(to: &buffer)
            idRange = start..<buffer.writerIndex
            buffer.writeStaticString("\",")
        }
        if namingMarker, kind != .line {
            buffer.writeString("\"event\":\"\(kind.rawValue)\",")
        }
        buffer.writeBytes(sourceField)
        buffer.writeStaticString(kind == .reset || kind == .end ? ",\"reason\":\"" : ",\"text\":\"")
        JSONText.writeEscaped(text, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
        if continues { buffer.writeStaticString(",\"continues\":true") }
        buffer.writeInteger(UInt8(ascii: "}"))
        return idRange
    }
}

extension EventEncoder {
    /// Encodes a journal entry: its cursor is the id; JSON carries `time`, `priority`, `unit`,
    /// `identifier`, `pid` and `host` where present; plain text is `journalctl -o short-iso`.
    public func encodeEntry(_ entry: JournalEntry, into buffer: inout ByteBuffer) {
        if let grep, !entry.message.withUnsafeBytes({ grep.matches($0) }) { return }
        if isFramed {
            EventFrame.write(kind: .line, continues: false, id: entry.cursor, into: &buffer) { buffer in
                encodeEntryWire(entry, into: &buffer)
            }
        } else {
            encodeEntryWire(entry, into: &buffer)
        }
    }

    /// Writes the entry as sent; returns where its id (the cursor) was written, if it was.
    @discardableResult
    private func encodeEntryWire(_ entry: JournalEntry, into buffer: inout ByteBuffer) -> Range<Int>? {
        switch format {
        case .eventStream:
            buffer.writeStaticString("id: ")
            let start = buffer.writerIndex
            buffer.writeString(entry.cursor)
            let idRange = start..<buffer.writerIndex
            buffer.writeStaticString("\ndata: ")
            writeEntryObject(entry, withID: false, into: &buffer)
            buffer.writeStaticString("\n\n")
            return idRange
        case .ndjson:
            let idRange = writeEntryObject(entry, withID: true, into: &buffer)
            buffer.writeInteger(UInt8(ascii: "\n"))
            return idRange
        case .plainText:
            writeShortISO(entry, into: &buffer)
            return nil
        }
    }

    @discardableResult
    private func writeEntryObject(_ entry: JournalEntry, withID: Bool, into buffer: inout ByteBuffer) -> Range<Int>? {
        var idRange: Range<Int>?
        buffer.writeInteger(UInt8(ascii: "{"))
        if withID {
            buffer.writeStaticString("\"id\":\"")
            let start = buffer.writerIndex
            entry.cursor.writeJSONEscaped(to: &buffer)
            idRange = start..<buffer.writerIndex
            buffer.writeStaticString("\",")
        }
        buffer.writeBytes(sourceField)
        buffer.writeStaticString(",\"text\":\"")
        entry.message.withUnsafeBytes { JSONText.writeEscaped($0, to: &buffer) }
        buffer.writeStaticString("\",\"time\":\"")
        JournalTime.writeRFC3339(microseconds: entry.realtime, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
        if let priority = entry.priority {
            buffer.writeStaticString(",\"priority\":")
            buffer.writeInteger(UInt8(ascii: "0") + priority)
        }
        Self.writeMember("unit", entry.unit, into: &buffer)
        Self.writeMember("identifier", entry.identifier, into: &buffer)
        if let pid = entry.pid {
            if (1...10).contains(pid.count), pid.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                buffer.writeStaticString(",\"pid\":")
                buffer.writeBytes(pid)
            } else {
                Self.writeMember("pid", pid, into: &buffer)
            }
        }
        Self.writeMember("host", entry.host, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "}"))
        return idRange
    }

    private static func writeMember(_ name: StaticString, _ value: ArraySlice<UInt8>?, into buffer: inout ByteBuffer) {
        guard let value else { return }
        buffer.writeStaticString(",\"")
        buffer.writeStaticString(name)
        buffer.writeStaticString("\":\"")
        value.withUnsafeBytes { JSONText.writeEscaped($0, to: &buffer) }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// `2024-01-15T10:23:45+0000 host identifier[pid]: message`, continuation lines of a
    /// multi-line message indented under the first.
    private func writeShortISO(_ entry: JournalEntry, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        let offset = utcOffset(Int64(entry.realtime / 1_000_000))
        JournalTime.writeShortISO(microseconds: entry.realtime, utcOffsetSeconds: offset, to: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        if let host = entry.host {
            host.withUnsafeBytes { JSONText.writeRepaired($0, to: &buffer) }
            buffer.writeInteger(UInt8(ascii: " "))
        }
        if let identifier = entry.identifier {
            identifier.withUnsafeBytes { JSONText.writeRepaired($0, to: &buffer) }
        } else {
            buffer.writeStaticString("unknown")
        }
        if let pid = entry.pid {
            buffer.writeInteger(UInt8(ascii: "["))
            pid.withUnsafeBytes { JSONText.writeRepaired($0, to: &buffer) }
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        buffer.writeStaticString(": ")
        let indent = buffer.writerIndex - start
        var message = entry.message
        while message.last == UInt8(ascii: "\n") { message.removeLast() }
        var first = true
        for line in message.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if !first { buffer.writeRepeatingByte(UInt8(ascii: " "), count: indent) }
            first = false
            line.withUnsafeBytes { JSONText.writeRepaired($0, to: &buffer) }
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        if first { buffer.writeInteger(UInt8(ascii: "\n")) }
    }
}

/// An event id that can write itself (printable ASCII, no CR/LF/NUL) into a buffer.
public protocol EventIDText {
    func write(to buffer: inout ByteBuffer)
    /// Writes the id as the inside of a JSON string.
    func writeJSONEscaped(to buffer: inout ByteBuffer)
}

extension EventIDText {
    public func writeJSONEscaped(to buffer: inout ByteBuffer) { write(to: &buffer) }
}

extension String: EventIDText {
    public func write(to buffer: inout ByteBuffer) { buffer.writeString(self) }
    public func writeJSONEscaped(to buffer: inout ByteBuffer) { JSONText.writeEscaped(Array(utf8), to: &buffer) }
}
