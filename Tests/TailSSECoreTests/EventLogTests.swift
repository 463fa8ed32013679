import Synchronization
import TailSSECore
import Testing

private typealias Log = EventLog<Int>

/// A record moving the position from `from` to `from + 1`, with an event of `size` footprint bytes.
private func record(_ from: Int, footprint size: Int = 100) -> LogRecord<Int> {
    LogRecord(from: from, to: from + 1, event: .line([UInt8](repeating: 0x61, count: size - 48), id: nil))
}

private func sequences(_ result: Log.ReadResult) -> [UInt64]? {
    if case .records(let records) = result { records.map(\.sequence) } else { nil }
}

private func isUpToDate(_ result: Log.ReadResult) -> Bool {
    if case .upToDate = result { true } else { false }
}

private func isEvicted(_ result: Log.ReadResult) -> Bool {
    if case .evicted = result { true } else { false }
}

/// Runs `wait` in a child task and returns its result once it arrives, calling `poke` repeatedly
/// meanwhile (some wake-ups, like `tick`, only reach a waiter that is already suspended).
private func waitResult(
    _ log: Log, after sequence: UInt64, token: Log.WaitToken, poke: @escaping @Sendable () -> Void
) async -> WakeReason {
    let result = ResultBox()
    let task = Task {
        let reason = await log.wait(after: sequence, token: token)
        result.value.withLock { $0 = reason }
    }
    while result.value.withLock({ $0 }) == nil {
        try? await Task.sleep(for: .milliseconds(5))
        poke()
    }
    await task.value
    return result.value.withLock { $0 }!
}

/// How far each reader has read.
private final class Progress: Sendable {
    private let sequences: Mutex<[UInt64]>

    init(readers: Int) { sequences = Mutex(Array(repeating: 0, count: readers)) }

    func set(_ reader: Int, _ sequence: UInt64) { sequences.withLock { $0[reader] = sequence } }

    var minimum: UInt64 { sequences.withLock { $0.min() ?? 0 } }
}

private final class ResultBox: Sendable {
    let value = Mutex<WakeReason?>(nil)
}

/// Closes `log` after `seconds` unless `body` ends first: a lost wake-up then fails the test (the
/// waiter sees `.closed`) instead of leaving a continuation suspended for good, which would keep
/// the test process from ever exiting even after the time limit.
private func withWatchdog(_ log: Log, seconds: Int = 20, _ body: () async -> Void) async {
    let watchdog = Task {
        try? await Task.sleep(for: .seconds(seconds))
        if !Task.isCancelled { log.close() }
    }
    await body()
    watchdog.cancel()
}

@Suite("Event log (fan-out)", .timeLimit(.minutes(1)))
struct EventLogTests {
    @Test("a new log is empty and knows its start position")
    func empty() {
        let log = Log(start: 7)
        #expect(log.lastSequence == 0)
        #expect(log.latestPosition == 7)
        #expect(isUpToDate(log.read(after: 0)))
        #expect(log.locate(7) == 0)
        #expect(log.locate(8) == nil)
        #expect(Log().latestPosition == nil)
    }

    @Test("append numbers records from 1; read returns the records after a sequence, in order")
    func appendAndRead() throws {
        let log = Log(start: 0)
        log.append([record(0), record(1)])
        log.append([])
        log.append([record(2), LogRecord(from: 3, to: 10, event: nil)])
        #expect(log.lastSequence == 4)
        #expect(log.latestPosition == 10)
        guard case .records(let all) = log.read(after: 0) else { Issue.record("no records"); return }
        #expect(all.map(\.sequence) == [1, 2, 3, 4])
        #expect(all.map(\.from) == [0, 1, 2, 3])
        #expect(all.map(\.to) == [1, 2, 3, 10])
        #expect(all[0].event == record(0).event)
        #expect(all[3].event == nil)
        #expect(sequences(log.read(after: 2)) == [3, 4])
        #expect(isUpToDate(log.read(after: 4)))
        #expect(isUpToDate(log.read(after: 99)))
    }

    @Test("read honours maxRecords and maxBytes, and always returns at least one record")
    func readLimits() {
        let log = Log()
        log.append((0..<10).map { record($0, footprint: 100) })
        #expect(sequences(log.read(after: 0, maxRecords: 3)) == [1, 2, 3])
        #expect(sequences(log.read(after: 5, maxRecords: 100)) == [6, 7, 8, 9, 10])
        #expect(sequences(log.read(after: 0, maxBytes: 250)) == [1, 2, 3])
        #expect(sequences(log.read(after: 0, maxBytes: 1)) == [1])
    }

    @Test("locate finds the sequence to read after for a position held by the log")
    func locate() {
        let log = Log(start: 100)
        log.append([record(100), record(101), record(102)])
        #expect(log.locate(100) == 0)
        #expect(log.locate(101) == 1)
        #expect(log.locate(102) == 2)
        #expect(log.locate(103) == 3, "the latest position")
        #expect(log.locate(99) == nil)
        #expect(log.locate(500) == nil)
    }

    @Test("eviction by capacity: old records go, reading after an evicted sequence says .evicted")
    func eviction() {
        let log = Log(capacityBytes: 350, start: 0)
        for i in 0..<10 { log.append([record(i, footprint: 100)]) }
        #expect(log.lastSequence == 10)
        #expect(sequences(log.read(after: 7)) == [8, 9, 10])
        #expect(isEvicted(log.read(after: 6)))
        #expect(isEvicted(log.read(after: 0)))
        #expect(isUpToDate(log.read(after: 10)))
        #expect(log.locate(7) == 7, "record 8 starts at 7")
        #expect(log.locate(4) == nil, "record 5 was evicted")
        #expect(log.locate(10) == 10)
    }

    @Test("silent records count for 32 bytes; the newest record stays even when larger than the capacity")
    func evictionEdges() {
        let log = Log(capacityBytes: 100, start: 0)
        log.append((0..<3).map { LogRecord(from: $0, to: $0 + 1, event: nil) })
        #expect(sequences(log.read(after: 0)) == [1, 2, 3], "96 bytes fit in 100")
        log.append([LogRecord(from: 3, to: 4, event: nil)])
        #expect(isEvicted(log.read(after: 0)))
        #expect(sequences(log.read(after: 1)) == [2, 3, 4])
        log.append([record(4, footprint: 5000)])
        #expect(sequences(log.read(after: 4)) == [5])
        #expect(isEvicted(log.read(after: 3)))
    }

    @Test("wait returns .appended at once when records after the sequence exist")
    func waitImmediate() async {
        let log = Log()
        log.append([record(0)])
        let token = log.makeWaitToken()
        await withWatchdog(log) {
            #expect(await log.wait(after: 0, token: token) == .appended)
        }
    }

    @Test("wait returns .appended when another task appends")
    func waitAppended() async {
        let log = Log(start: 0)
        let token = log.makeWaitToken()
        await withWatchdog(log) {
            let writer = Task {
                try? await Task.sleep(for: .milliseconds(50))
                log.append([record(0)])
            }
            #expect(await log.wait(after: 0, token: token) == .appended)
            await writer.value
            #expect(sequences(log.read(after: 0)) == [1])
        }
    }

    @Test("tick wakes a waiter with .tick")
    func waitTick() async {
        let log = Log()
        let token = log.makeWaitToken()
        await withWatchdog(log) {
            #expect(await waitResult(log, after: 0, token: token) { log.tick() } == .tick)
        }
    }

    @Test("interrupt wakes that waiter with .interrupted, and no other")
    func waitInterrupted() async {
        let log = Log(start: 0)
        let a = log.makeWaitToken()
        let b = log.makeWaitToken()
        #expect(a != b)
        await withWatchdog(log) {
            let waiterB = Task { await log.wait(after: 0, token: b) }
            #expect(await waitResult(log, after: 0, token: a) { log.interrupt(a) } == .interrupted)
            log.append([record(0)])
            #expect(await waiterB.value == .appended)
        }
    }

    @Test("an interrupt before the wait is not lost, and is consumed by that one wait")
    func interruptBeforeWait() async {
        let log = Log(start: 0)
        let token = log.makeWaitToken()
        await withWatchdog(log) {
            log.interrupt(token)
            #expect(await log.wait(after: 0, token: token) == .interrupted)
            let writer = Task {
                try? await Task.sleep(for: .milliseconds(50))
                log.append([record(0)])
            }
            #expect(await log.wait(after: 0, token: token) == .appended)
            await writer.value
        }
    }

    @Test("close wakes every waiter with .closed, and later waits return .closed")
    func waitClosed() async {
        let log = Log(start: 0)
        let tokens = (0..<3).map { _ in log.makeWaitToken() }
        let waiters = tokens.dropFirst().map { token in Task { await log.wait(after: 0, token: token) } }
        #expect(await waitResult(log, after: 0, token: tokens[0]) { log.close() } == .closed)
        for waiter in waiters { #expect(await waiter.value == .closed) }
        #expect(await log.wait(after: 0, token: tokens[1]) == .closed)
        #expect(await log.wait(after: 0, token: log.makeWaitToken()) == .closed)
    }

    @Test("releasing a token wakes its waiter with .interrupted and removes the client")
    func releaseToken() async {
        let log = Log(start: 0)
        let token = log.makeWaitToken()
        let other = log.makeWaitToken()
        #expect(log.waiterCount == 2)
        await withWatchdog(log) {
            #expect(await waitResult(log, after: 0, token: token) { log.releaseWaitToken(token) } == .interrupted)
            #expect(log.waiterCount == 1)
            #expect(await log.wait(after: 0, token: token) == .interrupted, "a released token does not wait")
            log.releaseWaitToken(other)
            #expect(log.waiterCount == 0)
        }
    }

    @Test("no lost wake-ups: readers see 10,000 records appended one by one exactly once, in order", arguments: [1024, 7])
    func noLostWakeUps(maxRecords: Int) async {
        let count: UInt64 = 10_000
        let log = Log(capacityBytes: 64 << 20, start: 0)
        let readers = (0..<3).map { _ in
            let token = log.makeWaitToken()
            return Task { () -> (seen: [Int], problems: [String]) in
                var seen: [Int] = []
                var problems: [String] = []
                var sequence: UInt64 = 0
                while sequence < count {
                    switch log.read(after: sequence, maxRecords: maxRecords) {
                    case .records(let records):
                        for record in records {
                            if record.sequence != sequence + 1 { problems.append("gap after \(sequence)") }
                            seen.append(record.from)
                            sequence = record.sequence
                        }
                    case .upToDate:
                        let reason = await log.wait(after: sequence, token: token)
                        if reason != .appended {
                            problems.append("woken by \(reason) after \(sequence)")
                            if reason == .closed { return (seen, problems) }
                        }
                    case .evicted:
                        problems.append("evicted after \(sequence)")
                        return (seen, problems)
                    }
                }
                return (seen, problems)
            }
        }
        await withWatchdog(log, seconds: 40) {
            let writer = Task {
                for i in 0..<Int(count) {
                    log.append([record(i)])
                    if i % 97 == 0 { await Task.yield() }
                }
            }
            await writer.value
            for reader in readers {
                let (seen, problems) = await reader.value
                #expect(difference(seen, Array(0..<Int(count))) == nil)
                #expect(problems.isEmpty, "\(problems.prefix(5))")
            }
        }
    }

    @Test("no lost wake-ups in lock-step: each of 10,000 appends is seen by every waiting reader before the next one")
    func noLostWakeUpsLockStep() async {
        // Only the last append before a pause exposes a lost wake-up (any later append wakes the
        // waiter anyway), so the writer waits for every reader after every record.
        let count = 10_000
        let readerCount = 2
        let log = Log(capacityBytes: 64 << 20, start: 0)
        let progress = Progress(readers: readerCount)
        let readers = (0..<readerCount).map { index in
            let token = log.makeWaitToken()
            return Task { () -> [String] in
                var problems: [String] = []
                var sequence: UInt64 = 0
                while sequence < UInt64(count) {
                    switch log.read(after: sequence) {
                    case .records(let records):
                        for record in records {
                            if record.sequence != sequence + 1 || record.from != Int(sequence) { problems.append("wrong record after \(sequence)") }
                            sequence = record.sequence
                        }
                        progress.set(index, sequence)
                    case .upToDate:
                        let reason = await log.wait(after: sequence, token: token)
                        if reason != .appended {
                            problems.append("woken by \(reason) after \(sequence)")
                            if reason == .closed { return problems }
                        }
                    case .evicted:
                        return problems + ["evicted after \(sequence)"]
                    }
                }
                return problems
            }
        }
        let clock = ContinuousClock()
        var stalledAt: Int?
        appending: for i in 0..<count {
            log.append([record(i)])
            let deadline = clock.now + .seconds(10)
            while progress.minimum < UInt64(i + 1) {
                if clock.now > deadline {
                    stalledAt = i
                    break appending
                }
                await Task.yield()
            }
        }
        if stalledAt != nil { log.close() }
        #expect(stalledAt == nil, "a reader never woke up for record \(stalledAt ?? -1)")
        for reader in readers {
            let problems = await reader.value
            #expect(problems.isEmpty, "\(problems.prefix(5))")
        }
    }
}
