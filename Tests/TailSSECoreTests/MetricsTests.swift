import NIOCore
import TailSSECore
import Testing

@Suite("/metrics text (MetricsExposition)")
struct MetricsExpositionTests {
    /// What a Prometheus registry emits: families in any order, no help texts.
    static let emitted = """
        # TYPE tailsse_source_lines_read_total counter
        tailsse_source_lines_read_total{source="secret"} 7
        tailsse_source_lines_read_total{source="app"} 3
        # TYPE tailsse_connections gauge
        tailsse_connections 2.0
        # TYPE tailsse_connections_refused_total counter
        tailsse_connections_refused_total{limit="total"} 1
        # TYPE tailsse_source_clients gauge
        tailsse_source_clients{source="secret"} 1.0
        tailsse_source_clients{source="app"} 0.0

        """

    @Test("families sorted by name, each with its HELP before its TYPE, samples sorted")
    func layout() {
        let text = MetricsExposition.render(Self.emitted, help: ["tailsse_connections": "Connections open now."], allowsSource: { _ in true })
        #expect(text == """
            # HELP tailsse_connections Connections open now.
            # TYPE tailsse_connections gauge
            tailsse_connections 2
            # TYPE tailsse_connections_refused_total counter
            tailsse_connections_refused_total{limit="total"} 1
            # TYPE tailsse_source_clients gauge
            tailsse_source_clients{source="app"} 0
            tailsse_source_clients{source="secret"} 1
            # TYPE tailsse_source_lines_read_total counter
            tailsse_source_lines_read_total{source="app"} 3
            tailsse_source_lines_read_total{source="secret"} 7

            """)
    }

    @Test("series of a source the reader may not read are left out; the others and unlabelled ones stay")
    func filtering() {
        let text = MetricsExposition.render(Self.emitted, help: [:], allowsSource: { $0 == "app" })
        #expect(!text.contains("secret"))
        #expect(text.contains("tailsse_source_lines_read_total{source=\"app\"} 3\n"))
        #expect(text.contains("tailsse_source_clients{source=\"app\"} 0\n"))
        #expect(text.contains("tailsse_connections 2\n"))
        #expect(text.contains("tailsse_connections_refused_total{limit=\"total\"} 1\n"))
    }

    @Test("whole numbers lose their .0; other values stay as written", arguments: [
        ("g 4.0", "g 4"), ("g{source=\"a\"} 12.0", "g{source=\"a\"} 12"), ("g 0.5", "g 0.5"), ("g 2.50", "g 2.50"),
        ("g 1e+06", "g 1e+06"), ("g -1.0", "g -1.0"), ("g NaN", "g NaN"), ("c_total 7", "c_total 7"), ("g .0", "g .0"),
    ])
    func wholeNumbers(sample: String, expected: String) {
        #expect(MetricsExposition.render("# TYPE g gauge\n\(sample)\n", help: [:], allowsSource: { _ in true }) == "# TYPE g gauge\n\(expected)\n")
    }

    @Test("a help text's backslashes and newlines are escaped")
    func helpEscaping() {
        let text = MetricsExposition.render("# TYPE a counter\na 1\n", help: ["a": "one\\two\nthree"], allowsSource: { _ in true })
        #expect(text.hasPrefix("# HELP a one\\\\two\\nthree\n# TYPE a counter\n"))
    }

    @Test("label values", arguments: [
        (#"m{source="app"} 1"#, "app"),
        (#"m{limit="total",source="a.b-c_d"} 1"#, "a.b-c_d"),
        (#"m{other="x\"source=\"no",source="yes"} 1"#, "yes"),
        (#"m{source="q\"uote\\d"} 1"#, "q\"uote\\d"),
        (#"m{resource="app"} 1"#, nil),
        (#"m 1"#, nil),
        (#"m{source="unterminated} 1"#, nil),
        (#"m{source=app} 1"#, nil),
    ] as [(String, String?)])
    func labelValues(line: String, expected: String?) {
        #expect(MetricsExposition.labelValue("source", inSample: Substring(line)) == expected)
    }

    @Test("a sample whose labels cannot be read is kept only if it names no source")
    func unreadableLabels() {
        let text = MetricsExposition.render("# TYPE m gauge\nm{source=\"x} 1\n", help: [:], allowsSource: { _ in false })
        #expect(text == "# TYPE m gauge\nm{source=\"x} 1\n")
    }
}

@Suite("process figures from /proc/self")
struct ProcessFiguresTests {
    @Test("resident memory is the second field of statm, in pages")
    func resident() {
        #expect(ProcessFigures.residentBytes(statm: "5724 1234 567 200 0 900 0\n", pageSize: 4096) == 1234 * 4096)
        #expect(ProcessFigures.residentBytes(statm: "5724\n", pageSize: 4096) == nil)
        #expect(ProcessFigures.residentBytes(statm: "", pageSize: 4096) == nil)
        #expect(ProcessFigures.residentBytes(statm: "1 x 3", pageSize: 4096) == nil)
    }
}

@Suite("counting what streams send (SentTally)")
struct SentTallyTests {
    @Test("take returns what was added since the last take")
    func take() {
        let tally = SentTally()
        tally.add(events: 3)
        tally.add(events: 2)
        tally.add(bytes: 100)
        tally.add(events: -1)
        let first = tally.take()
        #expect(first.events == 5 && first.bytes == 100)
        let second = tally.take()
        #expect(second.events == 0 && second.bytes == 0)
    }

    private static func log() -> EventLog<Int> {
        let log = EventLog<Int>(start: 0)
        log.append([
            LogRecord(from: 0, to: 1, event: .line(Array("one".utf8), id: "1")),
            LogRecord(from: 1, to: 2, event: .marker(.rotated, id: "r", message: "rotated")),
            LogRecord(from: 2, to: 3, event: nil),
            LogRecord(from: 3, to: 4, event: .line(Array("two".utf8), id: "4")),
        ])
        return log
    }

    @Test("a stream reading the shared log counts every event it encodes, once per batch", arguments: [
        (StreamFormat.eventStream, 3), (.ndjson, 3), (.plainText, 2),
    ] as [(StreamFormat, Int)])
    func cursorCounts(format: StreamFormat, expected: Int) async {
        let tally = SentTally()
        let encoder = EventEncoder(format: format, source: "app", tally: tally)
        let cursor = SharedLogCursor(log: Self.log(), start: 0, pending: [.marker(.reset, id: "0", message: "unknown id")])
        var buffer = ByteBuffer()
        guard case .done(.events) = await cursor.next(encoder: encoder, into: &buffer) else {
            Issue.record("no pending event")
            return
        }
        #expect(tally.take().events == (format == .plainText ? 0 : 1), "the pending reset (plain text writes no markers)")
        buffer.clear()
        guard case .done(.events) = await cursor.next(encoder: encoder, into: &buffer) else {
            Issue.record("no events from the log")
            return
        }
        #expect(tally.take().events == expected)
    }
}
