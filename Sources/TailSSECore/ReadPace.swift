/// How much a client's stream reads for it at a time, by how fast its connection takes what it
/// was given.
///
/// A client that asks for more within ``keepingUp`` of its last batch takes bytes as fast as they
/// come: it gets large reads (few, cheap steps through a long history). One that does not — its
/// connection drains slowly, or it just left the push path because its connection was full — gets
/// small ones, so what it holds and what is encoded ahead of its reading stay small (issue 13:
/// a slow client costs file reads, not memory).
public struct ReadPace: Sendable {
    /// A client that asks for its next batch within this time of the last one keeps up.
    public static let keepingUp: Duration = .milliseconds(20)
    /// Bytes of events a client that keeps up gets per step.
    public static let largeBytes = 256 << 10
    /// Bytes of events a client that does not keep up gets per step.
    public static let smallBytes = 16 << 10

    private var lastHandedOut: ContinuousClock.Instant?

    public init() {}

    /// Whether the client asked again soon enough after its last batch.
    public func keepsUp(at now: ContinuousClock.Instant = .now) -> Bool {
        guard let lastHandedOut else { return false }
        return now - lastHandedOut < Self.keepingUp
    }

    /// The bytes of events to read for the client now.
    public func bytes(at now: ContinuousClock.Instant = .now) -> Int {
        Self.bytes(keepingUp: keepsUp(at: now))
    }

    /// The bytes of events to read for a client that keeps up, or one that does not.
    public static func bytes(keepingUp: Bool) -> Int {
        keepingUp ? largeBytes : smallBytes
    }

    /// The client was handed a batch (at `now`).
    public mutating func handedOut(at now: ContinuousClock.Instant = .now) {
        lastHandedOut = now
    }
}
