import Logging
import NIOCore
import ServiceLifecycle
import TailSSECore

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
