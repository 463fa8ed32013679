import NIOCore
import TailSSECore
import Testing

@Suite("grep= patterns")
struct GrepPatternTests {
    private func matches(_ pattern: String, _ line: String, case letterCase: GrepPattern.Case = .sensitive) throws -> Bool {
        try GrepPattern(pattern, case: letterCase).matches(Array(line.utf8))
    }

    @Test("PCRE2 syntax, anywhere in the line, as grep -E and journalctl --grep take it")
    func syntax() throws {
        #expect(try matches("timeout", "GET /a: upstream timeout after 30s"))
        #expect(try !matches("timeout", "GET /a: 200"))
        #expect(try matches("^GET /[a-z]+: (2|3)0[0-9]$", "GET /a: 302"))
        #expect(try matches(#"\bid=\d{3}\b"#, "job id=123 done"))
        #expect(try !matches(#"\bid=\d{3}\b"#, "job id=1234 done"))
        #expect(try matches("é+", "café"))
        #expect(try matches("^$", ""))
    }

    @Test("letter case: sensitive, insensitive, or smart (insensitive unless the pattern has a capital)")
    func letterCase() throws {
        #expect(try !matches("error", "ERROR: disk"))
        #expect(try matches("error", "ERROR: disk", case: .insensitive))
        #expect(try matches("error", "ERROR: disk", case: .smart))
        #expect(try !matches("Error", "ERROR: disk", case: .smart))
        #expect(try matches("(?i)error", "ERROR: disk"))
    }

    @Test("invalid UTF-8 and NUL bytes in a line are matched, not refused")
    func anyBytes() throws {
        let grep = try GrepPattern("end")
        #expect(grep.matches([0xFF, 0xFE, 0x00, 0x41] + Array(" the end".utf8)))
        #expect(!grep.matches([0xC3, 0x28, 0x00]))
    }

    @Test("a bad pattern is refused with PCRE2's message and where")
    func badPatterns() {
        for (pattern, words) in [
            ("(unclosed", "missing closing parenthesis"), ("a{2,1}", "out of order"), ("", "empty"),
            (String(repeating: "a", count: 1025), "longer than"), (#"a\Cb"#, "\\C is disabled"),
        ] {
            #expect {
                _ = try GrepPattern(pattern)
            } throws: { error in
                (error as? GrepPattern.Problem)?.description.contains(words) == true
            }
        }
    }

    @Test("a pattern cannot raise the match limit with (*LIMIT_MATCH=…)")
    func inlineLimitsOnlyLower() throws {
        let grep = try GrepPattern("(*LIMIT_MATCH=100000000)(a+)+$")
        #expect(!grep.matches(Array(repeating: UInt8(ascii: "a"), count: 5000) + [UInt8(ascii: "b")]))
        #expect(grep.linesOverLimit == 1)
    }

    @Test("a catastrophic pattern stops at the match limit and counts as no match")
    func catastrophicBacktracking() throws {
        let grep = try GrepPattern("(a+)+$")
        let line = Array(repeating: UInt8(ascii: "a"), count: 5000) + [UInt8(ascii: "b")]
        #expect(!grep.matches(line))
        #expect(grep.linesOverLimit == 1)
        #expect(grep.matches(Array("aaa".utf8)))
    }

    @Test("an encoder with a pattern writes only the matching lines, and markers always")
    func encoderFilters() throws {
        let encoder = EventEncoder(format: .ndjson, source: "app", grep: try GrepPattern("keep"))
        var buffer = ByteBuffer()
        encoder.encode(.line(Array("keep me".utf8), id: "1"), into: &buffer)
        encoder.encode(.line(Array("drop me".utf8), id: "2"), into: &buffer)
        encoder.encode(.line(Array("a keep-piece".utf8), id: "3", continues: true), into: &buffer)
        encoder.encode(.marker(.rotated, id: "4", message: "new file"), into: &buffer)
        let lines = Array(buffer.readableBytesView).split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        #expect(lines == [
            #"{"id":"1","source":"app","text":"keep me"}"#,
            #"{"id":"3","source":"app","text":"a keep-piece"}"#,
            #"{"id":"4","event":"rotated","source":"app","text":"new file"}"#,
        ])
    }
}
