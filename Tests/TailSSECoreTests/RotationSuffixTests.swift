import TailSSECore
import Testing

@Suite("Rotation names")
struct RotationSuffixTests {
    @Test("the rotation forms of logrotate, syslog daemons and applications are generations", arguments: [
        "app.log.0", "app.log.1", "app.log.2", "app.log.10", "app.log.999999",
        "app.log-20250101", "app.log-2025010123", "app.log-20250101-1735689600",
        "app.log.20250101", "app.log.2025-01-01", "app.log.2025-01-01_23",
        "app.log.2025-01-01_23-59", "app.log.2025-01-01_23-59-59",
    ])
    func accepted(name: String) {
        #expect(RotationSuffix(name: name, rotating: "app.log") != nil)
    }

    @Test("other names sharing the prefix are not", arguments: [
        "app.log", "app.log.", "app.log-", "app.log~", "app.log.bak", "app.logins.txt", "app.log1",
        "app.log.1.gz", "app.log.1~", "app.log.01", "app.log.1234567", "app.log.-1", "app.log.1 ",
        "app.log..1", "app.log.x1", "app.log-2025010", "app.log-202501011", "app.log-20251301",
        "app.log-20250132", "app.log-20250100", "app.log-2025010124", "app.log-20250101-",
        "app.log-20250101-12345678901234", "app.log-20250101.gz", "app.log.2025-1-01",
        "app.log.2025-01-01_24", "app.log.2025-01-01_23-60", "app.log.2025-01-01_2", "app.log.2025-01-01-23",
        "app.log.2025-01-01.gz", "app.log.2025-01-01_23-59-59-59", "xapp.log.1", ".app.log.1", "app.lo.1",
        "app.log/1", "app.log.１",
    ])
    func refused(name: String) {
        #expect(RotationSuffix(name: name, rotating: "app.log") == nil)
    }

    @Test("an empty base name has no generations")
    func emptyBase() {
        #expect(RotationSuffix(name: ".1", rotating: "") == nil)
    }

    @Test("numbered generations: the higher the number, the older")
    func numberedOrder() throws {
        let one = try #require(RotationSuffix(name: "app.log.1", rotating: "app.log"))
        let two = try #require(RotationSuffix(name: "app.log.2", rotating: "app.log"))
        let ten = try #require(RotationSuffix(name: "app.log.10", rotating: "app.log"))
        #expect(two.isOlder(than: one) == true)
        #expect(one.isOlder(than: two) == false)
        #expect(ten.isOlder(than: two) == true)
        #expect(one.isOlder(than: one) == false)
        #expect(one.scheme == .numbered)
    }

    @Test("dated generations: the earlier, the older, whatever the form")
    func datedOrder() throws {
        let names = [
            "app.log-20241231", "app.log.2025-01-01", "app.log-20250101-100", "app.log-20250101-200",
            "app.log.2025-01-01_05", "app.log-2025010106", "app.log.2025-01-01_06-30",
            "app.log.2025-01-01_06-30-01", "app.log.20250102",
        ]
        let suffixes = try names.map { try #require(RotationSuffix(name: $0, rotating: "app.log")) }
        for (index, suffix) in suffixes.enumerated() {
            #expect(suffix.scheme == .dated)
            for later in suffixes[(index + 1)...] {
                #expect(suffix.isOlder(than: later) == true, "\(names[index])")
                #expect(later.isOlder(than: suffix) == false)
            }
        }
    }

    @Test("numbered and dated names say nothing about each other's order")
    func mixedSchemes() throws {
        let numbered = try #require(RotationSuffix(name: "app.log.1", rotating: "app.log"))
        let dated = try #require(RotationSuffix(name: "app.log-20250101", rotating: "app.log"))
        #expect(numbered.isOlder(than: dated) == nil)
        #expect(dated.isOlder(than: numbered) == nil)
    }

    @Test("the base name is matched byte for byte, special characters included")
    func specialBase() {
        #expect(RotationSuffix(name: "a.b-c.1", rotating: "a.b-c") != nil)
        #expect(RotationSuffix(name: "a.b-c-20250101", rotating: "a.b-c") != nil)
        #expect(RotationSuffix(name: "a.b-c.1", rotating: "a.b") == nil)
        #expect(RotationSuffix(name: "syslog.1", rotating: "syslog") != nil)
    }

    @Test("random suffixes: no crash; an accepted one is digits and separators only, and orders consistently")
    func randomSuffixes() {
        var rng = SplitMix64(seed: 0x5EED)
        let alphabet = Array("0123456789.-_x~ ".utf8)
        var accepted: [RotationSuffix] = []
        for _ in 0..<20_000 {
            let length = Int(rng.next() % 24)
            let suffix = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let name = "app.log" + String(decoding: suffix, as: UTF8.self)
            guard let parsed = RotationSuffix(name: name, rotating: "app.log") else { continue }
            #expect(suffix.allSatisfy { Array("0123456789.-_".utf8).contains($0) }, "\(name)")
            accepted.append(parsed)
        }
        #expect(accepted.count > 20)
        for (a, b) in zip(accepted, accepted.dropFirst()) {
            if let older = a.isOlder(than: b), let newer = b.isOlder(than: a) {
                #expect(!(older && newer))
                #expect(older || newer || a == b)
            }
        }
    }
}
