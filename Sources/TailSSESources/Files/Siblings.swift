#if canImport(Glibc)
import Glibc
#endif
import TailSSECore

/// A rotated copy of a followed file found beside it (`app.log.1`, `app.log-20250101`, …).
struct RotatedSibling {
    var path: String
    var identity: FileIdentity
    var modified: timespec
}

/// The regular files of `directory` whose names start with `baseName` (other than the file itself,
/// and not compressed), oldest modification first: the order in which rotation wrote them. Only
/// names listed by the directory are ever opened, never anything taken from a request.
func rotatedSiblings(directory: String, baseName: String) -> [RotatedSibling] {
    let compressed = [".gz", ".xz", ".zst", ".bz2", ".lz4", ".zip"]
    var found: [RotatedSibling] = []
    for name in directoryEntries(directory) where name.hasPrefix(baseName) && name != baseName {
        guard !compressed.contains(where: { name.hasSuffix($0) }) else { continue }
        let path = directory == "/" ? "/" + name : directory + "/" + name
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
        found.append(RotatedSibling(
            path: path,
            identity: FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)),
            modified: info.st_mtim
        ))
    }
    return found.sorted { a, b in
        if (a.modified.tv_sec, a.modified.tv_nsec) != (b.modified.tv_sec, b.modified.tv_nsec) {
            return (a.modified.tv_sec, a.modified.tv_nsec) < (b.modified.tv_sec, b.modified.tv_nsec)
        }
        return rotatedEarlier(a.path, b.path)
    }
}

/// For files modified at the same instant: `app.log.2` was rotated before `app.log.1` (numbered
/// suffixes count up with age); other suffixes (dates) sort oldest first by name.
private func rotatedEarlier(_ a: String, _ b: String) -> Bool {
    func number(_ path: String) -> Int? {
        let suffix = path.reversed().prefix { $0.isNumber }
        return suffix.isEmpty ? nil : Int(String(suffix.reversed()))
    }
    if let x = number(a), let y = number(b), x != y { return x > y }
    return a < b
}

/// Opens the rotated file with `identity` and the rotated files written after it, in order.
func openRotationChain(directory: String, baseName: String, from identity: FileIdentity) -> [OpenFile] {
    let siblings = rotatedSiblings(directory: directory, baseName: baseName)
    guard let start = siblings.firstIndex(where: { $0.identity == identity }) else { return [] }
    var chain: [OpenFile] = []
    for sibling in siblings[start...] {
        guard let file = try? OpenFile.open(path: sibling.path), file.identity == sibling.identity else {
            if chain.isEmpty { return [] }
            break
        }
        chain.append(file)
    }
    return chain
}
