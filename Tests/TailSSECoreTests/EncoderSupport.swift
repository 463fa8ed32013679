import TailSSECore
import Testing

// Helpers shared by the encoder suites.

/// One thing written to a stream, to know what the client must see.
enum Written {
    case event(StreamEvent)
    case heartbeat
}

/// A random event: a line of hostile bytes (sometimes very long, sometimes a piece), or a marker.
func randomStreamEvent(using rng: inout SplitMix64) -> StreamEvent {
    let id: String? = switch rng.int(0...9) {
    case 0: nil
    case 1: "s=6c1a0f2d9e3b4a5c8d7e6f5a4b3c2d1e;i=\(String(rng.next() >> 40, radix: 16));b=0f1e2d3c;m=\(rng.int(0...999_999));t=5f2;x=\(String(rng.next(), radix: 16))"
    default: FileEventID(file: FileIdentity(device: rng.next() >> 48, inode: rng.next() >> 20), offset: Int64(rng.next() >> 24), check: UInt32(truncatingIfNeeded: rng.next())).description
    }
    switch rng.int(0...11) {
    case 0: return .marker(.rotated, id: id, message: "the file was replaced; following the new file")
    case 1: return .marker(.truncated, id: id, message: "the file was truncated; reading it from the start")
    case 2: return .marker(.reset, id: id, message: "the id \"x\\y\" is not valid:\r\nreading from the tail")
    default:
        let length = rng.chance(1, in: 30) ? rng.int(5000...9000) : rng.int(0...200)
        return .line(randomLogBytes(count: length, using: &rng), id: id, continues: rng.chance(1, in: 5))
    }
}

/// Chunks of mixed sizes: small ones split field names, separators and blank lines; large ones
/// keep a long line from being fed byte by byte to a parser that rescans its buffer.
func mixedChunks(count: Int, using rng: inout SplitMix64) -> [Range<Int>] {
    var chunks: [Range<Int>] = []
    var start = 0
    while start < count {
        let size = rng.chance(1, in: 2) ? rng.int(1...8) : rng.int(1...2048)
        let end = min(count, start + size)
        chunks.append(start..<end)
        start = end
    }
    return chunks
}

/// Checks a decoded JSON object against the event it encodes (without the NDJSON-only members).
func expectObject(_ object: [String: JSONValue], matches event: StreamEvent, source: String, context: String) {
    #expect(object["source"] == .string(source), "\(context)")
    let textKey = event.kind == .reset ? "reason" : "text"
    let text = object[textKey]?.string
    let textDifference = difference(text.map { Array($0.utf8) } ?? [], repairedUTF8(event.text))
    #expect(text != nil && textDifference == nil, "\(context): \(textKey): \(textDifference ?? "missing")")
    #expect(object["continues"] == (event.continues ? .bool(true) : nil), "\(context): continues")
    var keys: Set<String> = ["source", textKey]
    if event.continues { keys.insert("continues") }
    #expect(Set(object.keys).subtracting(["id", "event"]) == keys, "\(context): keys \(object.keys.sorted())")
}
