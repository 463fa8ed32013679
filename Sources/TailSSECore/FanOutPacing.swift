/// How long a source's reader lets new lines gather before it publishes them, by how many clients
/// a publication reaches.
///
/// Every publication wakes every client that waits at the live end in a task of its own, and each
/// wakes, encodes and writes once, whatever the number of lines: with many such clients the cost is
/// per publication, not per line. So a reader with many of them waits a little (40 µs per client,
/// at most 10 ms) after it is told of new lines, and publishes them together. A client on the push
/// path costs a write (and its client's read), not a task's wake-up: 20 µs. 100 pushed clients at
/// 1,000 lines/s wait 2 ms (two lines per write: measured, that halves the writes and lowers the
/// p99, though not the p50); a single client waits for nothing. Clients that are behind read at
/// their own pace and are not counted.
public enum FanOutPacing {
    public static let perClientMicroseconds = 40
    public static let perPushedClientMicroseconds = 20
    public static let maximumMicroseconds = 10_000
    /// Below this, a pause costs more than it saves.
    public static let minimumMicroseconds = 200

    /// The pause before reading new lines, in microseconds (0: none), for `waking` clients that a
    /// publication wakes, each in a task of its own, and `pushed` clients on the push path.
    public static func pauseMicroseconds(waking: Int, pushed: Int = 0) -> Int {
        let pause = min(maximumMicroseconds, max(0, waking) * perClientMicroseconds + max(0, pushed) * perPushedClientMicroseconds)
        return pause < minimumMicroseconds ? 0 : pause
    }
}
