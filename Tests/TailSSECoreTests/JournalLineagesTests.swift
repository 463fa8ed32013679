import TailSSECore
import Testing

@Suite("Which journal directories merge hosts by time")
struct JournalLineagesTests {
    @Test("one host (with its archives), or any local journal: no notice")
    func oneLineage() {
        #expect(JournalLineages.splitHostNotice(fileNames: ["remote-10.0.0.2.journal", "remote-10.0.0.2@0123-1-2.journal"]) == nil)
        #expect(JournalLineages.splitHostNotice(fileNames: ["system.journal", "user-1000.journal", "system@abc-1-2.journal"]) == nil)
        #expect(JournalLineages.splitHostNotice(fileNames: ["all.journal", "all@0123-1-2.journal", "remote-x.journal~"]) == nil)
    }

    @Test("files of two hosts written separately: a notice naming the setting that avoids skipped entries")
    func twoHosts() {
        let notice = JournalLineages.splitHostNotice(fileNames: ["remote-a.journal", "remote-b@0123-1-2.journal", "remote-a@4567-1-2.journal"])
        #expect(notice?.contains("2 hosts") == true)
        #expect(notice?.contains("SplitMode=none") == true)
    }
}
