import TailSSECore
import Testing

@Suite struct ReadPaceTests {
    @Test func aClientThatAsksAgainSoonGetsLargeReadsAndOneThatDoesNotSmallOnes() {
        var pace = ReadPace()
        let start = ContinuousClock.now
        // Nothing handed out yet (a new stream, or one back from the push path): small.
        #expect(!pace.keepsUp(at: start))
        #expect(pace.bytes(at: start) == ReadPace.smallBytes)
        pace.handedOut(at: start)
        #expect(pace.bytes(at: start + .milliseconds(5)) == ReadPace.largeBytes)
        #expect(pace.bytes(at: start + ReadPace.keepingUp) == ReadPace.smallBytes)
        #expect(pace.bytes(at: start + .seconds(2)) == ReadPace.smallBytes)
        pace.handedOut(at: start + .seconds(2))
        #expect(pace.keepsUp(at: start + .seconds(2) + .milliseconds(1)))
        #expect(ReadPace.smallBytes <= 64 << 10, "a slow client holds at most 64 KiB read ahead of it")
    }
}
