#if canImport(Glibc)
import Glibc
#endif
import TailSSECore

/// A rotated generation of a followed file lying beside it (`app.log.1`, `app.log-20250101`, …),
/// as `lstat` sees it: nothing has been opened to find it.
struct RotatedSibling {
    var path: String
    var suffix: RotationSuffix
    var identity: FileIdentity
    var links: UInt64
    var modified: timespec
}

extension RotatedSibling {
    /// `true` when this file can be the generation rotated next after `previous`: its name says so
    /// in the same scheme, and it was last written no earlier.
    func canFollow(_ previous: RotatedSibling) -> Bool {
        previous.suffix.isOlder(than: suffix) == true
            && (modified.tv_sec, modified.tv_nsec) >= (previous.modified.tv_sec, previous.modified.tv_nsec)
    }
}

/// The entries of `directory` whose names are rotations of `baseName` (``RotationSuffix``) and that
/// are regular files — not symlinks, fifos or devices — on `device`, oldest first: the order in
/// which rotation wrote them. Found with `readdir` and `lstat` only; nothing is opened.
func rotatedSiblings(directory: String, baseName: String, device: UInt64) -> [RotatedSibling] {
    var found: [RotatedSibling] = []
    for name in directoryEntries(directory) {
        guard let suffix = RotationSuffix(name: name, rotating: baseName) else { continue }
        let path = directory == "/" ? "/" + name : directory + "/" + name
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, UInt64(info.st_dev) == device else { continue }
        found.append(RotatedSibling(
            path: path,
            suffix: suffix,
            identity: FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)),
            links: UInt64(info.st_nlink),
            modified: info.st_mtim
        ))
    }
    let oneScheme = Set(found.map(\.suffix.scheme)).count <= 1
    return found.sorted { a, b in
        if oneScheme, let older = a.suffix.isOlder(than: b.suffix) { return older }
        let (x, y) = ((a.modified.tv_sec, a.modified.tv_nsec), (b.modified.tv_sec, b.modified.tv_nsec))
        if x != y { return x < y }
        return a.suffix.isOlder(than: b.suffix) ?? (a.path < b.path)
    }
}

/// ``rotatedSiblings(directory:baseName:device:)`` listed until two listings in a row agree, so a
/// rename that moved a file while it was listed is not taken for the directory's state: a listing
/// racing a rotation can miss a file (listed under neither its old nor its new name) or see one
/// twice, and a missed generation would be skipped. `nil` when no two of `attempts` listings
/// agreed (files are being renamed the whole time): look again later.
func settledRotatedSiblings(directory: String, baseName: String, device: UInt64, attempts: Int = 16) -> [RotatedSibling]? {
    var previous = rotatedSiblings(directory: directory, baseName: baseName, device: device)
    for _ in 1..<max(2, attempts) {
        let listed = rotatedSiblings(directory: directory, baseName: baseName, device: device)
        if listed.elementsEqual(previous, by: { $0.path == $1.path && $0.identity == $1.identity && $0.links == $1.links }) {
            return listed
        }
        previous = listed
    }
    return nil
}
