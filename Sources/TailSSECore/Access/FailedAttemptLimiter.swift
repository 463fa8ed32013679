/// Slows down guessing of tokens: each client address may fail to authenticate `burst` times,
/// then once per `refill` (a token bucket per address). Memory is bounded: at most `capacity`
/// addresses are remembered, and those whose bucket has refilled are forgotten first.
public struct FailedAttemptLimiter: Sendable {
    public let burst: Int
    public let refill: Duration
    public let capacity: Int

    private struct Bucket: Sendable {
        var failures: Double
        var updated: ContinuousClock.Instant
    }

    private var buckets: [String: Bucket] = [:]

    public init(burst: Int = 10, refill: Duration = .seconds(6), capacity: Int = 4096) {
        self.burst = burst
        self.refill = refill
        self.capacity = capacity
    }

    /// How long the client at `address` must wait before its next attempt counts, or `nil` when it
    /// may try now.
    public mutating func retryAfter(for address: String, now: ContinuousClock.Instant) -> Duration? {
        guard var bucket = buckets[address] else { return nil }
        drain(&bucket, now: now)
        buckets[address] = bucket
        guard bucket.failures > Double(burst - 1) else { return nil }
        return refill * (bucket.failures - Double(burst - 1))
    }

    /// Counts a failed attempt of the client at `address`.
    public mutating func recordFailure(for address: String, now: ContinuousClock.Instant) {
        var bucket = buckets[address] ?? Bucket(failures: 0, updated: now)
        drain(&bucket, now: now)
        bucket.failures += 1
        if buckets[address] == nil, buckets.count >= capacity { evict(now: now) }
        buckets[address] = bucket
    }

    /// The key failures of a client are counted under: an IPv4 address as it is, an IPv6 address
    /// by its /64 network (one host commonly holds a whole /64), written `a:b:c:d::/64`.
    public static func key(forAddress address: String) -> String {
        guard address.contains(":"), !address.contains(".") else { return address }
        let halves = address.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false).map {
            $0.split(separator: ":", omittingEmptySubsequences: true)
        }
        let head = halves[0]
        let tail = halves.count > 1 ? halves[1] : []
        let groups = head + Array(repeating: "0", count: max(0, 8 - head.count - tail.count)) + tail
        guard groups.count == 8 else { return address }
        return groups.prefix(4).map { String(UInt16($0, radix: 16) ?? 0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// Number of addresses remembered.
    public var trackedAddresses: Int { buckets.count }

    private func drain(_ bucket: inout Bucket, now: ContinuousClock.Instant) {
        let elapsed = now - bucket.updated
        guard elapsed > .zero else { return }
        bucket.failures = max(0, bucket.failures - elapsed / refill)
        bucket.updated = now
    }

    private mutating func evict(now: ContinuousClock.Instant) {
        for (address, var bucket) in buckets {
            drain(&bucket, now: now)
            if bucket.failures == 0 { buckets.removeValue(forKey: address) }
        }
        while buckets.count >= capacity, let oldest = buckets.min(by: { $0.value.updated < $1.value.updated })?.key {
            buckets.removeValue(forKey: oldest)
        }
    }
}
