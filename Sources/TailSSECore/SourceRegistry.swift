import Synchronization

/// The sources tailsse serves now; reloading the configuration changes them while clients stream.
///
/// Lookups are cheap and safe from any task. Changes (``apply(_:)``, ``endAll()``) are serialized:
/// sources leave the listing before they end, and join it after they began.
public final class SourceRegistry: Sendable {
    private let current = Mutex<[any ManagedSource]>([])
    private let updates = ChangeLock()

    public init() {}

    /// The sources in configuration order.
    public var sources: [any ManagedSource] { current.withLock { $0 } }

    public func source(named name: String) -> (any ManagedSource)? {
        current.withLock { $0.first { $0.name == name } }
    }

    /// What ``apply(_:)`` changed, by source name.
    public struct Changes: Sendable, Equatable, CustomStringConvertible {
        public var added: [String] = []
        public var removed: [String] = []
        public var kept: [String] = []

        public var description: String {
            "added: \(added.isEmpty ? "-" : added.joined(separator: ", ")); "
                + "removed: \(removed.isEmpty ? "-" : removed.joined(separator: ", ")); "
                + "unchanged: \(kept.isEmpty ? "-" : kept.joined(separator: ", "))"
        }
    }

    /// A source of the wanted configuration that could not begin.
    public struct BeginFailure: Error, CustomStringConvertible {
        public var source: String
        public var underlying: any Error
        public var description: String { "source '\(source)' could not start: \(underlying)" }
    }

    /// Makes `wanted` the served sources. A wanted source whose name and definition match a
    /// current one is dropped unused and the current one kept with its clients; other current
    /// sources end with `reason` (or, when a wanted source takes over their name with another
    /// definition, with a reason saying so); new ones begin. Names in `wanted` must be unique.
    ///
    /// When a new source fails to begin, the sources that began in this call end again, nothing
    /// else changes, and the error is thrown.
    @discardableResult
    public func apply(_ wanted: [any ManagedSource], reason: String = "the source was removed from the configuration") async throws -> Changes {
        try await updates.withLock {
            let before = sources
            var changes = Changes()
            var next: [any ManagedSource] = []
            var begun: [any ManagedSource] = []
            for source in wanted {
                if let existing = before.first(where: { $0.name == source.name && $0.definition == source.definition }) {
                    next.append(existing)
                    changes.kept.append(source.name)
                    continue
                }
                do {
                    try await source.begin()
                } catch {
                    for started in begun { await started.end(reason: nil) }
                    throw BeginFailure(source: source.name, underlying: error)
                }
                begun.append(source)
                next.append(source)
                changes.added.append(source.name)
            }
            let leaving = before.filter { !changes.kept.contains($0.name) }
            current.withLock { $0 = next }
            for source in leaving {
                changes.removed.append(source.name)
                let replaced = wanted.contains { $0.name == source.name }
                await source.end(reason: replaced ? "the source was changed in the configuration; reconnect to follow it anew" : reason)
            }
            return changes
        }
    }

    /// Ends every source without an `end` event (shutdown: clients reconnect and resume).
    public func endAll() async {
        await updates.withLock {
            let all = current.withLock { sources -> [any ManagedSource] in
                defer { sources = [] }
                return sources
            }
            for source in all { await source.end(reason: nil) }
        }
    }
}

/// Runs async critical sections one at a time, in arrival order.
private final class ChangeLock: Sendable {
    private let state = Mutex<(busy: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func withLock<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if granted { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
