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
/// `{"source": NAME, "text": LINE}`; markers are named events (`rotated`, `truncated`, `reset`).
/// NDJSON writes the same objects, one per line, with their `"id"` (and `"event"` for markers).
/// Plain text writes lines as they are and skips markers.
public struct EventEncoder: Sendable {
    public let format: StreamFormat
    private let sourceField: [UInt8]

    public init(format: StreamFormat, source: String) {
        self.format = format
        self.sourceField = Array("\"source\":".utf8) + JSONText.quoted(source)
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
        switch format {
        case .eventStream: encodeEventStream(event, into: &buffer)
        case .ndjson: encodeNDJSON(event, into: &buffer)
        case .plainText: encodePlainText(event, into: &buffer)
        }
    }

    private func encodeEventStream(_ event: StreamEvent, into buffer: inout ByteBuffer) {
        if event.kind != .line { buffer.writeString("event: \(event.kind.rawValue)\n") }
        if let id = event.id {
            buffer.writeStaticString("id: ")
            buffer.writeString(id)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        buffer.writeStaticString("data: ")
        writeObject(event, id: false, into: &buffer)
        buffer.writeStaticString("\n\n")
    }

    private func encodeNDJSON(_ event: StreamEvent, into buffer: inout ByteBuffer) {
        writeObject(event, id: true, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    private func encodePlainText(_ event: StreamEvent, into buffer: inout ByteBuffer) {
        guard event.kind == .line else { return }
        event.text.withUnsafeBytes { JSONText.writeRepaired($0, to: &buffer) }
        if !event.continues { buffer.writeInteger(UInt8(ascii: "\n")) }
    }

    private func writeObject(_ event: StreamEvent, id: Bool, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "{"))
        if id, let eventID = event.id {
            buffer.writeStaticString("\"id\":\"")
            buffer.writeString(eventID)
            buffer.writeStaticString("\",")
        }
        if id, event.kind != .line {
            buffer.writeString("\"event\":\"\(event.kind.rawValue)\",")
        }
        buffer.writeBytes(sourceField)
        buffer.writeStaticString(event.kind == .reset ? ",\"reason\":\"" : ",\"text\":\"")
        JSONText.writeEscaped(event.text, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
        if event.continues { buffer.writeStaticString(",\"continues\":true") }
        buffer.writeInteger(UInt8(ascii: "}"))
    }
}
