import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TailSSECore

/// Checks that one part of tailsse still makes progress: `nil` when it does, else what is wrong.
public typealias LivenessProbe = @Sendable () async -> String?

/// Tells systemd how tailsse is doing (`Type=notify`): `READY=1` once the server listens (the
/// sources began before it), `STATUS=` with the number of clients and sources as they change,
/// `WATCHDOG=1` every half `WATCHDOG_USEC` while every liveness probe passes — a round trip through
/// each listening channel's event loop, plus the probes given (the inotify thread's progress) — and
/// `STOPPING=1` when shutdown begins. Does nothing outside systemd.
///
/// Listed last in the service group so that it is the first told to shut down.
struct SystemdNotifier: Service, CustomStringConvertible {
    var description: String { "SystemdNotifier" }
    let listening: Latch<[any Channel]>
    let registry: SourceRegistry
    let connections: ConnectionRegistry
    let status: StatusNote
    let probes: [LivenessProbe]
    let logger: Logger

    func run() async throws {
        guard SystemdNotify.isAvailable else {
            try? await gracefulShutdown()
            return
        }
        do {
            try await cancelWhenGracefulShutdown {
                let channels = try await listening.value()
                var sent = statusLine()
                await SystemdNotify.send("READY=1\nSTATUS=\(sent)")
                let watchdog = SystemdNotify.watchdogInterval
                if let watchdog { logger.info("systemd watchdog enabled", metadata: ["interval": .string("\(watchdog)")]) }
                let tick = min(watchdog.map { $0 / 4 } ?? .seconds(1), .seconds(1))
                var nextPing = ContinuousClock.now
                while true {
                    if let watchdog, ContinuousClock.now >= nextPing {
                        let problems = await check(channels)
                        if problems.isEmpty {
                            await SystemdNotify.send("WATCHDOG=1")
                        } else {
                            logger.error("liveness check failed; not pinging the watchdog", metadata: ["problems": .string(problems.joined(separator: "; "))])
                        }
                        nextPing = .now + watchdog / 2
                    }
                    let line = statusLine()
                    if line != sent {
                        await SystemdNotify.send("STATUS=\(line)")
                        sent = line
                    }
                    try await Task.sleep(for: tick)
                }
            }
        } catch is CancellationError {}
        await SystemdNotify.send("STOPPING=1\nSTATUS=stopping")
    }

    private func statusLine() -> String {
        let clients = connections.count
        let sources = registry.sources.count
        var line = "\(clients) client\(clients == 1 ? "" : "s"), \(sources) source\(sources == 1 ? "" : "s")"
        if let note = status.note { line += "; \(note)" }
        return line
    }

    private func check(_ channels: [any Channel]) async -> [String] {
        var problems: [String] = []
        for channel in channels {
            if !(await Self.roundTrip(channel, timeout: .seconds(2))) {
                problems.append("the event loop of \(channel.localAddress.map { "\($0)" } ?? "a listener") did not answer within 2 s")
            }
        }
        for probe in probes {
            if let problem = await probe() { problems.append(problem) }
        }
        return problems
    }

    /// `true` when `channel`'s event loop runs a task within `timeout` and the channel still listens.
    static func roundTrip(_ channel: any Channel, timeout: Duration) async -> Bool {
        let answer = Latch<Bool>()
        let timer = Task {
            try? await Task.sleep(for: timeout)
            answer.set(false)
        }
        channel.eventLoop.execute { answer.set(channel.isActive) }
        let alive = (try? await answer.value()) ?? false
        timer.cancel()
        return alive
    }
}

/// A probe that fails when `counter` has not advanced for longer than `limit`.
public func progressProbe(_ what: String, limit: Duration, counter: @escaping @Sendable () -> UInt64) -> LivenessProbe {
    let last = Mutex<(value: UInt64, at: ContinuousClock.Instant)?>(nil)
    return {
        let value = counter()
        let now = ContinuousClock.now
        return last.withLock { last -> String? in
            guard let previous = last, previous.value == value else {
                last = (value, now)
                return nil
            }
            return now - previous.at > limit ? "\(what) made no progress for \(now - previous.at)" : nil
        }
    }
}

/// A note appended to systemd's `STATUS=` line (the outcome of the last reload that failed).
public final class StatusNote: Sendable {
    private let value = Mutex<String?>(nil)
    public init() {}
    public var note: String? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// A value set once, awaited by any number of tasks.
final class Latch<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiters: [UInt64: CheckedContinuation<Value, any Error>] = [:]
        var cancelled: Set<UInt64> = []
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Sets the value (only the first call counts) and wakes every waiter.
    func set(_ value: Value) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, any Error>] in
            guard state.value == nil else { return [] }
            state.value = value
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    /// The value, once set; throws `CancellationError` if the task is cancelled first.
    func value() async throws -> Value {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let immediate = state.withLock { state -> Result<Value, any Error>? in
                    if let value = state.value { return .success(value) }
                    if state.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Value, any Error>? in
                guard let waiter = state.waiters.removeValue(forKey: id) else {
                    if state.value == nil { state.cancelled.insert(id) }
                    return nil
                }
                return waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
