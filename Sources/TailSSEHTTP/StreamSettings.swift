import TailSSECore

/// How streams behave on the wire; the same for every source.
public struct StreamSettings: Sendable {
    /// Longest quiet time before a heartbeat is sent.
    public var heartbeat: Duration
    /// A client whose pending write has not completed for this long is disconnected (it can resume).
    public var writeTimeout: Duration
    /// The `retry:` hint sent to EventSource clients, in milliseconds.
    public var retryMilliseconds: Int
    /// When a client that keeps falling behind while reading too slowly is closed.
    public var slowReader: SlowReaderRule
    /// Whether up-to-date clients get the live end pushed from the reader (``LivePush``) rather
    /// than each reading it in a task of its own.
    public var livePush: Bool

    public init(
        heartbeat: Duration = .seconds(15), writeTimeout: Duration = .seconds(30), retryMilliseconds: Int = 2000,
        slowReader: SlowReaderRule = SlowReaderRule(), livePush: Bool = true
    ) {
        self.livePush = livePush
        self.heartbeat = heartbeat
        self.writeTimeout = writeTimeout
        self.retryMilliseconds = retryMilliseconds
        self.slowReader = slowReader
    }
}
