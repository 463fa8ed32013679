import TailSSECore
import Testing

@Suite("tail= parameter (TailStart)")
struct TailStartTests {
    @Test("valid values", arguments: [
        ("0", TailStart.last(0)),
        ("1", .last(1)),
        ("10", .last(10)),
        ("007", .last(7)),
        ("123456789012345678", .last(123_456_789_012_345_678)),
        ("all", .all),
    ])
    func valid(parameter: String, expected: TailStart) {
        #expect(TailStart(parameter: parameter) == expected)
    }

    @Test("invalid values are rejected (a 400, never a guess)", arguments: [
        "", " ", "-1", "+1", " 1", "1 ", "1.5", "1e3", "0x10", "ALL", "All", "all ", " all", "al",
        "1234567890123456789", "99999999999999999999999", "\u{0661}", "\u{FF11}", "1\u{0}", "1\n", "ten",
    ])
    func invalid(parameter: String) {
        #expect(TailStart(parameter: parameter) == nil)
    }

    @Test("a stream request defaults to the last 10 lines, not resuming")
    func requestDefault() {
        let request = StreamRequest()
        #expect(request.tail == .last(10))
        #expect(request.resumeID == nil)
    }
}
