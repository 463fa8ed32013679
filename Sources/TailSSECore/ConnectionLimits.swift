/// How many connections tailsse holds at once, in all and per client address: past a limit a new
/// connection is answered 503 and closed, and the connections already open are untouched.
public struct ConnectionLimits: Sendable, Equatable {
    public var total: Int
    public var perClient: Int

    public init(total: Int, perClient: Int) {
        self.total = total
        self.perClient = perClient
    }

    /// Defaults for a process allowed `openFiles` descriptors: all but 128 of them (kept for log
    /// files, the journal and listeners) in all, and a sixteenth of that, at least 16, per client
    /// address — so no single address can take every descriptor.
    public static func defaults(openFiles: Int) -> ConnectionLimits {
        let total = max(16, openFiles - 128)
        return ConnectionLimits(total: total, perClient: min(total, max(16, total / 16)))
    }
}

/// Counts open connections against ``ConnectionLimits``; no IO.
public struct ConnectionCounter: Sendable {
    /// Why a connection was refused.
    public enum Refusal: String, Sendable {
        case total
        case perClient = "per_client"
    }

    public let limits: ConnectionLimits
    public private(set) var open = 0
    private var perClient: [String: Int] = [:]

    public init(limits: ConnectionLimits) { self.limits = limits }

    /// Counts a new connection from `client`, or says which limit refuses it (then nothing is counted).
    public mutating func admit(client: String) -> Refusal? {
        if open >= limits.total { return .total }
        if perClient[client, default: 0] >= limits.perClient { return .perClient }
        open += 1
        perClient[client, default: 0] += 1
        return nil
    }

    /// Forgets an admitted connection from `client` that closed.
    public mutating func release(client: String) {
        open -= 1
        if let count = perClient[client], count > 1 { perClient[client] = count - 1 } else { perClient.removeValue(forKey: client) }
    }
}
