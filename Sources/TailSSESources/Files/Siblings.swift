#if canImport(Glibc)
import Glibc
#endif
import TailSSECore

/// Finds the rotated file with `identity` among the files of `directory` whose names start with
/// `baseName` (`app.log.1`, `app.log-20250101`, …). Only names listed by the directory are ever
/// opened, never anything taken from a request.
func findSibling(directory: String, baseName: String, identity: FileIdentity) -> OpenFile? {
    for name in directoryEntries(directory) where name.hasPrefix(baseName) && name != baseName {
        let candidate = directory == "/" ? "/" + name : directory + "/" + name
        guard case .success(let info) = statIdentity(path: candidate), info.isRegular, info.identity == identity else { continue }
        if let file = try? OpenFile.open(path: candidate), file.identity == identity { return file }
    }
    return nil
}
