/// How long a source's reader lets new lines gather before it publishes them, by how many clients
/// wait for them.
///
/// Every publication wakes every client that reads on its own, and each wakes, encodes and writes
/// once, whatever the number of lines: with many clients the cost is per publication, not per line.
/// So a reader with many clients waits a little (40 µs per such client, at most 10 ms) after it is
/// told of new lines, and publishes them together. A client on the push path costs a write (and its
/// client's read), not a task's wake-up: 20 µs. 100 pushed clients at 1,000 lines/s wait 2 ms (two
/// lines per write); a single client waits for nothing.
public enum FanOutPacing {
    public static let perClientMicroseconds = 40
    public static let perPushedClientMicroseconds = 20
    public static let maximumMicroseconds = 10_000
    /// Below this, a pause costs more than it saves.
    public static let minimumMicroseconds = 200

    /// The pause before reading new lines, in microseconds (0: none), for `clients` clients of
    /// which `pushed` are on the push path.
    public static func pauseMicroseconds(clients: Int, pushed: Int = 0) -> Int {
        let pushed = min(max(0, pushed), clients)
        let pause = min(maximumMicroseconds, (clients - pushed) * perClientMicroseconds + pushed * perPushedClientMicroseconds)
        return pause < minimumMicroseconds ? 0 : pause
    }
}
