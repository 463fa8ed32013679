import Foundation
import NIOCore
import TailSSECore
import Testing

@Suite("Journal timestamps")
struct JournalTimeTests {
    private func text(_ write: (inout ByteBuffer) -> Void) -> String {
        var buffer = ByteBuffer()
        write(&buffer)
        return String(buffer: buffer)
    }

    @Test("RFC 3339 with microseconds matches an independent formatter over many dates")
    func rfc3339() {
        var rng = SplitMix64(seed: 3339)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        for _ in 0..<2000 {
            let micros = UInt64(rng.int(0...4_102_444_800_000_000))
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(micros / 1_000_000)))
                + "." + String(format: "%06d", Int(micros % 1_000_000)) + "Z"
            #expect(text { JournalTime.writeRFC3339(microseconds: micros, to: &$0) } == expected)
        }
    }

    @Test("short-iso carries the offset it is given, as journalctl prints it")
    func shortISO() {
        let micros: UInt64 = 1_795_634_516_337_419
        #expect(text { JournalTime.writeShortISO(microseconds: micros, utcOffsetSeconds: 0, to: &$0) } == "2026-11-25T19:21:56+0000")
        #expect(text { JournalTime.writeShortISO(microseconds: micros, utcOffsetSeconds: 3600, to: &$0) } == "2026-11-25T20:21:56+0100")
        #expect(text { JournalTime.writeShortISO(microseconds: micros, utcOffsetSeconds: -(5 * 3600 + 1800), to: &$0) } == "2026-11-25T13:51:56-0530")
    }

    @Test("civil dates around leap days and the epoch")
    func civilDates() {
        #expect(JournalTime.civilDate(daysSinceEpoch: 0) == (1970, 1, 1))
        #expect(JournalTime.civilDate(daysSinceEpoch: 11_016) == (2000, 2, 29))
        #expect(JournalTime.civilDate(daysSinceEpoch: 19_782) == (2024, 2, 29))
        #expect(JournalTime.civilDate(daysSinceEpoch: -1) == (1969, 12, 31))
    }
}

@Suite("Journal filters")
struct JournalFilterTests {
    private func filter(_ query: [(String, String)]) throws -> JournalFilter {
        try JournalFilter(parameters: query.map { (name: $0.0, value: $0.1) }, currentBoot: { "0123456789abcdef0123456789abcdef" })
    }

    private func entry(_ items: String...) -> JournalFields { JournalFields(items) }

    @Test("same field ORs, different fields AND")
    func semantics() throws {
        let f = try filter([("SYSLOG_IDENTIFIER", "a"), ("SYSLOG_IDENTIFIER", "b"), ("_HOSTNAME", "h")])
        #expect(f.matches(entry("SYSLOG_IDENTIFIER=a", "_HOSTNAME=h")))
        #expect(f.matches(entry("SYSLOG_IDENTIFIER=b", "_HOSTNAME=h")))
        #expect(!f.matches(entry("SYSLOG_IDENTIFIER=c", "_HOSTNAME=h")))
        #expect(!f.matches(entry("SYSLOG_IDENTIFIER=a", "_HOSTNAME=x")))
        #expect(!f.matches(entry("SYSLOG_IDENTIFIER=a")))
        #expect(try filter([]).matches(entry()))
    }

    @Test("priority is that level and more urgent, by number or name")
    func priority() throws {
        for value in ["3", "err", "ERR"] {
            let f = try filter([("priority", value)])
            #expect((0...3).allSatisfy { f.matches(entry("PRIORITY=\($0)")) })
            #expect(!(4...7).contains { f.matches(entry("PRIORITY=\($0)")) })
            #expect(!f.matches(entry("MESSAGE=no priority")))
        }
        for bad in ["8", "-1", "", "loud", "3.0", "03"] {
            #expect(throws: JournalFilter.Problem.self) { try filter([("priority", bad)]) }
        }
    }

    @Test("unit takes the unit's own messages and systemd's messages about it")
    func unit() throws {
        let f = try filter([("unit", "ssh")])
        #expect(f.matches(entry("_SYSTEMD_UNIT=ssh.service")))
        #expect(f.matches(entry("_PID=1", "UNIT=ssh.service")))
        #expect(!f.matches(entry("_PID=2", "UNIT=ssh.service")))
        #expect(!f.matches(entry("_SYSTEMD_UNIT=cron.service")))
        #expect(try filter([("unit", "x.timer")]).matches(entry("_SYSTEMD_UNIT=x.timer")))
        #expect(f.matchItems == [[["_SYSTEMD_UNIT=ssh.service"], ["UNIT=ssh.service", "_PID=1"]].map { $0.map { Array($0.utf8) } }])
    }

    @Test("boot: current, or an id with or without dashes")
    func boot() throws {
        #expect(try filter([("boot", "current")]).matches(entry("_BOOT_ID=0123456789abcdef0123456789abcdef")))
        #expect(try filter([("boot", "01234567-89AB-CDEF-0123-456789ABCDEF")]).matches(entry("_BOOT_ID=0123456789abcdef0123456789abcdef")))
        #expect(throws: JournalFilter.Problem.self) { try filter([("boot", "-1")]) }
        #expect(throws: JournalFilter.Problem.self) {
            try JournalFilter(parameters: [(name: "boot", value: "current")], currentBoot: { nil })
        }
    }

    @Test("field names: A-Z 0-9 _, not address fields, not lower case")
    func fieldNames() throws {
        #expect(try filter([("CUSTOM_2", "v")]).matches(entry("CUSTOM_2=v")))
        for bad in ["lower", "__CURSOR", "2ABC", "A-B", "", String(repeating: "A", count: 65), "ÄB"] {
            #expect(throws: JournalFilter.Problem.self) { try filter([(bad, "v")]) }
        }
    }

    @Test("values are matched as exact bytes, including '=' and empty values")
    func exactValues() throws {
        #expect(try filter([("F", "a=b")]).matches(entry("F=a=b")))
        #expect(!(try filter([("F", "a")]).matches(entry("F=a=b"))))
        #expect(try filter([("F", "")]).matches(entry("F=")))
        #expect(!(try filter([("F", "")]).matches(entry("G="))))
    }
}

@Suite("Journal entry encoding")
struct JournalEntryEncodingTests {
    private let entry = JournalEntry(
        cursor: "s=abc;i=1f;b=0f;m=2a;t=5f;x=9", realtime: 1_795_634_516_337_419,
        message: Array("line one\nline \"two\"\u{0}".utf8) + [0xFF], priority: 3, unit: Array("ssh.service".utf8),
        identifier: Array("sshd".utf8), pid: Array("42".utf8), host: Array("web1".utf8))

    private func encode(_ format: StreamFormat, _ entry: JournalEntry, offset: Int = 0) -> String {
        var buffer = ByteBuffer()
        EventEncoder(format: format, source: "journal", utcOffset: { _ in offset }).encode(.journal(entry), into: &buffer)
        return String(buffer: buffer)
    }

    @Test("SSE: the cursor is the id, one data line with every member")
    func sse() throws {
        let text = encode(.eventStream, entry)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 4 && lines[0] == "id: s=abc;i=1f;b=0f;m=2a;t=5f;x=9" && lines[2] == "" && lines[3] == "")
        let object = try parseJSONObject(Array(lines[1].dropFirst("data: ".count).utf8))
        #expect(object == [
            "source": .string("journal"), "text": .string("line one\nline \"two\"\u{0}\u{FFFD}"),
            "time": .string("2026-11-25T19:21:56.337419Z"), "priority": .integer(3), "unit": .string("ssh.service"),
            "identifier": .string("sshd"), "pid": .integer(42), "host": .string("web1"),
        ])
    }

    @Test("NDJSON: the same object with its id; absent fields are left out")
    func ndjson() throws {
        let bare = JournalEntry(cursor: "c", realtime: 0, message: Array("m".utf8), pid: Array("not a number".utf8))
        let text = encode(.ndjson, bare)
        #expect(text.hasSuffix("\n") && text.filter { $0 == "\n" }.count == 1)
        #expect(try parseJSONObject(Array(text.dropLast().utf8)) == [
            "id": .string("c"), "source": .string("journal"), "text": .string("m"), "time": .string("1970-01-01T00:00:00.000000Z"),
            "pid": .string("not a number"),
        ])
    }

    @Test("plain text: short-iso, continuation lines indented under the message")
    func plain() {
        let text = encode(.plainText, entry, offset: 3600)
        let prefix = "2026-11-25T20:21:56+0100 web1 sshd[42]: "
        #expect(text == prefix + "line one\n" + String(repeating: " ", count: prefix.utf8.count) + "line \"two\"\u{0}\u{FFFD}\n")
        let anonymous = JournalEntry(cursor: "c", realtime: 0, message: Array("hi\n".utf8))
        #expect(encode(.plainText, anonymous) == "1970-01-01T00:00:00+0000 unknown: hi\n")
    }

    @Test("entries built from sd_journal items pick the shown fields and keep all for filters")
    func fromItems() {
        let items = ["_COMM=bash", "MESSAGE=hello", "PRIORITY=9", "SYSLOG_PID=7", "_HOSTNAME=h", "CUSTOM=x"].map { Array($0.utf8) }
        let entry = items.withUnsafeRawBuffers { JournalEntry(cursor: "c", realtime: 1, items: $0, keepingFields: true) }
        #expect(Array(entry.message) == Array("hello".utf8) && entry.priority == nil && entry.identifier.map(Array.init) == Array("bash".utf8))
        #expect(entry.pid.map(Array.init) == Array("7".utf8) && entry.host.map(Array.init) == Array("h".utf8) && entry.unit == nil)
        #expect(entry.fields == JournalFields(["_COMM=bash", "MESSAGE=hello", "PRIORITY=9", "SYSLOG_PID=7", "_HOSTNAME=h", "CUSTOM=x"]))
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with every element's bytes as raw buffers (as sd_journal hands them out).
    fileprivate func withUnsafeRawBuffers<R>(_ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        var pointers: [UnsafeMutableRawBufferPointer] = []
        defer { pointers.forEach { $0.deallocate() } }
        for element in self {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: element.count, alignment: 1)
            copy.copyBytes(from: element)
            pointers.append(copy)
        }
        return body(pointers.map { UnsafeRawBufferPointer($0) })
    }
}

@Suite("Fan-out pacing")
struct FanOutPacingTests {
    @Test("no pause for few clients, growing with clients, capped")
    func pacing() {
        #expect(FanOutPacing.pauseMicroseconds(waking: 0) == 0)
        #expect(FanOutPacing.pauseMicroseconds(waking: 1) == 0)
        #expect(FanOutPacing.pauseMicroseconds(waking: 4) == 0)
        #expect(FanOutPacing.pauseMicroseconds(waking: 100) == 4_000)
        #expect(FanOutPacing.pauseMicroseconds(waking: 10_000) == FanOutPacing.maximumMicroseconds)
        let pauses = (0...1000).map { FanOutPacing.pauseMicroseconds(waking: $0) }
        #expect(zip(pauses, pauses.dropFirst()).allSatisfy { $0 <= $1 })
        // Pushed clients cost a write, not a wake-up.
        #expect(FanOutPacing.pauseMicroseconds(waking: 0, pushed: 100) == 2_000)
        #expect(FanOutPacing.pauseMicroseconds(waking: 50, pushed: 50) == 3_000)
        #expect(FanOutPacing.pauseMicroseconds(waking: 0, pushed: 5) == 0)
        #expect(FanOutPacing.pauseMicroseconds(waking: 10_000, pushed: 10_000) == FanOutPacing.maximumMicroseconds)
    }

    @Test("a log counts the clients an append wakes: waiting now, or woken by the last append")
    func wakingClients() async {
        let log = EventLog<Int>(start: 0)
        log.append([LogRecord(from: 0, to: 1, event: .line(Array("a".utf8), id: "1"))])
        // A client that is behind reads at its own pace: it holds a token but does not wait.
        _ = log.makeWaitToken()
        let tokens = [log.makeWaitToken(), log.makeWaitToken()]
        #expect(log.wakingCount == 0)
        let waits = tokens.map { token in Task { await log.wait(after: 1, token: token) } }
        let deadline = ContinuousClock.now + .seconds(10)
        while log.wakingCount < 2, ContinuousClock.now < deadline { await Task.yield() }
        #expect(log.wakingCount == 2)
        log.append([LogRecord(from: 1, to: 2, event: .line(Array("b".utf8), id: "2"))])
        for wait in waits { #expect(await wait.value == .appended) }
        // None waits again yet: the next append is still expected to wake the two.
        #expect(log.wakingCount == 2)
        log.append([LogRecord(from: 2, to: 3, event: .line(Array("c".utf8), id: "3"))])
        #expect(log.wakingCount == 0)
    }
}
