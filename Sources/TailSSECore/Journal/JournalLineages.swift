/// What a journal directory's file names say about the order its entries can be read in.
///
/// systemd-journal-remote with `SplitMode=host` (its default) writes one file per sending host,
/// `remote-HOST.journal` (archived as `remote-HOST@….journal`), each numbering its entries on its
/// own. Read together, such files are merged by time: an entry that reaches the collector after
/// newer entries of another host were read (a backlog, an upload delay, a clock behind) sorts
/// before them, and sd-journal skips it when following and when resuming after them.
/// `SplitMode=none` writes every host into one file, numbered in arrival order: nothing is skipped.
public enum JournalLineages {
    /// A notice for a directory whose entry names show at least two hosts written separately by
    /// journal-remote, else `nil`.
    public static func splitHostNotice(fileNames: some Sequence<String>) -> String? {
        let hosts = Set(fileNames.compactMap { name -> Substring? in
            guard name.hasPrefix("remote-"), name.hasSuffix(".journal") else { return nil }
            let host = name.dropFirst("remote-".count).dropLast(".journal".count)
            return host.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).first
        })
        guard hosts.count >= 2 else { return nil }
        return "this directory holds \(hosts.count) hosts' journals written separately (systemd-journal-remote's SplitMode=host): "
            + "an entry that arrives after newer entries of another host were read is skipped live and on resume; "
            + "set SplitMode=none (README: Watching a fleet)"
    }
}
