import NIOCore
import TailSSECore

extension JournalSource: HistoricalSource {
    /// The entries just before or after a cursor (`end`: the newest, `start`: the oldest), with
    /// the request's field filters and `grep`, walked with `sd_journal_previous`/`next` on a
    /// reader thread.
    public func history(_ request: HistoryRequest, encoder: EventEncoder) async -> Result<HistoryAnswer, HistoryProblem> {
        do {
            return try await pool.run { journal -> Result<HistoryAnswer, HistoryProblem> in
                var entries: [JournalEntry] = []
                var reachedEdge = false
                var startID: String?
                let keep = { (entry: JournalEntry) -> Bool in
                    guard let grep = request.grep else { return true }
                    return entry.message.withUnsafeBytes { grep.matches($0) }
                }
                switch request.direction {
                case .before(let anchor):
                    switch anchor {
                    case .start:
                        return .success(HistoryAnswer(body: ByteBuffer(), count: 0, reachedEdge: true))
                    case .end:
                        try journal.apply(request.journalFilter)
                        try journal.seekTail()
                    case .id(let cursor):
                        if let problem = try Self.locate(cursor, in: journal) { return .failure(problem) }
                        try journal.apply(request.journalFilter)
                        // The next step back stands on the cursor's entry (or the matching one before).
                        _ = try journal.seek(cursor: cursor)
                    }
                    // One entry more: its cursor is where the answer starts.
                    while entries.count <= request.limit {
                        guard try journal.previous(skipping: 1) == 1 else { reachedEdge = true; break }
                        let entry = try journal.entry(keepingFields: false)
                        if keep(entry) { entries.append(entry) }
                    }
                    if entries.count > request.limit { startID = entries.removeLast().cursor }
                    entries.reverse()
                case .after(let anchor):
                    switch anchor {
                    case .end:
                        return .success(HistoryAnswer(body: ByteBuffer(), count: 0, reachedEdge: true))
                    case .start:
                        try journal.apply(request.journalFilter)
                        try journal.seekHead()
                    case .id(let cursor):
                        if let problem = try Self.locate(cursor, in: journal) { return .failure(problem) }
                        try journal.apply(request.journalFilter)
                        _ = try journal.seek(cursor: cursor)
                        if try journal.next(), !journal.isAt(cursor: cursor) { _ = try journal.previous(skipping: 1) }
                    }
                    while entries.count < request.limit {
                        guard try journal.next() else { reachedEdge = true; break }
                        let entry = try journal.entry(keepingFields: false)
                        if keep(entry) { entries.append(entry) }
                    }
                    if !reachedEdge, try !journal.next() { reachedEdge = true }
                }
                var body = ByteBufferAllocator().buffer(capacity: entries.count * 256)
                for entry in entries { encoder.encodeEntry(entry, into: &body) }
                return .success(HistoryAnswer(body: body, count: entries.count, reachedEdge: reachedEdge, startID: startID))
            }
        } catch {
            return .failure(HistoryProblem(description: "the journal cannot be read (\(error))"))
        }
    }

    /// A problem when `cursor` names no entry of this journal (checked without filters).
    private static func locate(_ cursor: String, in journal: JournalHandle) throws -> HistoryProblem? {
        journal.removeFilter()
        guard try journal.seek(cursor: cursor) else { return HistoryProblem(description: "the id is not a journal cursor", isMalformed: true) }
        guard try journal.next(), journal.isAt(cursor: cursor) else {
            return HistoryProblem(description: "the journal no longer holds the entry this id names (vacuumed, or from another journal)")
        }
        return nil
    }
}
