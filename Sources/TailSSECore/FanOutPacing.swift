/// How long a source's reader lets new lines gather before it publishes them, by how many clients
/// wait for them.
///
/// Every publication wakes every client, and each wakes, encodes and writes once, whatever the
/// number of lines: with many clients the cost is per publication, not per line. So a reader with
/// many clients waits a little (40 µs per client, at most 10 ms) after it is told of new lines, and
/// publishes them together: 100 clients at 1,000 lines/s get about four lines per write instead
/// of one, for at most 4 ms of latency; a single client waits for nothing.
public enum FanOutPacing {
    public static let perClientMicroseconds = 40
    public static let maximumMicroseconds = 10_000
    /// Below this, a pause costs more than it saves.
    public static let minimumMicroseconds = 200

    /// The pause before reading new lines, in microseconds (0: none).
    public static func pauseMicroseconds(clients: Int) -> Int {
        let pause = min(maximumMicroseconds, clients * perClientMicroseconds)
        return pause < minimumMicroseconds ? 0 : pause
    }
}
