public import NIOCore
import Synchronization

/// A record's encoded bytes, per format and framing, made by the first client that sends it and
/// shared by every other client of the same source: the JSON escaping of a line is done once, not
/// once per client. A `GET /events` client shares the framed bytes (``EventEncoder/isFramed``) and
/// only splices its composite id into its copy. Encoders with a ``EventEncoder/grep`` pattern do
/// not share.
public final class EncodedForms: Sendable {
    /// Per ``StreamFormat`` (SSE, NDJSON, plain text), unframed then framed.
    private let forms = Mutex<[ByteBuffer?]>(Array(repeating: nil, count: EventEncoder.formCount))

    public init() {}

    /// The bytes of `format`, framed or not, made with `encode` the first time.
    public func bytes(_ format: StreamFormat, framed: Bool = false, encode: () -> ByteBuffer) -> ByteBuffer {
        let index = EventEncoder.formIndex(format, framed: framed)
        if let cached = forms.withLock({ $0[index] }) { return cached }
        let made = encode()
        forms.withLock { $0[index] = made }
        return made
    }
}

extension EventEncoder {
    /// Whether this encoder's bytes for a record are those of every other client of the source in
    /// the same format and framing (no grep), so they can be made once and shared.
    public var sharesBytes: Bool { grep == nil }

    /// Whether a stream with this encoder may take the live end from the push path: its bytes are
    /// shared (framed ones get each client's composite ids as they are written).
    public var isPushable: Bool { sharesBytes }

    /// Encodes a shared log record's event, reusing the bytes another client of the source made
    /// for the same format.
    public func encode<Position>(_ record: LogRecord<Position>, into buffer: inout ByteBuffer) {
        guard let event = record.event else { return }
        guard sharesBytes, let forms = record.encoded else {
            encode(event, into: &buffer)
            return
        }
        var bytes = forms.bytes(format, framed: isFramed) {
            var made = ByteBufferAllocator().buffer(capacity: event.footprint + 64)
            encode(event, into: &made)
            return made
        }
        buffer.writeBuffer(&bytes)
    }
}
