public import NIOCore

/// Where encoded events end in a stream's bytes, so a stream can stop between two events and
/// never inside one: SSE events end with a blank line, NDJSON objects with a newline, plain-text
/// entries with a newline not followed by a continuation line (which starts with a space).
///
/// It remembers the last bytes written; the buffers it is shown hold whole events from where the
/// writing stands, so a buffer's last byte always ends an event.
public struct EventBoundary: Sendable {
    public let format: StreamFormat
    private var last: UInt8?
    private var beforeLast: UInt8?

    public init(format: StreamFormat) { self.format = format }

    /// Records bytes as written.
    public mutating func wrote(_ bytes: ByteBuffer) {
        let view = bytes.readableBytesView
        guard let final = view.last else { return }
        beforeLast = view.count > 1 ? view[view.endIndex - 2] : last
        last = final
    }

    /// How many bytes of `buffer` (the bytes that follow the written ones) complete the event in
    /// progress: 0 when the writing stands between two events.
    public func bytesToEventEnd(in buffer: ByteBuffer) -> Int {
        let bytes = buffer.readableBytesView
        guard last != nil else { return 0 }
        var previous = (beforeLast, last)
        if endsEvent(previous, next: bytes.first) { return 0 }
        var index = bytes.startIndex
        while index < bytes.endIndex {
            previous = (previous.1, bytes[index])
            index = bytes.index(after: index)
            if endsEvent(previous, next: index < bytes.endIndex ? bytes[index] : nil) {
                return bytes.distance(from: bytes.startIndex, to: index)
            }
        }
        return bytes.count
    }

    private func endsEvent(_ previous: (UInt8?, UInt8?), next: UInt8?) -> Bool {
        let newline = UInt8(ascii: "\n")
        guard previous.1 == newline else { return false }
        switch format {
        case .eventStream: return previous.0 == newline
        case .ndjson: return true
        case .plainText: return next != UInt8(ascii: " ")
        }
    }
}
