import ServiceLifecycle
import Synchronization
import TailSSECore

/// One open stream's guard: whether it is stuck in a write, and a switch to kill it.
///
/// Killing cancels the task that writes the stream (``whileKillable(onKill:_:)``) — the only way
/// to end a write that a client never reads.
final class ConnectionGuard: Sendable {
    private let stream: any EventStream
    /// Who reads what on this connection.
    let audit: StreamAudit

    init(stream: any EventStream, audit: StreamAudit) {
        self.stream = stream
        self.audit = audit
    }

    /// Ends the stream after its pending write: the response finishes with complete events.
    func stopStream(reason: String) {
        state.withLock { if $0.stopped == nil { $0.stopped = reason } }
        stream.stop()
    }

    /// The client closed its end of the connection: the stream stops and its pending write, if
    /// any, is cancelled.
    func clientLeft() {
        stopStream(reason: "client went away")
        kill(reason: "client went away")
    }

    /// Ends the stream because its token no longer grants its sources: it finishes with an `end`
    /// event per source saying so.
    func revoke() {
        state.withLock { state in
            if state.stopped == nil { state.stopped = Self.revoked }
            state.revoked = true
        }
        stream.stop()
    }

    /// The message of the `end` events to send when the stream was revoked, else `nil`.
    var revocation: String? { state.withLock { $0.revoked ? Self.revoked : nil } }

    private static let revoked = "access revoked"

    /// Counts bytes the channel took from this stream: progress, which resets the write deadline.
    func sent(bytes: Int) {
        state.withLock { state in
            state.bytesSent += bytes
            if state.pendingSince != nil { state.pendingSince = .now }
        }
    }

    var bytesSent: Int { state.withLock { $0.bytesSent } }

    /// Why the stream ended, for the access log.
    var endReason: String {
        state.withLock { state in
            state.stopped ?? state.killed ?? "source ended"
        }
    }

    private struct State {
        var pendingSince: ContinuousClock.Instant?
        var lag = LagWindow()
        var endsBetweenEvents = false
        var killed: String?
        var stopped: String?
        var revoked = false
        var bytesSent = 0
        var acknowledged: UInt64 = 0
    }

    private let state = Mutex(State())
    /// What ``kill(reason:)`` does to the writing task while it runs (``whileKillable(onKill:_:)``).
    private let killer = Mutex<KillSwitch?>(nil)

    /// Cancels one task, which stays alive while it is held (it lets go of it before it ends).
    private struct KillSwitch: @unchecked Sendable {
        let task: UnsafeCurrentTask
        let onKill: @Sendable () -> Void
    }

    /// Runs `body` in the current task; ``kill(reason:)`` calls `onKill` and cancels the task while
    /// it runs (or before it starts, when the connection was killed already). Throws ``Killed``
    /// when it was killed.
    func whileKillable<Value>(onKill: @escaping @Sendable () -> Void, _ body: () async throws -> Value) async throws -> Value {
        withUnsafeCurrentTask { task in
            guard let task else { return }
            killer.withLock { $0 = KillSwitch(task: task, onKill: onKill) }
        }
        let result: Result<Value, any Error>
        do {
            if let reason = state.withLock({ $0.killed }) { throw Killed(description: reason) }
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        killer.withLock { $0 = nil }
        if let reason = state.withLock({ $0.killed }) { throw Killed(description: reason) }
        return try result.get()
    }

    /// Why a stream ended abnormally.
    struct Killed: Error, CustomStringConvertible {
        var description: String
    }

    func writeBegan() { state.withLock { $0.pendingSince = .now } }
    func writeEnded() { state.withLock { $0.pendingSince = nil } }

    /// Ends the stream at the end of the event being written (the rest is not sent), because its
    /// client fell too far behind; the client resumes from the last event it received.
    func endBetweenEvents(reason: String) {
        state.withLock { $0.endsBetweenEvents = true }
        stopStream(reason: reason)
    }

    /// Whether the writer must stop at the end of the current event.
    var endsBetweenEvents: Bool { state.withLock { $0.endsBetweenEvents } }

    /// Whether ``judgeLag(rule:appended:now:)`` would take a sample now (at a window's edges only:
    /// a sample may cost a look at the socket).
    func lagSampleDue(rule: SlowReaderRule, now: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            guard rule.isEnabled, !state.endsBetweenEvents, state.killed == nil else { return false }
            return state.lag.isDue(at: now, rule: rule)
        }
    }

    /// Shows the stream's progress to its ``LagWindow``: its verdict when the client falls behind.
    func judgeLag(rule: SlowReaderRule, appended: UInt64, now: ContinuousClock.Instant) async -> LagWindow.FallingBehind? {
        let socket = await audit.drain?.read()
        return state.withLock { state in
            let sample = StreamProgressSample(
                at: now, isBehind: state.pendingSince != nil || (socket?.notSent ?? 0) > 0,
                drained: socket?.acknowledged ?? UInt64(state.bytesSent), appended: appended
            )
            return state.lag.observe(sample, rule: rule)
        }
    }

    /// Whether the client drained bytes from its connection since the last look (then its pending
    /// write counts as making progress again).
    func drainedSinceLastLook() async -> Bool {
        guard let acknowledged = await audit.drain?.bytesAcknowledged() else { return false }
        return state.withLock { state in
            guard acknowledged > state.acknowledged else { return false }
            state.acknowledged = acknowledged
            if state.pendingSince != nil { state.pendingSince = .now }
            return true
        }
    }

    /// `true` when a write has been pending without any progress for longer than `timeout`.
    func isStuck(timeout: Duration, now: ContinuousClock.Instant) -> Bool {
        state.withLock { state in state.killed == nil && (state.pendingSince.map { now - $0 > timeout } ?? false) }
    }

    /// Ends the connection now (its pending write is cancelled).
    func kill(reason: String) {
        let first = state.withLock { state -> Bool in
            guard state.killed == nil else { return false }
            state.killed = reason
            return true
        }
        guard first else { return }
        killer.withLock { killer in
            guard let killer else { return }
            killer.onKill()
            killer.task.cancel()
        }
    }

    var isKilled: Bool { state.withLock { $0.killed != nil } }
}

/// The open streams, so one sweeper can enforce write deadlines and shutdown can end them all.
final class ConnectionRegistry: Sendable {
    private let guards = Mutex<[ObjectIdentifier: ConnectionGuard]>([:])

    func register(_ guard: ConnectionGuard) { guards.withLock { $0[ObjectIdentifier(`guard`)] = `guard` } }
    func unregister(_ guard: ConnectionGuard) { _ = guards.withLock { $0.removeValue(forKey: ObjectIdentifier(`guard`)) } }

    var count: Int { guards.withLock { $0.count } }

    /// Kills every stream whose client has drained nothing for longer than `timeout` — neither
    /// a completed write nor bytes acknowledged on its connection; returns how many.
    @discardableResult
    func killStuck(timeout: Duration) async -> Int {
        let now = ContinuousClock.now
        let suspects = guards.withLock { $0.values.filter { $0.isStuck(timeout: timeout, now: now) } }
        var killed = 0
        for connection in suspects where !(await connection.drainedSinceLastLook()) {
            connection.kill(reason: "write deadline exceeded")
            killed += 1
        }
        return killed
    }

    /// Ends, between two events, every stream whose client falls ever further behind while it
    /// reads less than `rule` asks (see ``SlowReaderRule``); `appended` gives the running total of
    /// bytes its sources appended. Returns what was ended, with the verdicts.
    func endFallingBehind(rule: SlowReaderRule, appended: (StreamAudit) -> UInt64) async -> [(StreamAudit, LagWindow.FallingBehind)] {
        guard rule.isEnabled else { return [] }
        let now = ContinuousClock.now
        let due = guards.withLock { $0.values.filter { $0.lagSampleDue(rule: rule, now: now) } }
        var ended: [(StreamAudit, LagWindow.FallingBehind)] = []
        for connection in due {
            guard let verdict = await connection.judgeLag(rule: rule, appended: appended(connection.audit), now: now) else { continue }
            connection.endBetweenEvents(reason: verdict.description)
            ended.append((connection.audit, verdict))
        }
        return ended
    }

    func stopAll() {
        for connection in guards.withLock({ Array($0.values) }) { connection.stopStream(reason: "server shutting down") }
    }

    /// Revokes every stream whose grant `isAllowed` no longer accepts for its sources; returns how many.
    @discardableResult
    func revoke(unless isAllowed: (AccessGrant, [String]) -> Bool) -> Int {
        let denied = guards.withLock { $0.values.filter { !isAllowed($0.audit.grant, $0.audit.sources) } }
        for connection in denied { connection.revoke() }
        return denied.count
    }

    func killAll(reason: String) {
        for connection in guards.withLock({ Array($0.values) }) { connection.kill(reason: reason) }
    }
}

/// Ends every stream when shutdown begins, before the server waits for its connections to close.
///
/// Listed after the server in the service group, so it is told to shut down first. Streams end
/// cleanly after their pending write; one still stuck after `grace` is killed.
struct StreamCloser: Service, CustomStringConvertible {
    let connections: ConnectionRegistry
    let grace: Duration
    var description: String { "StreamCloser" }

    func run() async throws {
        try? await gracefulShutdown()
        connections.stopAll()
        let deadline = ContinuousClock.now + grace
        while connections.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        connections.killAll(reason: "shutting down")
    }
}
