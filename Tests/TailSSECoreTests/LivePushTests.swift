import Dispatch
import NIOCore
import Synchronization
import TailSSECore
import Testing

private typealias Log = EventLog<Int>

private func line(_ n: Int) -> LogRecord<Int> {
    LogRecord(from: n, to: n + 1, event: .line(Array("line \(n)".utf8), id: "\(n + 1)"))
}

private let encoder = EventEncoder(format: .eventStream, source: "app")
/// No heartbeat within a test.
private let quiet = PushHeartbeat(after: .seconds(3600), quietSince: .now)

private func encoded(_ range: Range<Int>, by encoder: EventEncoder = encoder) -> String {
    var buffer = ByteBuffer()
    for n in range { encoder.encode(.line(Array("line \(n)".utf8), id: "\(n + 1)"), into: &buffer) }
    return String(buffer: buffer)
}

/// A cursor that has sent the log's records, so it stands at the live end (the first one appends
/// the first record).
private func cursorAtLiveEnd(_ log: Log) async -> SharedLogCursor<Int> {
    if log.lastSequence == 0 { log.append([line(0)]) }
    let cursor = SharedLogCursor(log: log, start: 0)
    var buffer = ByteBuffer()
    _ = await cursor.next(encoder: encoder, into: &buffer)
    return cursor
}

/// What `target` was written until `count` bytes came (or what came within 10 s).
private func collect(_ target: RecordingTarget, bytes count: Int) async -> String {
    await target.written { $0.utf8.count >= count }
}

/// A cursor at the live end of a new log, on the push path of a target of its own.
private func pushedCursor(
    heartbeat: PushHeartbeat = quiet
) async -> (log: Log, cursor: SharedLogCursor<Int>, target: RecordingTarget, follower: Task<LivePushOutcome<Int>?, Never>) {
    let log = Log(start: 0)
    let cursor = await cursorAtLiveEnd(log)
    let target = RecordingTarget(queue: DispatchQueue(label: "lane"))
    let follower = Task { await cursor.followLive(target, encoder: encoder, meter: nil, heartbeat: heartbeat) }
    await members(1, of: log)
    return (log, cursor, target, follower)
}

@Suite struct LivePushTests {
    @Test func recordsArePushedInOrderToTargetsOnTwoLanesAndLeavingHandsBackThePosition() async {
        let log = Log(start: 0)
        let first = await cursorAtLiveEnd(log)
        let second = await cursorAtLiveEnd(log)
        let targets = [RecordingTarget(queue: DispatchQueue(label: "lane-a")), RecordingTarget(queue: DispatchQueue(label: "lane-b"))]
        let followers = [Task { await first.followLive(targets[0], encoder: encoder, meter: nil, heartbeat: quiet) },
                         Task { await second.followLive(targets[1], encoder: encoder, meter: nil, heartbeat: quiet) }]
        await members(2, of: log)
        log.append([line(1), line(2)])
        log.append([line(3)])
        let expected = encoded(1..<4)
        #expect(await collect(targets[0], bytes: expected.utf8.count) == expected)
        #expect(await collect(targets[1], bytes: expected.utf8.count) == expected)
        first.stop()
        second.stop()
        for follower in followers {
            let outcome = await follower.value
            #expect(outcome?.reason == .stopped)
            #expect(outcome?.sequence == 4)
            #expect(outcome?.position == 4)
            #expect(outcome?.bytes == expected.utf8.count)
        }
        #expect(first.position == 4)
        #expect(log.push.memberCount == 0)
    }

    @Test func aQuietMemberGetsItsHeartbeatAtATickAndStays() async {
        let (log, cursor, target, follower) = await pushedCursor(heartbeat: PushHeartbeat(after: .zero, quietSince: .now))
        log.tick()
        #expect(await collect(target, bytes: 3) == ":\n\n")
        #expect(log.push.memberCount == 1)
        log.append([line(1)])
        let pushed = encoded(1..<2)
        #expect(await collect(target, bytes: pushed.utf8.count) == pushed)
        cursor.stop()
        let outcome = await follower.value
        #expect(outcome?.bytes == 3 + pushed.utf8.count)
    }

    @Test func aCursorBehindThePublishedRecordsCannotJoin() async {
        let log = Log(start: 0)
        let cursor = await cursorAtLiveEnd(log)
        log.append([line(1)])
        let target = RecordingTarget(queue: DispatchQueue(label: "lane"))
        #expect(await cursor.followLive(target, encoder: encoder, meter: nil, heartbeat: quiet) == nil)
        #expect(log.push.memberCount == 0)
    }

    @Test func aTargetThatStopsTakingBytesLeavesBeforeTheBatchAndReadsItFromTheLog() async {
        let (log, cursor, target, follower) = await pushedCursor()
        log.append([line(1)])
        let pushed = encoded(1..<2)
        #expect(await collect(target, bytes: pushed.utf8.count) == pushed)
        target.setWritable(false)
        log.append([line(2), line(3)])
        let outcome = await follower.value
        #expect(outcome?.reason == .notWritable)
        #expect(outcome?.sequence == 2)
        #expect(outcome?.position == 2)
        var rest = ByteBuffer()
        _ = await cursor.next(encoder: encoder, into: &rest)
        #expect(String(buffer: rest) == encoded(2..<4))
        // Up to date again: it joins again.
        target.setWritable(true)
        let again = Task { await cursor.followLive(target, encoder: encoder, meter: nil, heartbeat: quiet) }
        await members(1, of: log)
        cursor.stop()
        #expect(await again.value?.reason == .stopped)
    }

    @Test func aMemberTakesAtMostItsShareOfALargeBatchAndReadsTheRestFromTheLog() async {
        let (log, cursor, target, follower) = await pushedCursor()
        // One batch far larger than a member may take in one job (as when the lane was busy).
        let count = 2 * (64 << 10) / encoded(1..<2).utf8.count
        log.append((1...count).map(line))
        await members(0, of: log)
        if log.push.memberCount > 0 { cursor.stop() }
        let outcome = await follower.value
        #expect(outcome?.reason == .notWritable)
        let taken = outcome.map { $0.sequence - 1 } ?? 0
        #expect(taken > 0 && taken < UInt64(count))
        #expect(outcome?.bytes ?? 0 >= 64 << 10 && outcome?.bytes ?? 0 < (64 << 10) + 64)
        let pushed = await collect(target, bytes: outcome?.bytes ?? 0)
        #expect(pushed == encoded(1..<(Int(taken) + 1)))
        let expected = encoded((Int(taken) + 1)..<(count + 1))
        var rest = ByteBuffer()
        while rest.readableBytes < expected.utf8.count { _ = await cursor.next(encoder: encoder, into: &rest) }
        #expect(String(buffer: rest) == expected)
    }

    @Test func recordsPublishedWhileTheLaneIsBusyReachEachMemberInOneWrite() async {
        let (log, cursor, target, _) = await pushedCursor()
        let release = target.hold()
        for n in 1...5 { log.append([line(n)]) }
        release()
        let deadline = Task {
            try await Task.sleep(for: .seconds(10))
            target.endWrites()
        }
        defer { deadline.cancel() }
        var writes = target.writes.makeAsyncIterator()
        let first = await writes.next()
        #expect(first.map { String(buffer: $0) } == encoded(1..<6))
        cursor.stop()
    }

    @Test func aMemberOfAnotherFormatJoiningWhileRecordsWaitGetsOnlyWhatCameAfterItJoined() async {
        let (log, sse, sseTarget, _) = await pushedCursor()
        let release = sseTarget.hold()
        log.append([line(1)])
        // A second client, in NDJSON on the same lane, that has read up to line 1 itself.
        let ndjson = EventEncoder(format: .ndjson, source: "app")
        let cursor = SharedLogCursor(log: log, start: 0)
        var read = ByteBuffer()
        while read.readableBytes < encoded(0..<2, by: ndjson).utf8.count { _ = await cursor.next(encoder: ndjson, into: &read) }
        let target = RecordingTarget(queue: sseTarget.queue)
        let follower = Task { await cursor.followLive(target, encoder: ndjson, meter: nil, heartbeat: quiet) }
        await members(2, of: log)
        log.append([line(2)])
        log.append([line(3)])
        release()
        #expect(await collect(sseTarget, bytes: encoded(1..<4).utf8.count) == encoded(1..<4))
        #expect(await collect(target, bytes: encoded(2..<4, by: ndjson).utf8.count) == encoded(2..<4, by: ndjson))
        cursor.stop()
        sse.stop()
        #expect(await follower.value?.sequence == 4)
    }

    @Test func closingTheLogMakesMembersLeaveAndRefusesNewOnes() async {
        let (log, cursor, target, follower) = await pushedCursor()
        log.close()
        #expect(await follower.value?.reason == .closed)
        #expect(await cursor.followLive(target, encoder: encoder, meter: nil, heartbeat: quiet) == nil)
    }

    @Test func cancellingTheFollowerLetsItGo() async {
        let (log, _, target, follower) = await pushedCursor()
        follower.cancel()
        #expect(await follower.value?.reason == .stopped)
        #expect(log.push.memberCount == 0)
        await target.drain()
    }
}
