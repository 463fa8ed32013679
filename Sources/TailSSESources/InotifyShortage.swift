#if canImport(Glibc)
import Glibc
#endif

/// Why inotify cannot watch something, when the reason is a limit (or another failure that a
/// poll can stand in for): the source is then polled, losing nothing, and says so.
///
/// Sources fall back to polling at ``pollInterval`` and try inotify again as they go: a file
/// source at every poll, the journal every ``journalReopenInterval``.
enum InotifyShortage {
    /// How often a source that inotify cannot watch is checked for changes.
    static let pollInterval = 0.25
    /// How often the journal follower reopens a journal it polls, to find new journal files
    /// (and to get inotify back once it can).
    static let journalReopenInterval = 2.0
    /// How often the file watcher retries `inotify_init1` while it has no inotify instance.
    static let instanceRetryInterval = 5.0

    /// The notice for a source polled because `operation` failed with `errno`.
    static func notice(errno: Int32, operation: Operation) -> String {
        let reason: String
        switch errno {
        case ENOSPC where operation == .watch:
            reason = "the inotify watch limit is reached (max_user_watches)"
        case EMFILE where operation == .instance:
            reason = "the inotify instance limit is reached (max_user_instances)"
        case ENFILE:
            reason = "the system's open file limit is reached"
        case ENOMEM:
            reason = "the kernel has no memory for another inotify \(operation == .watch ? "watch" : "instance")"
        default:
            reason = "inotify cannot \(operation == .watch ? "watch it" : "be used") (\(String(cString: strerror(errno))))"
        }
        return "\(reason); polling every \(Int(pollInterval * 1000)) ms"
    }

    /// What failed: adding a watch or creating an instance.
    enum Operation { case watch, instance }

    /// Whether `errno` from `sd_journal_get_fd` (an inotify instance or watch) means a limit that
    /// polling can stand in for.
    static func isLimit(_ errno: Int32) -> Bool {
        errno == EMFILE || errno == ENFILE || errno == ENOSPC || errno == ENOMEM
    }
}
