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
    return found.sorted { ($0.modified.tv_sec, $0.modified.tv_nsec) < ($1.modified.tv_sec, $1.modified.tv_nsec) }
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
