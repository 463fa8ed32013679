import NIOCore
import TailSSESources

/// The viewer page's files, read once from `--static-dir` at startup.
///
/// Only regular files directly in the directory with plain names are served, looked up by exact
/// name: no part of a request ever becomes a filesystem path.
struct StaticAssets: Sendable {
    struct Asset: Sendable {
        var bytes: ByteBuffer
        var contentType: String
    }

    private(set) var assets: [String: Asset] = [:]

    init(directory: String?) {
        guard let directory else { return }
        for name in directoryEntries(directory) {
            guard !name.hasPrefix("."), name.utf8.allSatisfy(Self.isPlainNameByte),
                  let bytes = readSmallFile(directory + "/" + name)
            else { continue }
            assets[name] = Asset(bytes: ByteBuffer(bytes: bytes), contentType: Self.contentType(of: name))
        }
    }

    subscript(name: String) -> Asset? { assets[name] }

    private static func isPlainNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    private static func contentType(of name: String) -> String {
        switch name.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "json": "application/json"
        default: "application/octet-stream"
        }
    }
}
