public import NIOCore
import Synchronization

/// A record's encoded bytes, per format, made by the first client that sends it and shared by
/// every other client of the same source: the JSON escaping of a line is done once, not once per
/// client. Framed encoders (``EventEncoder/isFramed``, used by multiplexed streams) and encoders with
/// a ``EventEncoder/grep`` pattern do not share.
public final class EncodedForms: Sendable {
    private let forms = Mutex<(eventStream: ByteBuffer?, ndjson: ByteBuffer?, plainText: ByteBuffer?)>((nil, nil, nil))

    public init() {}

    /// The bytes of `format`, made with `encode` the first time.
    public func bytes(_ format: StreamFormat, encode: () -> ByteBuffer) -> ByteBuffer {
        if let cached = forms.withLock({ Self.form(format, in: $0) }) { return cached }
        let made = encode()
        forms.withLock { forms in
            switch format {
            case .eventStream: forms.eventStream = made
            case .ndjson: forms.ndjson = made
            case .plainText: forms.plainText = made
            }
        }
        return made
    }

    private static func form(_ format: StreamFormat, in forms: (eventStream: ByteBuffer?, ndjson: ByteBuffer?, plainText: ByteBuffer?)) -> ByteBuffer? {
        switch format {
        case .eventStream: forms.eventStream
        case .ndjson: forms.ndjson
        case .plainText: forms.plainText
        }
    }
}

extension EventEncoder {
    /// Whether this encoder's bytes for a record are those of every other client of the source in
    /// the same format (not framed, no grep), so they can be made once and shared.
    public var sharesBytes: Bool { !isFramed && grep == nil }

    /// Encodes a shared log record's event, reusing the bytes another client of the source made
    /// for the same format.
    public func encode<Position>(_ record: LogRecord<Position>, into buffer: inout ByteBuffer) {
        guard let event = record.event else { return }
        guard sharesBytes, let forms = record.encoded else {
            encode(event, into: &buffer)
            return
        }
        var bytes = forms.bytes(format) {
            var made = ByteBufferAllocator().buffer(capacity: event.footprint + 64)
            encode(event, into: &made)
            return made
        }
        buffer.writeBuffer(&bytes)
    }
}
