import Foundation
import NIOCore
import TailSSECore
import Testing

/// Seeded fuzzing of every parser a request or a file feeds: the corpus in `fuzz/corpus/TARGET/`
/// mutated at random (bit flips, byte insertions and deletions, splices of other seeds, repeats,
/// truncations). Each target checks what must hold for any input — a parse is exact or refused,
/// outputs stay proportional to inputs, errors never echo secrets — and a crash or hang fails the
/// run. `make test` runs a short run; `make fuzz` sets `TAILSSE_FUZZ_ITERATIONS` for a long one
/// (and `TAILSSE_FUZZ_SEED` to vary it).
@Suite("Fuzzing the parsers", .timeLimit(.minutes(20)))
struct FuzzTests {
    static let iterations = Int(ProcessInfo.processInfo.environment["TAILSSE_FUZZ_ITERATIONS"] ?? "") ?? 4000
    static let seed = UInt64(ProcessInfo.processInfo.environment["TAILSSE_FUZZ_SEED"] ?? "") ?? 20261202

    @Test("file ids: parsed exactly as printed, or refused")
    func fileIDs() {
        fuzz("file-id") { text in
            guard let id = try? FileEventID(parsing: text) else { return }
            #expect(id.description == text, "an accepted id prints as given: \(text.debugDescription)")
        }
    }

    @Test("composite ids: parsed parts print back to an equal id")
    func compositeIDs() {
        fuzz("composite-id") { text in
            guard let id = try? CompositeEventID(parsing: text) else { return }
            let again = try? CompositeEventID(parsing: id.description)
            #expect(again?.parts.map(\.source) == id.parts.map(\.source) && again?.parts.map(\.id) == id.parts.map(\.id), "\(text.debugDescription)")
            #expect(id.parts.count <= text.utf8.count)
        }
    }

    @Test("token files: a list or an error that names a line and no token")
    func tokenFiles() {
        fuzz("token-file") { text in
            do throws(TokenFileError) {
                let list = try TokenList(parsing: Array(text.utf8))
                #expect(list.count <= text.utf8.count / 16 + 1)
            } catch {
                #expect(error.description.utf8.count < 200)
                for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) where word.utf8.count >= 16 {
                    #expect(!error.description.contains(word), "the error echoes a token-like word")
                }
            }
        }
    }

    @Test("query parameters: tail, journal filters and per-source names")
    func queries() {
        fuzz("query") { text in
            let parameters = text.split(separator: "&", omittingEmptySubsequences: false).map { pair -> (name: String, value: String) in
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }
            for (name, value) in parameters {
                if let tail = TailStart(parameter: value), case .last(let count) = tail { #expect(count >= 0) }
                _ = SourceName.isValid(name.utf8)
            }
            if let filter = try? JournalFilter(parameters: parameters.filter { $0.name != "tail" }, currentBoot: { "0123456789abcdef0123456789abcdef" }) {
                #expect(filter.clauses.count <= parameters.count + 1)
            }
        }
    }

    @Test("Accept headers always pick one of the three formats")
    func acceptHeaders() {
        fuzz("accept") { text in
            let format = StreamFormat.negotiate(accept: text)
            #expect([.eventStream, .ndjson, .plainText].contains(format))
        }
    }

    @Test("Host and Origin: normal forms are stable, and nothing odd is taken for loopback")
    func hostsAndOrigins() throws {
        let hosts = HostPolicy(allowedNames: ["logs.example.org"])
        fuzz("host") { text in
            let allowed = hosts.allows(authority: text, localAddress: nil)
            if let host = HostPolicy.hostName(ofAuthority: text) {
                #expect(HostPolicy.hostName(ofAuthority: host.contains(":") ? "[\(host)]" : host) == host, "\(text.debugDescription)")
                if allowed {
                    #expect(host == "localhost" || host.hasSuffix(".localhost") || HostPolicy.isLoopbackAddress(host) || host == "logs.example.org",
                            "\(text.debugDescription) allowed as \(host)")
                }
            } else {
                #expect(!allowed)
            }
        }
        let origins = try OriginPolicy(allowedOrigins: ["https://dash.example.com:8443"])
        fuzz("origin") { text in
            if let normal = OriginPolicy.normalized(text) {
                #expect(OriginPolicy.normalized(normal) == normal, "\(text.debugDescription)")
            }
            switch origins.decide(origin: text, scheme: "http", authority: "127.0.0.1:8111") {
            case .allowed: #expect(OriginPolicy.normalized(text) == "https://dash.example.com:8443")
            case .sameOrigin: #expect(OriginPolicy.normalized(text) == "http://127.0.0.1:8111")
            case .refused, .noOrigin: break
            }
        }
    }

    @Test("X-Forwarded-For: the client is the peer, an address the header names, or a trusted proxy")
    func forwardedFor() throws {
        let proxies = try TrustedProxies(parsing: ["127.0.0.1", "10.0.0.0/8", "::1"])
        fuzz("forwarded-for") { text in
            let client = proxies.client(peer: "127.0.0.1", forwardedFor: [text])
            #expect(client != nil)
            if let client, client != "127.0.0.1" {
                #expect((try? TrustedProxies(parsing: [client])) != nil, "\(text.debugDescription) gave \(client)")
                #expect(client.utf8.count <= 45)
            }
            #expect(proxies.client(peer: "198.51.100.1", forwardedFor: [text]) == "198.51.100.1")
        }
    }

    @Test("login forms: a decoded value is never longer than the body")
    func forms() {
        fuzz("form") { text in
            if let value = FormFields.value(of: "token", in: Array(text.utf8)) {
                #expect(value.utf8.count <= text.utf8.count)
            }
        }
    }

    @Test("lines of any bytes encode to valid UTF-8 SSE and NDJSON of bounded size")
    func encodedLines() {
        var rng = SplitMix64(seed: Self.seed ^ 0x5EED)
        let sse = EventEncoder(format: .eventStream, source: "app")
        let ndjson = EventEncoder(format: .ndjson, source: "app")
        for _ in 0..<Self.iterations {
            let length = Int(rng.next() % 64)
            let text = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next() % 7 == 0 ? rng.next() % 32 : rng.next()) }
            for encoder in [sse, ndjson] {
                var buffer = ByteBuffer()
                encoder.encode(.line(text, id: "f1.1.2.3.4"), into: &buffer)
                let bytes = buffer.readableBytesView
                #expect(String(validating: Array(bytes), as: UTF8.self) != nil)
                #expect(bytes.count <= 64 + 6 * text.count + 64)
                #expect(!bytes.contains(0x0D), "a CR inside an event would end an SSE line")
                let lines = bytes.split(separator: 0x0A)
                if encoder.format == .eventStream {
                    #expect(lines.allSatisfy { $0.starts(with: Array("id: ".utf8)) || $0.starts(with: Array("data: ".utf8)) })
                } else {
                    #expect(lines.count == 1)
                    #expect((try? parseJSONObject(lines[0])) != nil)
                }
            }
        }
    }

    // MARK: - The mutator

    private func fuzz(_ target: String, _ check: (String) -> Void) {
        let seeds = Self.corpus(target)
        #expect(!seeds.isEmpty, "no corpus for \(target)")
        var rng = SplitMix64(seed: Self.seed ^ UInt64(target.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude))
        for seed in seeds { check(String(decoding: seed, as: UTF8.self)) }
        for _ in 0..<Self.iterations {
            let input = Self.mutate(seeds[Int(rng.next() % UInt64(seeds.count))], others: seeds, using: &rng)
            check(String(decoding: input, as: UTF8.self))
        }
    }

    static func mutate(_ seed: [UInt8], others: [[UInt8]], using rng: inout SplitMix64) -> [UInt8] {
        var bytes = seed
        let interesting: [UInt8] = [0, 0x0A, 0x0D, 0x20, 0x25, 0x2C, 0x2E, 0x3A, 0x3D, 0x26, 0x5B, 0x5D, 0x7F, 0x80, 0xC3, 0xFF]
        for _ in 0...(rng.next() % 4) {
            let position = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count + 1))
            switch rng.next() % 8 {
            case 0 where !bytes.isEmpty && position < bytes.count:
                bytes[position] ^= UInt8(1 << (rng.next() % 8))
            case 1:
                bytes.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: position)
            case 2 where position < bytes.count:
                bytes.remove(at: position)
            case 3:
                let other = others[Int(rng.next() % UInt64(others.count))]
                let start = other.isEmpty ? 0 : Int(rng.next() % UInt64(other.count))
                bytes.insert(contentsOf: other[start...], at: position)
            case 4 where !bytes.isEmpty:
                let length = min(bytes.count - min(position, bytes.count - 1), Int(rng.next() % 16) + 1)
                let start = min(position, bytes.count - 1)
                let piece = bytes[start..<(start + length)]
                bytes.insert(contentsOf: Array(repeating: piece, count: Int(rng.next() % 40) + 1).joined(), at: start)
            case 5:
                bytes = Array(bytes.prefix(position))
            case 6:
                bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: position)
            default:
                bytes.insert(contentsOf: Array(String(rng.next() % 100_000, radix: 16).utf8), at: position)
            }
        }
        return Array(bytes.prefix(4096))
    }

    static func corpus(_ target: String) -> [[UInt8]] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fuzz/corpus/\(target)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?.sorted() ?? []
        return names.compactMap { try? Array(Data(contentsOf: directory.appendingPathComponent($0))) }
    }
}
