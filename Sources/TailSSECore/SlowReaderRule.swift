/// When a stream's client is closed for falling ever further behind: it was behind at both ends
/// of a window (it had more to receive than it took: a write waiting on it, or bytes its
/// connection could not send yet), it drained less than a minimum rate over the window, and its
/// sources grew by more than it drained (its lag grew). A slow client that is catching up,
/// however slowly, or that reads at least the minimum rate, keeps its place.
public struct SlowReaderRule: Sendable, Equatable {
    /// The least a client must drain per second while it falls behind; 0 turns the rule off.
    public var minimumBytesPerSecond: Int
    /// How long a client is watched before it is judged.
    public var window: Duration

    public init(minimumBytesPerSecond: Int = 1024, window: Duration = .seconds(60)) {
        self.minimumBytesPerSecond = minimumBytesPerSecond
        self.window = window
    }

    public var isEnabled: Bool { minimumBytesPerSecond > 0 && window > .zero }
}

/// One look at a stream, taken by the sweeper: the counts are running totals since the stream began.
public struct StreamProgressSample: Sendable, Equatable {
    public var at: ContinuousClock.Instant
    /// Whether the client had more to receive than it took at that moment.
    public var isBehind: Bool
    /// Bytes the client drained (acknowledged by its TCP stack, or taken by its channel).
    public var drained: UInt64
    /// Bytes of events its sources have appended at their live ends.
    public var appended: UInt64

    public init(at: ContinuousClock.Instant, isBehind: Bool, drained: UInt64, appended: UInt64) {
        self.at = at
        self.isBehind = isBehind
        self.drained = drained
        self.appended = appended
    }
}

/// Judges one stream by ``SlowReaderRule`` from the samples it is shown, a window at a time; no IO.
public struct LagWindow: Sendable {
    /// A stream that fell behind: what it drained and how fast its sources grew, per second.
    public struct FallingBehind: Sendable, Equatable, CustomStringConvertible {
        public var drainedBytesPerSecond: Int
        public var appendedBytesPerSecond: Int

        public init(drainedBytesPerSecond: Int, appendedBytesPerSecond: Int) {
            self.drainedBytesPerSecond = drainedBytesPerSecond
            self.appendedBytesPerSecond = appendedBytesPerSecond
        }

        public var description: String {
            "falling behind: read \(drainedBytesPerSecond) B/s while its sources grew \(appendedBytesPerSecond) B/s"
        }
    }

    private var start: StreamProgressSample?

    public init() {}

    /// Whether a sample taken `at` would start a window or end one.
    public func isDue(at instant: ContinuousClock.Instant, rule: SlowReaderRule) -> Bool {
        guard let start else { return true }
        return instant - start.at >= rule.window
    }

    /// Takes a sample; returns a verdict when a whole window that starts and ends with the client
    /// behind shows it falling behind. A window starts at a sample that finds the client behind.
    public mutating func observe(_ sample: StreamProgressSample, rule: SlowReaderRule) -> FallingBehind? {
        guard rule.isEnabled else { return nil }
        guard let start, start.isBehind else {
            self.start = sample
            return nil
        }
        let elapsed = sample.at - start.at
        guard elapsed >= rule.window else { return nil }
        self.start = sample
        let seconds = elapsed / .seconds(1)
        let drained = sample.drained &- start.drained
        let appended = sample.appended &- start.appended
        guard sample.isBehind, sample.drained >= start.drained, sample.appended >= start.appended,
              Double(drained) < Double(rule.minimumBytesPerSecond) * seconds,
              appended > drained
        else { return nil }
        return FallingBehind(
            drainedBytesPerSecond: Int((Double(drained) / seconds).rounded()),
            appendedBytesPerSecond: Int((Double(appended) / seconds).rounded())
        )
    }
}
