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

/// The rotated generations of a followed file that lie beside it, and which of them may be read.
///
/// A generation a resume id names must be one tailsse followed (``FollowedGenerations``, with a
/// matching fingerprint). The generations rotated after it are read too when tailsse followed them,
/// or, never seen (several rotations between two looks, or while tailsse was down), when they are
/// single-linked regular files whose names put them between it and the file followed now.
struct RotatedGenerations {
    let directory: String
    let baseName: String
    let followed: FollowedGenerationStore

    /// Opens the rotated file `identity` and the rotated files written after it, oldest first; `[]`
    /// when `identity` is not a followed generation lying beside the file under a rotation name.
    /// Nothing that fails these rules is opened.
    func openChain(from identity: FileIdentity) -> [OpenFile] {
        guard followed.entry(for: identity) != nil else { return [] }
        let siblings = list(device: identity.device)
        guard let start = siblings.first(where: { $0.identity == identity }),
              let first = open(start, inferred: false)
        else { return [] }
        return [first] + openNewer(than: identity, in: siblings)
    }

    /// Opens the rotated files written after the followed file `identity` (which has been renamed
    /// away), oldest first; `[]` when it does not lie beside under a rotation name.
    func openGenerations(after identity: FileIdentity) -> [OpenFile] {
        openNewer(than: identity, in: list(device: identity.device))
    }

    private func list(device: UInt64) -> [RotatedSibling] {
        rotatedSiblings(directory: directory, baseName: baseName, device: device)
    }

    /// Walks the generations after `identity` one by one. A rotation that moves files while we
    /// walk makes an open fail (gone, or another file under that name): the directory is listed
    /// again and the walk goes on from the last generation opened.
    private func openNewer(than identity: FileIdentity, in listed: [RotatedSibling]) -> [OpenFile] {
        var chain: [OpenFile] = []
        var siblings = listed
        var last = identity
        var relists = 0
        while let index = siblings.firstIndex(where: { $0.identity == last }), index + 1 < siblings.count {
            if let file = open(siblings[index + 1], inferred: true) {
                chain.append(file)
                last = file.identity
                continue
            }
            relists += 1
            guard relists <= 8 else { break }
            siblings = list(device: identity.device)
        }
        return chain
    }

    /// Opens `sibling` if the rules allow: a followed generation with its fingerprint, or (when
    /// `inferred`) a single-linked file never seen before; recorded as followed once opened.
    private func open(_ sibling: RotatedSibling, inferred: Bool) -> OpenFile? {
        let entry = followed.entry(for: sibling.identity)
        guard entry != nil || (inferred && sibling.links == 1) else { return nil }
        guard let file = try? OpenFile.openGeneration(path: sibling.path, identity: sibling.identity) else { return nil }
        if let entry {
            guard let leading = try? file.leadingBytes(), entry.fingerprint.matches(leading) else { return nil }
        } else {
            followed.record(file)
        }
        return file
    }
}
