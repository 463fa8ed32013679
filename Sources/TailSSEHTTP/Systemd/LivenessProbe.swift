import Synchronization

/// Checks that one part of tailsse still makes progress: `nil` when it does, else what is wrong.
public typealias LivenessProbe = @Sendable () async -> String?

/// A probe that fails when `counter` has not advanced for longer than `limit`.
public func progressProbe(_ what: String, limit: Duration, counter: @escaping @Sendable () -> UInt64) -> LivenessProbe {
    let last = Mutex<(value: UInt64, at: ContinuousClock.Instant)?>(nil)
    return {
        let value = counter()
        let now = ContinuousClock.now
        return last.withLock { last -> String? in
            guard let previous = last, previous.value == value else {
                last = (value, now)
                return nil
            }
            return now - previous.at > limit ? "\(what) made no progress for \(now - previous.at)" : nil
        }
    }
}
