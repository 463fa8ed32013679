import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the configuration on every `SIGHUP` (`systemctl reload`), telling systemd
/// `RELOADING=1` before and `READY=1` after.
struct ReloadService: Service, CustomStringConvertible {
    var description: String { "ReloadService" }
    /// Re-reads the configuration and applies it; returns a problem to show in `STATUS=`, if any.
    let reload: @Sendable () async -> String?
    let status: StatusNote

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            await SystemdNotify.send("RELOADING=1")
            status.note = await reload()
            await SystemdNotify.send("READY=1")
        }
    }
}
