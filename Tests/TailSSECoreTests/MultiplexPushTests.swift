import Dispatch
import NIOCore
import TailSSECore
import Testing

private typealias Log = EventLog<Int>

private func line(_ n: Int) -> LogRecord<Int> {
    LogRecord(from: n, to: n + 1, event: .line(Array("line \(n)".utf8), id: "\(n + 1)"))
}

/// One source's stream over a shared log, framed for a multiplexed stream, standing at the live end.
private final class LogStream: EventStream {
    let cursor: SharedLogCursor<Int>
    let encoder: EventEncoder

    init(log: Log, source: String) async {
        if log.lastSequence == 0 { log.append([line(0)]) }
        encoder = .framed(format: .eventStream, source: source)
        cursor = SharedLogCursor(log: log, start: 0)
        var buffer = ByteBuffer()
        _ = await cursor.next(encoder: encoder, into: &buffer)
    }

    func next(into buffer: inout ByteBuffer) async throws -> StreamStep {
        switch await cursor.next(encoder: encoder, into: &buffer) {
        case .done(let step): step
        case .behind: .finished
        }
    }

    func stop() { cursor.stop() }

    func pushLive(
        _ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat, onLeave: @escaping @Sendable (LivePushReturn) -> Void
    ) -> Bool {
        cursor.pushLive(target, encoder: encoder, meter: meter, heartbeat: heartbeat) { onLeave(LivePushReturn($0)) }
    }
}

/// Sources a and b multiplexed on one connection (`target`), their live ends pushed there, and a
/// task that writes what the stream itself returns through the same lane, as the HTTP layer does:
/// it announces each buffer it took on `taken` (which ends after 10 s, so a test that waits for a
/// buffer that never comes fails instead of hanging) and writes it once given a permit.
private struct PushedMultiplex {
    let logs = [Log(start: 0), Log(start: 0)]
    let target = RecordingTarget(queue: DispatchQueue(label: "lane"))
    let stream: MultiplexedEventStream
    let taken: AsyncStream<String>
    let permits: AsyncStream<Void>.Continuation
    let writer: Task<Void, Never>
    private let deadline: Task<Void, any Error>

    init(heartbeatAfter: Duration = .seconds(3600)) async {
        let streams = [await LogStream(log: logs[0], source: "a"), await LogStream(log: logs[1], source: "b")]
        stream = MultiplexedEventStream(
            streams: streams, encoder: MultiplexEncoder(format: .eventStream, sources: ["a", "b"], startIDs: ["1", "1"]),
            push: MultiplexPush(connection: target, heartbeatAfter: heartbeatAfter, meters: [])
        )
        let (taken, took) = AsyncStream.makeStream(of: String.self)
        let (permitted, permits) = AsyncStream.makeStream(of: Void.self)
        self.taken = taken
        self.permits = permits
        deadline = Task {
            try await Task.sleep(for: .seconds(10))
            took.finish()
        }
        writer = Task { [stream, target] in
            var permission = permitted.makeAsyncIterator()
            while true {
                var buffer = ByteBuffer()
                guard let step = try? await stream.next(into: &buffer), step != .finished else { return }
                guard buffer.readableBytes > 0 else { continue }
                took.yield(String(buffer: buffer))
                guard await permission.next() != nil else { return }
                await target.send(buffer)
            }
        }
        await members(1, of: logs[0])
        await members(1, of: logs[1])
    }

    func stop() async {
        deadline.cancel()
        stream.stop()
        permits.finish()
        await writer.value
    }
}

/// The SSE events (`id` and data) in `text`.
private func events(in text: String) -> [(id: String, data: String)] {
    text.split(separator: "\n\n").compactMap { block in
        let fields = block.split(separator: "\n")
        guard let id = fields.first(where: { $0.hasPrefix("id: ") }), let data = fields.first(where: { $0.hasPrefix("data: ") }) else { return nil }
        return (String(id.dropFirst(4)), String(data.dropFirst(6)))
    }
}

/// The SSE events written to `target`, until `count` came (or what came in 10 s).
private func events(_ count: Int, from target: RecordingTarget) async -> [(id: String, data: String)] {
    events(in: await target.written { events(in: $0).count >= count })
}

@Suite struct MultiplexPushTests {
    @Test func sourcesAtTheLiveEndArePushedEachEventWithTheCompositeIDOfBothSources() async {
        let multiplex = await PushedMultiplex()
        multiplex.logs[0].append([line(1)])
        multiplex.logs[1].append([line(1)])
        multiplex.logs[0].append([line(2)])
        // The two sources' lanes jobs may come in either order; each event's id counts what was
        // written before it.
        let written = await events(3, from: multiplex.target)
        #expect(written.count == 3)
        var sent = ["a": 1, "b": 1]
        for event in written {
            guard let source = ["a", "b"].first(where: { event.data.hasPrefix(#"{"source":"\#($0)""#) }) else {
                Issue.record("not an event of a or b: \(event.data)")
                continue
            }
            #expect(event.data == #"{"source":"\#(source)","text":"line \#(sent[source]!)"}"#)
            sent[source]! += 1
            #expect(event.id == "m1,a=\(sent["a"]!),b=\(sent["b"]!)")
        }
        #expect(sent == ["a": 3, "b": 2])
        await multiplex.stop()
        #expect(multiplex.logs.map(\.push.memberCount) == [0, 0])
    }

    /// While an event the stream read itself is taken but not written, a push of another source
    /// would overtake it with an id that already counts it: the push is refused, that source reads
    /// its event itself, after the first, and both rejoin the push path once written.
    @Test func aPushWaitsForTheStreamsOwnWriteAndEveryIDCountsOnlyWhatCameBefore() async {
        let multiplex = await PushedMultiplex()
        var taken = multiplex.taken.makeAsyncIterator()
        multiplex.target.setWritable(false)
        multiplex.logs[0].append([line(1)])
        let first = await taken.next()
        #expect(first?.contains("id: m1,a=2,b=1\n") == true)
        multiplex.target.setWritable(true)
        multiplex.logs[1].append([line(1)])
        await members(0, of: multiplex.logs[1])
        multiplex.permits.yield()
        let second = await taken.next()
        #expect(second?.contains("id: m1,a=2,b=2\n") == true)
        multiplex.permits.yield()
        await members(1, of: multiplex.logs[0])
        await members(1, of: multiplex.logs[1])
        multiplex.logs[0].append([line(2)])
        let written = await events(3, from: multiplex.target)
        #expect(written.map(\.id) == ["m1,a=2,b=1", "m1,a=2,b=2", "m1,a=3,b=2"])
        #expect(written.map(\.data) == [#"{"source":"a","text":"line 1"}"#, #"{"source":"b","text":"line 1"}"#, #"{"source":"a","text":"line 2"}"#])
        await multiplex.stop()
    }

    /// A quiet pushed source's heartbeat is due while the stream's own write is pending: written
    /// then, it could land between two slices of an event.
    @Test func aPushedSourcesHeartbeatIsNotWrittenWhileTheStreamsOwnWriteIsPending() async {
        let multiplex = await PushedMultiplex(heartbeatAfter: .zero)
        var taken = multiplex.taken.makeAsyncIterator()
        multiplex.target.setWritable(false)
        multiplex.logs[0].append([line(1)])
        #expect(await taken.next()?.contains("line 1") == true)
        multiplex.target.setWritable(true)
        multiplex.logs[1].tick()
        await multiplex.target.drain()
        multiplex.permits.yield()
        let written = await multiplex.target.written { $0.contains("line 1") }
        #expect(written.hasPrefix("id: m1,a=2,b=1\n"), "\(written)")
        await multiplex.stop()
    }
}
