import TailSSECore
import Testing

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

@Suite("SHA-256 and HMAC")
struct SHA256Tests {
    @Test("FIPS 180-4 test vectors, and lengths around the block boundary")
    func vectors() {
        #expect(hex(SHA256.digest([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(SHA256.digest(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(SHA256.digest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(SHA256.digest([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        let lengths = Set((50...130).map { SHA256.digest([UInt8](repeating: 7, count: $0)) })
        #expect(lengths.count == 81)
    }

    @Test("RFC 4231 HMAC-SHA-256 test cases 1, 2 and 6 (key longer than a block)")
    func hmac() {
        #expect(hex(SHA256.hmac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(hex(SHA256.hmac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(hex(SHA256.hmac(key: [UInt8](repeating: 0xaa, count: 131), message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test("constant-time comparison")
    func constantTime() {
        #expect(SHA256.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!SHA256.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!SHA256.constantTimeEqual([1, 2, 3], [1, 2]))
        #expect(SHA256.constantTimeEqual([], []))
    }

    @Test("base64url without padding")
    func base64() {
        #expect(Base64URL.encode([]) == "")
        #expect(Base64URL.encode(Array("f".utf8)) == "Zg")
        #expect(Base64URL.encode(Array("fo".utf8)) == "Zm8")
        #expect(Base64URL.encode(Array("foo".utf8)) == "Zm9v")
        #expect(Base64URL.encode([0xfb, 0xff, 0xbf]) == "-_-_")
    }
}

@Suite("Token file")
struct TokenListTests {
    let all = "all-sources-token-0123456789abcdef"
    let app = "app-token-ABCDEFGHIJKLMNOP+/=="

    @Test("tokens, limited tokens, comments and blank lines")
    func parses() throws {
        let list = try TokenList(parsing: Array("# comment\n\n\(all)\r\n  \(app)\tapp  nginx \n   # indented comment\n".utf8))
        #expect(list.count == 2)
        #expect(list.grant(forToken: all)?.sources == nil)
        #expect(list.grant(forToken: app)?.sources == ["app", "nginx"])
        #expect(list.grant(forToken: app)?.allows("app") == true)
        #expect(list.grant(forToken: app)?.allows("journal") == false)
        #expect(list.grant(forToken: all + "x") == nil)
        #expect(list.grant(forToken: String(all.dropLast())) == nil)
        #expect(list.grant(forToken: "") == nil)
        #expect(list.namedSources == ["app", "nginx"])
    }

    @Test("a session value proves its token only, and a grant is found again after a reload")
    func sessions() throws {
        let list = try TokenList(parsing: Array("\(all)\n\(app) app\n".utf8))
        let session = TokenList.sessionValue(forToken: Array(all.utf8))
        #expect(session.count == 43 && !session.contains(all))
        #expect(list.grant(forSession: session)?.sources == nil)
        #expect(list.grant(forSession: TokenList.sessionValue(forToken: Array(app.utf8)))?.sources == ["app"])
        #expect(list.grant(forSession: all) == nil, "the token is not a session value")
        #expect(list.grant(forToken: session) == nil, "a session value is not a token")
        let grant = try #require(list.grant(forToken: app))
        let reloaded = try TokenList(parsing: Array("\(app) app nginx\n".utf8))
        #expect(reloaded.current(grant)?.sources == ["app", "nginx"])
        #expect(reloaded.current(try #require(list.grant(forToken: all))) == nil)
    }

    @Test("errors name the line and never the token", arguments: [
        ("short\n", "line 1: a token must be 16-512 characters long (this one has 5)"),
        ("\n# x\nabcdefghijklmnop\nabcdefghijklmnop app\n", "line 4: repeats the token of line 3"),
        ("abcdefghijklmnop ap/p\n", "line 1: word 2 is not a source name (1-64 characters of A-Z a-z 0-9 . _ -)"),
        ("abcdefghijklmnop app abcdefghijklmnop/q\n", "line 1: word 3 is not a source name (1-64 characters of A-Z a-z 0-9 . _ -)"),
        ("abcdefghijklmno!\n", "line 1: a token may hold only A-Z a-z 0-9 - . _ ~ + / and end in = signs"),
        ("abcdefghijklmn=op\n", "line 1: a token may hold only A-Z a-z 0-9 - . _ ~ + / and end in = signs"),
        ("================\n", "line 1: a token may hold only A-Z a-z 0-9 - . _ ~ + / and end in = signs"),
        ("abcdefghijklmnop\u{00e9}\n", "line 1: a token may hold only A-Z a-z 0-9 - . _ ~ + / and end in = signs"),
    ])
    func errors(text: String, message: String) {
        #expect(throws: TokenFileError.self) { try TokenList(parsing: Array(text.utf8)) }
        do {
            _ = try TokenList(parsing: Array(text.utf8))
        } catch {
            #expect(error.description == message)
            #expect(!error.description.contains("abcdefghijklmnop"))
        }
    }

    @Test("a file over 1 MiB is refused; an empty one holds no token")
    func sizes() throws {
        #expect(throws: TokenFileError.self) { try TokenList(parsing: [UInt8](repeating: UInt8(ascii: "#"), count: TokenList.maxFileBytes + 1)) }
        #expect(try TokenList(parsing: []).count == 0)
        #expect(try TokenList(parsing: [UInt8](repeating: 0x0A, count: 1000)).count == 0)
    }
}

@Suite("Failed attempts")
struct FailedAttemptLimiterTests {
    @Test("a burst of failures, then one per refill interval, per address")
    func tokenBucket() {
        var limiter = FailedAttemptLimiter(burst: 3, refill: .seconds(6))
        let start = ContinuousClock.now
        for _ in 0..<3 {
            #expect(limiter.retryAfter(for: "a", now: start) == nil)
            limiter.recordFailure(for: "a", now: start)
        }
        #expect(limiter.retryAfter(for: "a", now: start) == .seconds(6))
        #expect(limiter.retryAfter(for: "b", now: start) == nil)
        #expect(limiter.retryAfter(for: "a", now: start + .seconds(3)) == .seconds(3))
        #expect(limiter.retryAfter(for: "a", now: start + .seconds(6)) == nil)
        limiter.recordFailure(for: "a", now: start + .seconds(6))
        #expect(limiter.retryAfter(for: "a", now: start + .seconds(6)) == .seconds(6))
    }

    @Test("IPv6 clients are counted by their /64 network, IPv4 clients by address")
    func keys() {
        #expect(FailedAttemptLimiter.key(forAddress: "192.0.2.7") == "192.0.2.7")
        #expect(FailedAttemptLimiter.key(forAddress: "2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(FailedAttemptLimiter.key(forAddress: "2001:db8:1:2:bbbb:cccc:dddd:eeee") == "2001:db8:1:2::/64")
        #expect(FailedAttemptLimiter.key(forAddress: "2001:DB8::5") == "2001:db8:0:0::/64")
        #expect(FailedAttemptLimiter.key(forAddress: "::1") == "0:0:0:0::/64")
        #expect(FailedAttemptLimiter.key(forAddress: "::ffff:192.0.2.7") == "::ffff:192.0.2.7")
    }

    @Test("memory stays bounded however many addresses fail")
    func bounded() {
        var limiter = FailedAttemptLimiter(burst: 2, refill: .seconds(1), capacity: 100)
        let start = ContinuousClock.now
        for index in 0..<10_000 { limiter.recordFailure(for: "10.0.\(index / 256).\(index % 256)", now: start + .milliseconds(index)) }
        #expect(limiter.trackedAddresses <= 100)
    }
}

@Suite("Host and Origin checks")
struct HostAndOriginTests {
    @Test("loopback names and addresses, the arrival address and allowed names pass; others do not")
    func hosts() {
        let policy = HostPolicy(allowedNames: ["Logs.Example.org", "[2001:db8::5]"])
        for allowed in ["localhost", "LOCALHOST:8111", "localhost.", "app.localhost", "127.0.0.1", "127.9.8.7:1", "[::1]:8111", "[::1]",
                        "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "logs.example.org", "LOGS.EXAMPLE.ORG.:443", "[2001:db8::5]:8111"] {
            #expect(policy.allows(authority: allowed, localAddress: nil), "\(allowed)")
        }
        for refused in ["attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io", "128.0.0.1", "127.0.0", "127.0.0.1.5",
                        "[::2]", "[::1", "::1", "logs.example.org.evil", "evil.logs.example.org", "", ":8111", "a b", "x/y", "x@y",
                        "localhost:http", "0.0.0.0", "[::]", "10.0.0.5", "localhost..", ".localhost", "logs..example.org", "127.0.0.1.."] {
            #expect(!policy.allows(authority: refused, localAddress: nil), "\(refused)")
        }
        #expect(!policy.allows(authority: nil, localAddress: "127.0.0.1"))
        #expect(policy.allows(authority: "10.0.0.5:8111", localAddress: "10.0.0.5"))
        #expect(policy.allows(authority: "[fe80::1]:8111", localAddress: "fe80::1"))
        #expect(!policy.allows(authority: "10.0.0.6", localAddress: "10.0.0.5"))
    }

    @Test("same origin, listed origins with CORS, and everything else refused")
    func origins() throws {
        let policy = try OriginPolicy(allowedOrigins: ["https://dash.example.com:8443", "http://Grafana.example"])
        #expect(policy.decide(origin: nil, scheme: "http", authority: "127.0.0.1:8111") == .noOrigin)
        #expect(policy.decide(origin: "http://127.0.0.1:8111", scheme: "http", authority: "127.0.0.1:8111") == .sameOrigin)
        #expect(policy.decide(origin: "https://logs.example", scheme: "https", authority: "logs.example:443") == .sameOrigin)
        #expect(policy.decide(origin: "http://127.0.0.1:8111", scheme: "https", authority: "127.0.0.1:8111") == .refused)
        #expect(policy.decide(origin: "https://dash.example.com:8443", scheme: "http", authority: "x") == .allowed("https://dash.example.com:8443"))
        #expect(policy.decide(origin: "http://grafana.example:80", scheme: "http", authority: "x") == .allowed("http://grafana.example:80"))
        for refused in ["null", "https://dash.example.com", "http://dash.example.com:8443", "https://evil.example", "file://", "",
                        "https://dash.example.com:8443/path", "https://user@dash.example.com:8443"] {
            #expect(policy.decide(origin: refused, scheme: "http", authority: "127.0.0.1:8111") == .refused, "\(refused)")
        }
        #expect(throws: OriginPolicy.InvalidOrigin.self) { try OriginPolicy(allowedOrigins: ["dash.example.com"]) }
        #expect(throws: OriginPolicy.InvalidOrigin.self) { try OriginPolicy(allowedOrigins: ["https://x.example/"]) }
        #expect(throws: OriginPolicy.InvalidOrigin.self) { try OriginPolicy(allowedOrigins: ["https://x.example:99999"]) }
    }

    @Test("form fields are decoded, and broken encodings give nothing")
    func formFields() {
        #expect(FormFields.value(of: "token", in: Array("token=abc%2B%2Fdef%3D%3D".utf8)) == "abc+/def==")
        #expect(FormFields.value(of: "token", in: Array("a=1&token=x+y&token=z".utf8)) == "x y")
        #expect(FormFields.value(of: "token", in: Array("token".utf8)) == "")
        #expect(FormFields.value(of: "token", in: Array("tokens=1".utf8)) == nil)
        #expect(FormFields.value(of: "token", in: Array("token=%zz".utf8)) == nil)
        #expect(FormFields.value(of: "token", in: Array("token=%f".utf8)) == nil)
        #expect(FormFields.value(of: "token", in: Array("token=%ff".utf8)) == nil)
    }
}
