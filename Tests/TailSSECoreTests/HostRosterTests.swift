import TailSSECore
import Testing

@Suite("Host roster")
struct HostRosterTests {
    private func host(_ name: String) -> ArraySlice<UInt8> { ArraySlice(name.utf8) }

    @Test("keeps each host once, sorted, and says when it changed")
    func distinctSorted() {
        var roster = HostRoster()
        do { let changed = roster.note(host("web-2")); #expect(changed == true) }
        do { let changed = roster.note(host("web-2")); #expect(changed == false) }
        do { let changed = roster.note(host("db")); #expect(changed == true) }
        do { let changed = roster.note(host("web-2")); #expect(changed == false) }
        do { let changed = roster.note(host("web-1")); #expect(changed == true) }
        do { let changed = roster.note(host("db")); #expect(changed == false) }
        #expect(roster.names == ["db", "web-1", "web-2"])
        #expect(roster.isComplete)
    }

    @Test("past the limit, later hosts are not kept and the roster says it is incomplete, once")
    func bounded() {
        var roster = HostRoster(limit: 3)
        for name in ["a", "b", "c"] { do { let changed = roster.note(host(name)); #expect(changed == true) } }
        #expect(roster.isComplete)
        do { let changed = roster.note(host("d")); #expect(changed == true) }
        #expect(!roster.isComplete)
        do { let changed = roster.note(host("e")); #expect(changed == false) }
        do { let changed = roster.note(host("a")); #expect(changed == false) }
        #expect(roster.names == ["a", "b", "c"])
    }

    @Test("a thousand hosts in interleaved runs")
    func many() {
        var roster = HostRoster()
        for round in 0..<3 {
            for index in 0..<1000 { roster.note(host("host-\((index * 7 + round) % 1000)")) }
        }
        #expect(roster.names.count == 1000)
        #expect(roster.isComplete)
        #expect(roster.names == (0..<1000).map { "host-\($0)" }.sorted())
    }
}
