import NIOCore
import TailSSECore
import Testing

@Suite("The end event of a removed source")
struct EndEventTests {
    private func encoded(_ format: StreamFormat, _ event: StreamEvent) -> String {
        var buffer = ByteBuffer()
        EventEncoder(format: format, source: "app").encode(event, into: &buffer)
        return String(buffer: buffer)
    }

    @Test("SSE: a named event with the source and the reason, and no id")
    func eventStream() {
        #expect(encoded(.eventStream, .marker(.end, id: nil, message: "removed \"here\""))
            == "event: end\ndata: {\"source\":\"app\",\"reason\":\"removed \\\"here\\\"\"}\n\n")
    }

    @Test("NDJSON names the event; plain text skips it")
    func otherFormats() {
        #expect(encoded(.ndjson, .marker(.end, id: nil, message: "gone")) == "{\"event\":\"end\",\"source\":\"app\",\"reason\":\"gone\"}\n")
        #expect(encoded(.plainText, .marker(.end, id: nil, message: "gone")) == "")
    }

    @Test("closing a log keeps its final event for every waiter, now and later", .timeLimit(.minutes(1)))
    func logFinalEvent() async {
        let log = EventLog<Int>(capacityBytes: 1 << 16, start: 0)
        let token = log.makeWaitToken()
        async let woken = log.wait(after: 0, token: token)
        let end = StreamEvent.marker(.end, id: nil, message: "removed")
        log.close(finalEvent: end)
        log.close(finalEvent: .marker(.end, id: nil, message: "a second close changes nothing"))
        #expect(await woken == .closed)
        #expect(log.isClosed)
        #expect(log.finalEvent == end)
        #expect(await log.wait(after: 0, token: log.makeWaitToken()) == .closed)
    }

    @Test("closing without a final event (shutdown) leaves none")
    func shutdownHasNoFinalEvent() {
        let log = EventLog<Int>(capacityBytes: 1 << 16, start: 0)
        log.close()
        #expect(log.isClosed && log.finalEvent == nil)
    }
}
