import NIOCore
import TailSSECore
import Testing

@Suite("The history of several sources with composite ids")
struct MultiplexedHistoryTests {
    /// A source holding `count` lines named `NAMEk`, each with the id `NAMEk` too.
    private func member(_ name: String, count: Int, format: StreamFormat = .ndjson) -> MultiplexedHistory.Member {
        let ids = (1...count).map { "\(name)\($0)" }
        let encoder = EventEncoder.framed(format: format, source: name)
        return MultiplexedHistory.Member(name: name) { direction, limit in
            let slice: ArraySlice<String>
            var startID: String?
            var edge: Bool
            switch direction {
            case .before(let anchor):
                let end: Int
                switch anchor {
                case .start: end = 0
                case .end: end = ids.count
                case .id(let id):
                    guard let index = ids.firstIndex(of: id) else { return .failure(HistoryProblem(description: "no line \(id)")) }
                    end = index + 1
                }
                let start = max(0, end - limit)
                slice = ids[start..<end]
                startID = start > 0 ? ids[start - 1] : nil
                edge = start == 0
            case .after(let anchor):
                var start = 0
                if case .end = anchor { start = ids.count }
                if case .id(let id) = anchor { start = (ids.firstIndex(of: id) ?? -1) + 1 }
                slice = ids[start..<min(ids.count, start + limit)]
                edge = slice.endIndex == ids.count
            }
            var body = ByteBuffer()
            for id in slice { encoder.encode(.line(Array(id.utf8), id: id), into: &body) }
            return .success(HistoryAnswer(body: body, count: slice.count, reachedEdge: edge, startID: startID))
        }
    }

    private func events(_ answer: HistoryAnswer) throws -> [(text: String, id: String)] {
        try answer.body.readableBytesView.split(separator: UInt8(ascii: "\n")).map { line in
            let object = try parseJSONObject(line)
            return (object["text"]?.string ?? "", object["id"]?.string ?? "")
        }
    }

    @Test("before: source by source, each event's id holds where every source is after it in the answer")
    func before() async throws {
        let anchor = "m1,a=a7,b=b3"
        let answer = try await MultiplexedHistory.answer(
            members: [member("a", count: 9), member("b", count: 5)], direction: .before(.id(anchor)), limit: 2, format: .ndjson
        ).get()
        let got = try events(answer)
        #expect(got.map(\.text) == ["a6", "a7", "b2", "b3"])
        #expect(got.map(\.id) == ["m1,a=a6,b=b1", "m1,a=a7,b=b1", "m1,a=a7,b=b2", "m1,a=a7,b=b3"])
        #expect(answer.count == 4 && !answer.reachedEdge)
        #expect(answer.startID == "m1,a=a5,b=b1")
        // At a source's first line its part is left out: nothing of it lies before.
        let first = try await MultiplexedHistory.answer(
            members: [member("a", count: 9), member("b", count: 5)], direction: .before(.id("m1,a=a2,b=b1")), limit: 5, format: .ndjson
        ).get()
        #expect(try events(first).map(\.id) == ["m1,a=a1", "m1,a=a2", "m1,a=a2,b=b1"])
        #expect(first.reachedEdge && first.startID == nil)
    }

    @Test("after: parts start at the anchor; a source the id has no part for gives nothing")
    func after() async throws {
        let answer = try await MultiplexedHistory.answer(
            members: [member("a", count: 9), member("b", count: 5), member("c", count: 3)], direction: .after(.id("m1,a=a8,c=c1")), limit: 3, format: .ndjson
        ).get()
        let got = try events(answer)
        #expect(got.map(\.text) == ["a9", "c2", "c3"])
        #expect(got.map(\.id) == ["m1,a=a9,c=c1", "m1,a=a9,c=c2", "m1,a=a9,c=c3"])
        #expect(answer.reachedEdge)
        let start = try await MultiplexedHistory.answer(
            members: [member("a", count: 2, format: .plainText), member("b", count: 1, format: .plainText)], direction: .after(.start), limit: 10, format: .plainText
        ).get()
        #expect(String(buffer: start.body) == "[a] a1\n[a] a2\n[b] b1\n")
    }

    @Test("a malformed anchor and a source's problem are errors naming what is wrong")
    func problems() async {
        let members = [member("a", count: 3), member("b", count: 3)]
        let malformed = await MultiplexedHistory.answer(members: members, direction: .before(.id("a1")), limit: 2, format: .ndjson)
        #expect(throws: HistoryProblem.self) { try malformed.get() }
        if case .failure(let problem) = malformed { #expect(problem.isMalformed) }
        let unknown = await MultiplexedHistory.answer(members: members, direction: .before(.id("m1,a=a2,b=zz")), limit: 2, format: .ndjson)
        if case .failure(let problem) = unknown {
            #expect(problem.description == "b: no line zz" && !problem.isMalformed)
        } else {
            Issue.record("an unknown id was answered")
        }
    }
}
