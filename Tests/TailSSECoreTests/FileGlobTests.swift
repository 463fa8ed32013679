import TailSSECore
import Testing

@Suite("The files of a glob source")
struct FileGlobTests {
    @Test("only the last component may be a pattern; the directory is literal and absolute")
    func parsing() throws {
        let glob = try FileGlob(path: "/var/log/app/*.log")
        #expect(glob.directory == "/var/log/app")
        #expect(glob.pattern == "*.log")
        #expect(glob.path(of: "a.log") == "/var/log/app/a.log")
        #expect(glob.description == "/var/log/app/*.log")
        #expect(try FileGlob(path: "/*.log").path(of: "x.log") == "/x.log")
        for bad in ["/var/log/*/app.log", "relative/*.log", "/var/log/app/", "/var/l?g/app.log", "/var/log/app/plain.log"] {
            #expect(throws: FileGlob.Problem.self, "\(bad)") { try FileGlob(path: bad) }
        }
        #expect(FileGlob.isGlob("/var/log/*.log") && FileGlob.isGlob("/x/a?.log") && FileGlob.isGlob("/x/[ab].log"))
        #expect(!FileGlob.isGlob("/var/log/syslog"))
    }

    @Test("a file is a name the pattern matches, never a hidden file, a compressed one or one not fit for an id")
    func admittedNames() throws {
        let glob = try FileGlob(path: "/logs/*.log")
        let names = ["a.log", "b.log", ".hidden.log", "c.log.gz", "notes.txt", "with space.log", "ünï.log", "a.log.1", "x.log~", String(repeating: "n", count: 61) + ".log"]
        #expect(glob.files(among: names) == ["a.log", "b.log"])
        let brackets = try FileGlob(path: "/logs/web-[0-9].log")
        #expect(brackets.files(among: ["web-1.log", "web-x.log", "web-12.log", "web-2.log"]) == ["web-1.log", "web-2.log"])
    }

    @Test("under a pattern that matches rotated names too, they are read as the past of their file, not as files")
    func rotatedGenerationsAreNotFiles() throws {
        let glob = try FileGlob(path: "/logs/*")
        let names = ["app.log", "app.log.1", "app.log.2.gz", "app.log-20261207", "app.log.2026-12-07", "app.log.bak", "other", "other.3", "app"]
        #expect(glob.files(among: names) == ["app", "app.log", "app.log.bak", "other"])
        // A rotated name whose base the pattern does not match is a file of its own.
        let numbered = try FileGlob(path: "/logs/*.1")
        #expect(numbered.files(among: ["app.log.1", "app.log"]) == ["app.log.1"])
    }
}
