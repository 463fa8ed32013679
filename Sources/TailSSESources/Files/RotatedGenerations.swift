#if canImport(Glibc)
import Glibc
#endif
import TailSSECore

/// Files opened from the rotated generations beside a followed file, oldest first.
struct OpenedGenerations {
    var files: [OpenFile]
    /// `false` when files kept being renamed while it looked (no two listings of the directory in a
    /// row agreed): generations after the last file may be missing, so look again later.
    var isComplete: Bool

    /// Nothing to open (the rules refuse it, or it is not there).
    static let none = OpenedGenerations(files: [], isComplete: true)
    /// Nothing opened: files were being renamed the whole time it looked.
    static let unsettled = OpenedGenerations(files: [], isComplete: false)

    /// These generations, after `earlier`.
    func after(_ earlier: [OpenFile]) -> OpenedGenerations {
        OpenedGenerations(files: earlier + files, isComplete: isComplete)
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

    /// Opens the rotated file `identity` and the rotated files written after it, oldest first; none
    /// when `identity` is not a followed generation lying beside the file under a rotation name.
    /// Nothing that fails these rules is opened.
    ///
    /// When the file no longer holds `check` before `offset`, the id is in what it held before it
    /// was truncated in place (copytruncate, then renamed away): the chain then starts with the copy
    /// holding it (``openCopy(of:offset:check:before:)``) and the copies of its later truncations
    /// (``openLaterCopies(after:of:)``), followed by the file from its start. Also
    /// when the truncation happened while tailsse did not look (it was down): the file no longer
    /// starts as it did when it was followed.
    ///
    /// Not complete (``OpenedGenerations/isComplete``) when files kept being renamed while it looked.
    func openChain(from identity: FileIdentity, offset: Int64, check: UInt32) -> OpenedGenerations {
        guard followed.entry(for: identity) != nil else { return .none }
        guard let siblings = list(device: identity.device) else { return .unsettled }
        guard let start = siblings.first(where: { $0.identity == identity }) else { return .none }
        switch open(start, after: nil) {
        case .opened(let first):
            if let size = try? first.size(), offset <= size, let history = try? first.history(before: offset),
               PositionCheck(of: history).value == check {
                return openNewer(than: identity, in: siblings).after([first])
            }
            guard let copy = openCopy(of: identity, offset: offset, check: check) else { return .none }
            return openNewer(than: identity, in: siblings).after([copy] + openLaterCopies(after: copy.identity, of: identity) + [first])
        case .failed:
            return .unsettled
        case .refused:
            guard start.links == 1, let entry = followed.entry(for: identity),
                  let file = try? OpenFile.openGeneration(path: start.path, identity: identity),
                  let leading = try? file.leadingBytes(), !entry.fingerprint.matches(leading),
                  let copy = openCopy(of: identity, offset: offset, check: check, before: [entry.fingerprint] + followed.truncatedContent(of: identity))
            else { return .none }
            followed.record(file)   // what it held before becomes its truncated content
            return openNewer(than: identity, in: siblings).after([copy] + openLaterCopies(after: copy.identity, of: identity) + [file])
        }
    }

    /// Opens again the followed generation `identity` lying beside the file under a rotation name,
    /// if it still starts as recorded; `nil` otherwise.
    func reopen(_ identity: FileIdentity) -> OpenFile? {
        guard let sibling = latestList(device: identity.device).first(where: { $0.identity == identity }),
              case .opened(let file) = open(sibling, after: nil)
        else { return nil }
        return file
    }

    /// Opens the rotated files written after the followed file `identity` (which has been renamed
    /// away), oldest first; none when it does not lie beside under a rotation name. Not complete
    /// when files kept being renamed while it looked: the caller looks again later.
    func openGenerations(after identity: FileIdentity) -> OpenedGenerations {
        guard let siblings = list(device: identity.device) else { return .unsettled }
        return openNewer(than: identity, in: siblings)
    }

    /// Opens the copy a copytruncate rotation left beside the followed file `identity` before
    /// truncating it: a single-linked file under a rotation name that starts with what `identity`
    /// held before a truncation (by its recorded fingerprint) and holds `check` before `offset`.
    /// Newest first; `nil` when there is none (nothing else is opened). Files being renamed while it
    /// looks (a rotation shifting the names) make it look again, a few times.
    func openCopy(of identity: FileIdentity, offset: Int64, check: UInt32, before known: [GenerationFingerprint]? = nil) -> OpenFile? {
        let before = known ?? followed.truncatedContent(of: identity)
        guard !before.isEmpty else { return nil }
        for _ in 0..<Self.copyLooks {
            guard let siblings = list(device: identity.device) else { continue }
            var moved = false
            for sibling in siblings.reversed() where sibling.links == 1 && sibling.identity != identity {
                guard let file = try? OpenFile.openGeneration(path: sibling.path, identity: sibling.identity) else {
                    moved = true
                    continue
                }
                guard let leading = try? file.leadingBytes(), before.contains(where: { $0.matches(leading) }),
                      let size = try? file.size(), offset <= size,
                      let history = try? file.history(before: offset), PositionCheck(of: history).value == check
                else { continue }
                followed.record(file)
                return file
            }
            if !moved { return nil }
        }
        return nil
    }

    /// How many listings ``openCopy(of:offset:check:before:)`` makes while files are being renamed.
    private static let copyLooks = 8

    /// The copies that later copytruncate rotations of the followed file `identity` left beside it
    /// after the copy `copy`, oldest first: the rotated files right after it that start with what
    /// `identity` held before one of its truncations. Stops at the first file that does not.
    func openLaterCopies(after copy: FileIdentity, of identity: FileIdentity) -> [OpenFile] {
        let before = followed.truncatedContent(of: identity)
        guard !before.isEmpty else { return [] }
        var copies: [OpenFile] = []
        for file in openGenerations(after: copy).files {
            guard file.identity != identity, let leading = try? file.leadingBytes(),
                  before.contains(where: { $0.matches(leading) })
            else { break }
            copies.append(file)
        }
        return copies
    }

    /// The rotated siblings as two listings in a row saw them (``settledRotatedSiblings``), or `nil`.
    private func list(device: UInt64) -> [RotatedSibling]? {
        settledRotatedSiblings(directory: directory, baseName: baseName, device: device)
    }

    /// The settled listing, else the latest: for looking up a file whose identity is then checked.
    private func latestList(device: UInt64) -> [RotatedSibling] {
        list(device: device) ?? rotatedSiblings(directory: directory, baseName: baseName, device: device)
    }

    /// Walks the generations after `identity` one by one, passing over files the rules refuse. A
    /// rotation that moves files while we walk makes an open fail (gone, or another file under that
    /// name): the directory is listed again and the walk goes on from the last generation opened.
    /// `listed` must be settled (``settledRotatedSiblings``): a generation a listing missed would
    /// be skipped.
    private func openNewer(than identity: FileIdentity, in listed: [RotatedSibling]) -> OpenedGenerations {
        var chain: [OpenFile] = []
        var siblings = listed
        var last = identity
        var refused: Set<FileIdentity> = []
        var relists = 0
        while let index = siblings.firstIndex(where: { $0.identity == last }),
              let candidate = siblings[(index + 1)...].first(where: { !refused.contains($0.identity) }) {
            switch open(candidate, after: siblings[index]) {
            case .opened(let file):
                chain.append(file)
                last = file.identity
            case .refused:
                refused.insert(candidate.identity)
            case .failed:
                relists += 1
                guard relists <= 8, let again = list(device: identity.device) else {
                    return OpenedGenerations(files: chain, isComplete: false)
                }
                siblings = again
            }
        }
        return OpenedGenerations(files: chain, isComplete: true)
    }

    private enum Opening {
        case opened(OpenFile)
        /// The rules refuse this file; it was not opened.
        case refused
        /// It could not be opened as listed (renamed or replaced meanwhile).
        case failed
    }

    /// Opens `sibling` if the rules allow: a followed generation with its fingerprint, or (with
    /// `previous`, the generation before it) a file that can be the one rotated after it
    /// (``RotatedSibling/canFollow(_:)``) and is single-linked — never seen, or followed but
    /// rewritten in place since (copytruncated while tailsse was down: its copy came before it, and
    /// it now holds what was written after the truncation). Recorded as followed once opened.
    private func open(_ sibling: RotatedSibling, after previous: RotatedSibling?) -> Opening {
        let entry = followed.entry(for: sibling.identity)
        let canBeNext = sibling.links == 1 && previous.map { sibling.canFollow($0) } == true
        guard entry != nil || canBeNext else { return .refused }
        guard let file = try? OpenFile.openGeneration(path: sibling.path, identity: sibling.identity) else { return .failed }
        if let entry, let leading = try? file.leadingBytes(), entry.fingerprint.matches(leading) {
            return .opened(file)
        }
        guard canBeNext else { return .refused }
        followed.record(file)
        return .opened(file)
    }
}
