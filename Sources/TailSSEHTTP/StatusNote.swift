import Synchronization

/// A note appended to systemd's `STATUS=` line (the outcome of the last reload that failed).
public final class StatusNote: Sendable {
    private let value = Mutex<String?>(nil)
    public init() {}
    public var note: String? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
