import NIOCore
import TailSSECore
import Testing

/// A rule of 1,000 B/s over 10 s.
private let rule = SlowReaderRule(minimumBytesPerSecond: 1000, window: .seconds(10))
private let origin = ContinuousClock.now

private func sample(_ second: Int, behind: Bool = true, drained: UInt64, appended: UInt64) -> StreamProgressSample {
    StreamProgressSample(at: origin + .seconds(second), isBehind: behind, drained: drained, appended: appended)
}

/// Shows the window a first sample at 0 s (behind) and a second at `second`; returns the verdict.
private func judge(
    after second: Int = 10, behind: Bool = true, drained: UInt64, appended: UInt64, rule: SlowReaderRule = rule
) -> LagWindow.FallingBehind? {
    var window = LagWindow()
    #expect(window.observe(sample(0, drained: 1000, appended: 5000), rule: rule) == nil)
    return window.observe(sample(second, behind: behind, drained: 1000 + drained, appended: 5000 + appended), rule: rule)
}

@Suite struct SlowReaderRuleTests {
    @Test func aClientReadingTooLittleWhileItsSourcesGrowFallsBehind() {
        let verdict = judge(drained: 5000, appended: 20000)
        #expect(verdict == LagWindow.FallingBehind(drainedBytesPerSecond: 500, appendedBytesPerSecond: 2000))
        #expect(verdict?.description == "falling behind: read 500 B/s while its sources grew 2000 B/s")
    }

    @Test func aClientAtTheMinimumRateKeepsItsPlace() {
        #expect(judge(drained: 10000, appended: 1_000_000) == nil)
        #expect(judge(drained: 9999, appended: 1_000_000) != nil)
    }

    @Test func aSlowClientCatchingUpWhileItsSourcesAreQuietKeepsItsPlace() {
        #expect(judge(drained: 500, appended: 0) == nil)
        #expect(judge(drained: 500, appended: 500) == nil)
        #expect(judge(drained: 500, appended: 501) != nil)
    }

    @Test func aClientThatHasCaughtUpAtTheEndOfTheWindowKeepsItsPlace() {
        #expect(judge(behind: false, drained: 500, appended: 20000) == nil)
    }

    @Test func aWindowStartsOnlyWithTheClientBehind() {
        var window = LagWindow()
        #expect(window.observe(sample(0, behind: false, drained: 0, appended: 0), rule: rule) == nil)
        #expect(window.isDue(at: origin + .seconds(10), rule: rule))
        // Behind from 10 s on: judged at 20 s, not at 10 s.
        #expect(window.observe(sample(10, drained: 100, appended: 50000), rule: rule) == nil)
        #expect(!window.isDue(at: origin + .seconds(19), rule: rule))
        #expect(window.observe(sample(20, drained: 200, appended: 100_000), rule: rule)?.drainedBytesPerSecond == 10)
    }

    @Test func noVerdictBeforeAWholeWindow() {
        #expect(judge(after: 9, drained: 0, appended: 20000) == nil)
    }

    @Test func aKeptClientIsJudgedAgainOverTheNextWindow() {
        var window = LagWindow()
        #expect(window.isDue(at: origin, rule: rule))
        #expect(window.observe(sample(0, drained: 0, appended: 0), rule: rule) == nil)
        #expect(!window.isDue(at: origin + .seconds(9), rule: rule))
        #expect(window.isDue(at: origin + .seconds(10), rule: rule))
        // First window: it read 20 kB/s. Second: 100 B/s while 2 kB/s were appended.
        #expect(window.observe(sample(10, drained: 200_000, appended: 200_000), rule: rule) == nil)
        #expect(window.observe(sample(20, drained: 201_000, appended: 220_000), rule: rule)?.drainedBytesPerSecond == 100)
    }

    @Test func aDisabledRuleNeverJudges() {
        let off = SlowReaderRule(minimumBytesPerSecond: 0, window: .seconds(10))
        #expect(!off.isEnabled)
        #expect(judge(drained: 0, appended: 1_000_000, rule: off) == nil)
    }

    @Test func countersThatWentBackwardsAreNotJudged() {
        var window = LagWindow()
        _ = window.observe(sample(0, drained: 5000, appended: 5000), rule: rule)
        #expect(window.observe(sample(10, drained: 10, appended: 90000), rule: rule) == nil)
    }
}

/// Writes `bytes` to an ``EventBoundary`` in slices of `slice` bytes and returns where it would
/// stop if told to end after each slice: the offsets of the event ends it finds.
private func stops(_ text: String, format: StreamFormat, slice: Int) -> [Int] {
    var boundary = EventBoundary(format: format)
    var buffer = ByteBuffer(string: text)
    var found: [Int] = []
    var offset = 0
    while buffer.readableBytes > 0 {
        let end = boundary.bytesToEventEnd(in: buffer)
        found.append(offset + end)
        let chunk = buffer.readSlice(length: min(slice, buffer.readableBytes))!
        boundary.wrote(chunk)
        offset += chunk.readableBytes
    }
    return found
}

@Suite struct EventBoundaryTests {
    private let sse = "retry: 2000\n\nid: 1\ndata: {\"text\":\"a\"}\n\n: \n\nid: 2\ndata: {\"text\":\"b\"}\n\n"

    @Test func nothingWrittenIsBetweenEvents() {
        let boundary = EventBoundary(format: .eventStream)
        #expect(boundary.bytesToEventEnd(in: ByteBuffer(string: sse)) == 0)
    }

    @Test func serverSentEventsEndWithABlankLine() {
        let ends = Set([0, 13, 39, 43, 69])
        for slice in 1...sse.utf8.count {
            for stop in stops(sse, format: .eventStream, slice: slice) {
                #expect(ends.contains(stop), "slice \(slice): stop at \(stop)")
            }
        }
        // A slice that ends on the first newline of a blank line is not an event's end.
        var boundary = EventBoundary(format: .eventStream)
        boundary.wrote(ByteBuffer(string: "id: 1\ndata: x\n"))
        #expect(boundary.bytesToEventEnd(in: ByteBuffer(string: "\nid: 2\n\n")) == 1)
        boundary.wrote(ByteBuffer(string: "\n"))
        #expect(boundary.bytesToEventEnd(in: ByteBuffer(string: "id: 2\n\n")) == 0)
    }

    @Test func ndjsonObjectsEndWithANewline() {
        let text = "{\"a\":1}\n{\"b\":22}\n"
        for slice in 1...text.utf8.count {
            for stop in stops(text, format: .ndjson, slice: slice) { #expect([0, 8, 17].contains(stop)) }
        }
    }

    @Test func plainTextEntriesEndBeforeALineThatIsNotAContinuation() {
        let text = "2024-01-01 host a: one\n                   two\n2024-01-01 host a: three\n"
        let ends = [0, 46, 71]
        for slice in 1...text.utf8.count {
            for stop in stops(text, format: .plainText, slice: slice) { #expect(ends.contains(stop), "slice \(slice): \(stop)") }
        }
    }

    @Test func aBufferWithoutAnEndIsOneEventToItsLastByte() {
        var boundary = EventBoundary(format: .ndjson)
        boundary.wrote(ByteBuffer(string: "{\"a\":"))
        #expect(boundary.bytesToEventEnd(in: ByteBuffer(string: "12")) == 2)
    }
}
