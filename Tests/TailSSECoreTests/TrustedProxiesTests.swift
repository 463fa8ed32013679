import TailSSECore
import Testing

@Suite("Trusted proxies and X-Forwarded-For")
struct TrustedProxiesTests {
    let proxies: TrustedProxies

    init() throws {
        proxies = try TrustedProxies(parsing: ["127.0.0.1", "10.0.0.0/8", "fd00::/8"])
    }

    @Test("without trusted proxies the header is ignored")
    func noProxies() {
        #expect(TrustedProxies().client(peer: "127.0.0.1", forwardedFor: ["203.0.113.7"]) == "127.0.0.1")
    }

    @Test("from a peer that is not a trusted proxy the header is ignored")
    func untrustedPeer() {
        #expect(proxies.client(peer: "198.51.100.2", forwardedFor: ["203.0.113.7"]) == "198.51.100.2")
        #expect(proxies.client(peer: nil, forwardedFor: ["203.0.113.7"]) == nil)
    }

    @Test("the right-most address that is not a trusted proxy is the client; what a client wrote itself is not believed")
    func rightMostUntrusted() {
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["203.0.113.7"]) == "203.0.113.7")
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["198.51.100.66, 203.0.113.7"]) == "203.0.113.7")
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["198.51.100.66, 203.0.113.7, 10.1.2.3"]) == "203.0.113.7")
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["198.51.100.66", "203.0.113.7, 10.1.2.3"]) == "203.0.113.7")
    }

    @Test("a malformed entry ends the walk at the proxy that appended the entries to its right")
    func malformed() {
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["unknown"]) == "127.0.0.1")
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["203.0.113.7, garbage, 10.9.9.9"]) == "10.9.9.9")
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: []) == "127.0.0.1")
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["1.2.3.4/8"]) == "127.0.0.1")
    }

    @Test("ports, brackets, IPv6 and IPv4-mapped forms")
    func forms() {
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["203.0.113.7:5000"]) == "203.0.113.7")
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["[2001:db8::1]:443"]) == "2001:db8::1")
        #expect(proxies.client(peer: "127.0.0.1", forwardedFor: ["2001:DB8:0::1"]) == "2001:db8::1")
        #expect(proxies.client(peer: "::ffff:127.0.0.1", forwardedFor: ["::ffff:203.0.113.7"]) == "203.0.113.7")
        #expect(proxies.client(peer: "fd00::5", forwardedFor: ["203.0.113.7, fd12::1"]) == "203.0.113.7")
    }

    @Test("networks: prefix lengths are honoured, bad values refused")
    func networks() throws {
        #expect(proxies.contains("10.255.0.1"))
        #expect(!proxies.contains("11.0.0.1"))
        #expect(proxies.contains("fdff::1"))
        #expect(!proxies.contains("fe80::1"))
        let narrow = try TrustedProxies(parsing: ["192.168.1.128/25"])
        #expect(narrow.contains("192.168.1.200"))
        #expect(!narrow.contains("192.168.1.100"))
        for bad in ["", "localhost", "10.0.0.0/33", "10.0.0.0/", "::1/129", "1.2.3", "10.0.0.0/8/8", "1.2.3.4 "] {
            #expect(throws: TrustedProxies.ParseError.self) { try TrustedProxies(parsing: [bad]) }
        }
    }
}
