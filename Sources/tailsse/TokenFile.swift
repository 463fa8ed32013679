import Logging
import TailSSECore
import TailSSESources

/// Reads `--token-file`: the tokens and the sources each may read (see ``TokenList``).
enum TokenFile {
    /// Reads and parses the token file at `path` (blocking); warns when other users may read it.
    static func read(path: String, logger: Logger) throws(ConfigurationError) -> TokenList {
        let bytes = try readWholeFile(path: path, what: "the token file", limit: TokenList.maxFileBytes)
        let list: TokenList
        do {
            list = try TokenList(parsing: bytes)
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
        if isReadableByOthers(path) {
            logger.warning("the token file is readable by every user: chmod 600 it (or 640 with the service's group)", metadata: ["file": .string(path)])
        }
        if list.count == 0 {
            logger.warning("the token file holds no token: no request can read any source", metadata: ["file": .string(path)])
        }
        return list
    }

    /// Warns when a token names a source that is not configured (a typo grants nothing).
    static func warnAboutUnknownSources(in list: TokenList, sources: [String], logger: Logger) {
        let unknown = list.namedSources.subtracting(sources)
        if !unknown.isEmpty {
            logger.warning("the token file names sources that are not configured", metadata: ["sources": .string(unknown.sorted().joined(separator: ", "))])
        }
    }
}
