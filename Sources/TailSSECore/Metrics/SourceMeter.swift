import Synchronization

/// Counts what happens to one source, for `GET /metrics`.
///
/// Every call covers a batch — one read of the file or journal, one write to a client, one stream
/// opened — never a single line, so counting stays off the per-line path. Implementations must be
/// cheap and safe from any thread (the follower's, the thread pool's, the server's).
public protocol SourceMeter: Sendable {
    /// The source's follower read `count` new lines (or journal entries).
    func read(lines count: Int)
    /// A client was sent `events` events of this source, `bytes` bytes of them.
    func sent(events: Int, bytes: Int)
    /// A stream resumed exactly where its client's last id said.
    func resumed()
    /// A stream sent a `reset`: it could not go on from where its client stood.
    func reset()
    /// A client behind what the shared log holds read the file or journal itself, once.
    func caughtUp()
    /// A client whose live events were pushed to it stopped taking them as fast and went on at
    /// its own pace (``LivePushExit/notWritable``).
    func leftPush()
}

extension SourceMeter {
    public func leftPush() {}
}

/// A meter that counts nothing: for sources made without one (tests, tools).
public struct UncountedSource: SourceMeter {
    public init() {}
    public func read(lines count: Int) {}
    public func sent(events: Int, bytes: Int) {}
    public func resumed() {}
    public func reset() {}
    public func caughtUp() {}
}

/// The events and bytes one stream produced of one source since its writer last looked.
///
/// Whoever encodes events adds their number once per batch (``add(events:)``); a multiplexed
/// stream adds the bytes it wrote of the source (``add(bytes:)``). The stream's writer takes both
/// after each write (``take()``) and hands them to the source's ``SourceMeter``.
public final class SentTally: Sendable {
    private let events = Atomic<Int>(0)
    private let bytes = Atomic<Int>(0)

    public init() {}

    public func add(events count: Int) {
        if count > 0 { events.add(count, ordering: .relaxed) }
    }

    public func add(bytes count: Int) {
        if count > 0 { bytes.add(count, ordering: .relaxed) }
    }

    /// What was added since the last call.
    public func take() -> (events: Int, bytes: Int) {
        (events.exchange(0, ordering: .relaxed), bytes.exchange(0, ordering: .relaxed))
    }
}
