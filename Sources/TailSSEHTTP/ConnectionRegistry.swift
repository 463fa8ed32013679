import ServiceLifecycle
import Synchronization
import TailSSECore

/// One open stream's guard: whether it is stuck in a write, and a switch to kill it.
///
/// Killing resumes the connection's watchdog task, which then throws and cancels the stream's
/// writer — the only way to end a write that a client never reads.
final class ConnectionGuard: Sendable {
    private let stream: any EventStream

    init(stream: any EventStream) { self.stream = stream }

    /// Ends the stream after its pending write: the response finishes with complete events.
    func stopStream() { stream.stop() }

    private struct State {
        var writeStarted: ContinuousClock.Instant?
        var killed: String?
        var waiter: CheckedContinuation<String, Never>?
    }

    private let state = Mutex(State())

    func writeBegan() { state.withLock { $0.writeStarted = .now } }
    func writeEnded() { state.withLock { $0.writeStarted = nil } }

    /// `true` when a write has been pending for longer than `timeout`.
    func isStuck(timeout: Duration, now: ContinuousClock.Instant) -> Bool {
        state.withLock { state in state.killed == nil && (state.writeStarted.map { now - $0 > timeout } ?? false) }
    }

    /// Ends the connection now (its pending write is cancelled).
    func kill(reason: String) {
        let waiter = state.withLock { state -> CheckedContinuation<String, Never>? in
            guard state.killed == nil else { return nil }
            state.killed = reason
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: reason)
    }

    /// Returns when ``kill(reason:)`` is called (or immediately if it was), with the reason, or
    /// when the waiting task is cancelled.
    func waitUntilKilled() async -> String {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
                let reason = state.withLock { state -> String? in
                    if let killed = state.killed { return killed }
                    state.waiter = continuation
                    return nil
                }
                if let reason { continuation.resume(returning: reason) }
            }
        } onCancel: {
            kill(reason: "stream ended")
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

    /// Kills every stream whose write has been pending for longer than `timeout`; returns how many.
    @discardableResult
    func killStuck(timeout: Duration) -> Int {
        let now = ContinuousClock.now
        let stuck = guards.withLock { $0.values.filter { $0.isStuck(timeout: timeout, now: now) } }
        for connection in stuck { connection.kill(reason: "write deadline exceeded") }
        return stuck.count
    }

    func stopAll() {
        for connection in guards.withLock({ Array($0.values) }) { connection.stopStream() }
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
