import CSystemd
#if canImport(Glibc)
import Glibc
#endif
import NIOPosix

/// Messages to the service manager (`sd_notify(3)`): a no-op unless systemd set `NOTIFY_SOCKET`.
public enum SystemdNotify {
    /// `true` when a service manager listens for notifications.
    public static var isAvailable: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// The watchdog interval (`WATCHDOG_USEC`) when systemd expects `WATCHDOG=1` pings.
    public static var watchdogInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds))
    }

    /// Sends newline-separated assignments such as `READY=1\nSTATUS=...`, off the cooperative pool
    /// and on a thread of its own: a notification never waits behind catch-up reads, so a storm
    /// of far-behind clients cannot starve the watchdog.
    public static func send(_ state: String) async {
        guard isAvailable else { return }
        _ = try? await notificationThread.runIfActive { sd_notify(0, state) }
    }

    private static let notificationThread: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()
}
