import TailSSECore
import Testing

@Suite("Content negotiation (StreamFormat)")
struct StreamFormatTests {
    @Test("Accept picks SSE or NDJSON when asked for, plain text otherwise", arguments: [
        (nil, StreamFormat.plainText),
        ("", .plainText),
        ("*/*", .plainText),
        ("text/plain", .plainText),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", .plainText),
        ("application/json", .plainText),
        ("text/*", .plainText),
        ("text/event-stream", .eventStream),
        ("TEXT/Event-Stream", .eventStream),
        ("text/event-stream; charset=utf-8", .eventStream),
        ("  text/event-stream  ;  q=0.5 ", .eventStream),
        ("text/html, text/event-stream", .eventStream),
        ("application/x-ndjson", .ndjson),
        ("application/ndjson", .ndjson),
        ("application/jsonl", .ndjson),
        ("application/json-seq", .ndjson),
        ("text/event-stream;q=0, */*", .plainText),
        ("application/x-ndjson;q=0", .plainText),
        ("text/event-stream;q=0.2, application/x-ndjson;q=0.9", .ndjson),
        ("application/x-ndjson;q=0.5, text/event-stream", .eventStream),
        ("application/x-ndjson;q=0.5,\ttext/event-stream;q=0.6", .eventStream),
        ("text/event-stream;q=garbage", .plainText),
        ("text/event-stream-x", .plainText),
        ("xtext/event-stream", .plainText),
        (",,, ;;", .plainText),
    ] as [(String?, StreamFormat)])
    func negotiate(accept: String?, expected: StreamFormat) {
        #expect(StreamFormat.negotiate(accept: accept) == expected)
    }

    @Test("an explicit text/plain preferred over the streaming types wins", arguments: [
        "text/plain, text/event-stream;q=0.5",
        "text/event-stream;q=0.1, text/plain;q=0.9",
        "text/plain;q=1, application/x-ndjson;q=0.3",
    ])
    func plainPreferred(accept: String) {
        #expect(StreamFormat.negotiate(accept: accept) == .plainText)
    }

    @Test("content types carry the charset")
    func contentTypes() {
        #expect(StreamFormat.eventStream.contentType == "text/event-stream; charset=utf-8")
        #expect(StreamFormat.ndjson.contentType == "application/x-ndjson; charset=utf-8")
        #expect(StreamFormat.plainText.contentType == "text/plain; charset=utf-8")
        #expect(StreamFormat.allCases.count == 3)
    }
}
