/// What an authenticated request may read: every source, or some by name.
public struct AccessGrant: Sendable, Equatable {
    /// The SHA-256 of the token the grant came from: it names the token (to find out on reload
    /// whether it still holds) without holding the token itself.
    public let credential: [UInt8]
    /// The sources the token may read; `nil` for all of them.
    public let sources: Set<String>?

    public init(credential: [UInt8], sources: Set<String>?) {
        self.credential = credential
        self.sources = sources
    }

    /// A grant for everything: what every request has when no token file is configured.
    public static let everything = AccessGrant(credential: [], sources: nil)

    /// Whether the grant lets its holder read the source `name`.
    public func allows(_ name: String) -> Bool { sources?.contains(name) ?? true }
}
