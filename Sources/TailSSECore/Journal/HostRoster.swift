/// The hosts (`_HOSTNAME`) whose entries a journal follower has read: what `GET /sources` lists
/// for a journal source, e.g. every host that uploads to a systemd-journal-remote collector.
///
/// Bounded: it keeps at most ``limit`` names (the first ones seen); a name seen once the roster is
/// full is not kept, and ``isComplete`` turns `false` for good. Noting an entry's host costs one
/// comparison with the previous entry's host (the common case: a host's entries come in runs) and
/// a set lookup otherwise.
public struct HostRoster: Sendable {
    /// Most names kept.
    public let limit: Int
    /// Whether every host seen is in ``names`` (`false` once one did not fit).
    public private(set) var isComplete = true
    private var seen: Set<[UInt8]> = []
    private var previous: [UInt8]?

    /// The default bound: 1,000 names.
    public static let defaultLimit = 1000

    public init(limit: Int = HostRoster.defaultLimit) {
        self.limit = max(0, limit)
    }

    /// Notes that an entry of `host` was read; `true` when this changed the roster (a new name
    /// kept, or the first name that did not fit).
    @discardableResult
    public mutating func note(_ host: ArraySlice<UInt8>) -> Bool {
        if let previous, previous.elementsEqual(host) { return false }
        let name = Array(host)
        previous = name
        if seen.contains(name) { return false }
        guard seen.count < limit else {
            defer { isComplete = false }
            return isComplete
        }
        seen.insert(name)
        return true
    }

    /// The names kept, sorted (invalid UTF-8 repaired).
    public var names: [String] {
        seen.map { String(decoding: $0, as: UTF8.self) }.sorted()
    }
}
