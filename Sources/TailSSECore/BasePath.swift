/// The path tailsse is served under, e.g. `/logs/` behind a reverse proxy that forwards that
/// sub-path: every route, the page and the session cookie live below it. It starts and ends with
/// `/`; the default is `/`.
public struct BasePath: Sendable, Equatable, CustomStringConvertible {
    /// The path with its leading and trailing `/`, e.g. `/logs/`.
    public let path: String

    public static let root = BasePath(checked: "/")

    private init(checked path: String) { self.path = path }

    /// The most segments and bytes a base path may have.
    public static let maxSegments = 8
    public static let maxBytes = 256

    /// Parses a configured base path: `/`, or `/` followed by segments of `[A-Za-z0-9._~-]`
    /// (not `.` or `..`) separated by single slashes; a missing trailing `/` is added.
    public init?(parsing text: String) {
        guard text.utf8.count <= Self.maxBytes, text.utf8.first == UInt8(ascii: "/") else { return nil }
        let segments = text.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var kept: [Substring.UTF8View.SubSequence] = []
        for (index, segment) in segments.enumerated() {
            if segment.isEmpty {
                guard index == segments.count - 1 else { return nil }
                continue
            }
            guard segment.allSatisfy(Self.isSegmentByte), !segment.elementsEqual(".".utf8), !segment.elementsEqual("..".utf8) else { return nil }
            kept.append(segment)
        }
        guard kept.count <= Self.maxSegments else { return nil }
        self.path = kept.isEmpty ? "/" : "/" + kept.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/") + "/"
    }

    public var isRoot: Bool { path == "/" }

    /// The path without its trailing `/` (`""` for the root): the prefix of every route.
    public var routePrefix: String { String(path.dropLast()) }

    public var description: String { path }

    /// The route a request path names below the base (`/logs/sources` → `/sources`; the base
    /// itself → `/`), or `nil` for a path outside it.
    public func route(ofPath requestPath: String) -> String? {
        if isRoot { return requestPath }
        if requestPath == routePrefix { return "/" }
        guard requestPath.hasPrefix(path) else { return nil }
        return "/" + requestPath.dropFirst(path.count)
    }

    private static func isSegmentByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
