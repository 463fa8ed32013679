import CSystemd
#if canImport(Glibc)
import Glibc
#endif
import TailSSECore

/// Which journal a source reads.
public enum JournalLocation: Sendable, Equatable, CustomStringConvertible {
    /// This machine's system and user journals (as `journalctl` with no options).
    case local
    /// Every journal file in a directory (e.g. what systemd-journal-remote writes).
    case directory(String)

    public var description: String {
        switch self {
        case .local: "the local journal"
        case .directory(let path): path
        }
    }
}

/// An open `sd_journal`. It must stay on the thread that opened it for its whole life (see
/// `sd_journal_open(3)`): only ``JournalFollowerLoop`` and ``JournalReaderPool`` threads hold one.
final class JournalHandle {
    private let journal: OpaquePointer

    init(_ location: JournalLocation) throws(SystemError) {
        var journal: OpaquePointer?
        let result: Int32
        switch location {
        case .local: result = sd_journal_open(&journal, Int32(SD_JOURNAL_LOCAL_ONLY))
        case .directory(let path): result = sd_journal_open_directory(&journal, path, 0)
        }
        guard result >= 0, let journal else { throw SystemError(errno: -result, operation: "open \(location)") }
        self.journal = journal
    }

    deinit { sd_journal_close(journal) }

    /// The descriptor to poll for changes, and `sd_journal_process` to call after it fired.
    func descriptor() throws(SystemError) -> Int32 { try check(sd_journal_get_fd(journal), "sd_journal_get_fd") }

    /// Gets the journal's inotify descriptor; returns the errno of the inotify limit that keeps it
    /// from watching the journal (then it must be polled), or `nil` when it watches it. Without an
    /// instance `sd_journal_get_fd` fails; watches it cannot add it skips (it got none: `ENOSPC`).
    func inotifyShortage() throws(SystemError) -> Int32? {
        let descriptor: Int32
        do {
            descriptor = try self.descriptor()
        } catch where InotifyShortage.isLimit(error.errno) {
            return error.errno
        }
        return Self.watchCount(descriptor) == 0 ? ENOSPC : nil
    }

    /// How many watches the inotify instance `descriptor` holds (from `/proc/self/fdinfo`); -1
    /// when that cannot be read.
    private static func watchCount(_ descriptor: Int32) -> Int {
        let file = open("/proc/self/fdinfo/\(descriptor)", O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return -1 }
        defer { close(file) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(file, &chunk, chunk.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            text += chunk[..<count]
        }
        return text.split(separator: UInt8(ascii: "\n")).filter { $0.starts(with: Array("inotify wd:".utf8)) }.count
    }

    /// The poll timeout the journal asks for, in milliseconds (-1: none).
    func timeoutMilliseconds() -> Int32 {
        var timeout: UInt64 = 0
        guard sd_journal_get_timeout(journal, &timeout) >= 0, timeout != UInt64.max else { return -1 }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nowMicros = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        return timeout <= nowMicros ? 0 : Int32(min((timeout - nowMicros + 999) / 1000, 60_000))
    }

    /// Processes changes after the descriptor fired (new entries, new or removed files).
    @discardableResult
    func process() throws(SystemError) -> Int32 { try check(sd_journal_process(journal), "sd_journal_process") }

    func seekHead() throws(SystemError) { _ = try check(sd_journal_seek_head(journal), "sd_journal_seek_head") }
    func seekTail() throws(SystemError) { _ = try check(sd_journal_seek_tail(journal), "sd_journal_seek_tail") }

    /// Seeks to a cursor; `false` when the cursor is not one (malformed).
    func seek(cursor: String) throws(SystemError) -> Bool {
        let result = sd_journal_seek_cursor(journal, cursor)
        if result == -EINVAL { return false }
        _ = try check(result, "sd_journal_seek_cursor")
        return true
    }

    /// Moves to the next entry; `false` at the end.
    func next() throws(SystemError) -> Bool { try check(sd_journal_next(journal), "sd_journal_next") > 0 }

    /// Moves back `count` entries; returns how many it moved.
    func previous(skipping count: Int) throws(SystemError) -> Int {
        Int(try check(sd_journal_previous_skip(journal, UInt64(count)), "sd_journal_previous_skip"))
    }

    /// `true` when the current entry is the one `cursor` names.
    func isAt(cursor: String) -> Bool { sd_journal_test_cursor(journal, cursor) > 0 }

    func cursor() throws(SystemError) -> String {
        var raw: UnsafeMutablePointer<CChar>?
        _ = try check(sd_journal_get_cursor(journal, &raw), "sd_journal_get_cursor")
        guard let raw else { throw SystemError(errno: EIO, operation: "sd_journal_get_cursor") }
        defer { free(raw) }
        return String(cString: raw)
    }

    func realtime() throws(SystemError) -> UInt64 {
        var value: UInt64 = 0
        _ = try check(sd_journal_get_realtime_usec(journal, &value), "sd_journal_get_realtime_usec")
        return value
    }

    /// The current entry, with every field kept when `keepingFields` (to filter it in memory).
    ///
    /// An entry read the moment journald wrote it can name data that is not readable yet
    /// (`ENOENT`): it is read again after a millisecond, a few times, before its unreadable fields
    /// are left out.
    func entry(keepingFields: Bool) throws(SystemError) -> JournalEntry {
        let cursor = try cursor()
        let realtime = try realtime()
        var status: Int32 = 0
        for _ in 0..<Self.readRetries {
            status = 0
            let entry = withUnsafeMutablePointer(to: &status) { status in
                JournalEntry(cursor: cursor, realtime: realtime, items: DataItems(journal: journal, status: status), keepingFields: keepingFields)
            }
            if status != -ENOENT { return entry }
            usleep(1000)
        }
        return JournalEntry(cursor: cursor, realtime: realtime, items: DataItems(journal: journal, status: nil), keepingFields: keepingFields)
    }

    /// Reads of an entry whose data is not readable yet, one millisecond apart.
    static let readRetries = 20

    /// Replaces the matches with a filter's (no filter: every entry).
    func apply(_ filter: JournalFilter) throws(SystemError) {
        sd_journal_flush_matches(journal)
        for (clauseIndex, clause) in filter.matchItems.enumerated() {
            if clauseIndex > 0 { _ = try check(sd_journal_add_conjunction(journal), "sd_journal_add_conjunction") }
            for (termIndex, items) in clause.enumerated() {
                if termIndex > 0 { _ = try check(sd_journal_add_disjunction(journal), "sd_journal_add_disjunction") }
                for item in items {
                    let result = item.withUnsafeBytes { sd_journal_add_match(journal, $0.baseAddress, $0.count) }
                    _ = try check(result, "sd_journal_add_match")
                }
            }
        }
    }

    func removeFilter() { sd_journal_flush_matches(journal) }

    /// Calls `body` with the value of each distinct `field` item in the journal's files (e.g. every
    /// `_HOSTNAME`), until it returns `false`; unreadable values are skipped.
    func forEachUniqueValue(of field: String, _ body: (ArraySlice<UInt8>) -> Bool) throws(SystemError) {
        _ = try check(sd_journal_query_unique(journal, field), "sd_journal_query_unique")
        let prefix = field.utf8.count + 1
        var data: UnsafeRawPointer?
        var length = 0
        while sd_journal_enumerate_available_unique(journal, &data, &length) > 0 {
            guard let data, length >= prefix else { continue }
            let item = UnsafeRawBufferPointer(start: data, count: length)
            if !body(ArraySlice(item[prefix...])) { break }
        }
    }

    private func check(_ result: Int32, _ operation: String) throws(SystemError) -> Int32 {
        guard result >= 0 else { throw SystemError(errno: -result, operation: operation) }
        return result
    }

    /// The current entry's `NAME=value` items. With a `status` pointer, the first error ends the
    /// items and is stored there (an unreadable field that another read may find); without one,
    /// unreadable items (compressed with an unsupported algorithm, corrupt) are skipped.
    private struct DataItems: Sequence, IteratorProtocol {
        let journal: OpaquePointer
        let status: UnsafeMutablePointer<Int32>?
        private var started = false

        init(journal: OpaquePointer, status: UnsafeMutablePointer<Int32>?) {
            self.journal = journal
            self.status = status
        }

        mutating func next() -> UnsafeRawBufferPointer? {
            if !started {
                sd_journal_restart_data(journal)
                started = true
            }
            var data: UnsafeRawPointer?
            var length = 0
            if let status {
                let result = sd_journal_enumerate_data(journal, &data, &length)
                if result < 0 {
                    status.pointee = result
                    return nil
                }
                guard result > 0, let data else { return nil }
                return UnsafeRawBufferPointer(start: data, count: length)
            }
            guard sd_journal_enumerate_available_data(journal, &data, &length) > 0, let data else { return nil }
            return UnsafeRawBufferPointer(start: data, count: length)
        }
    }
}

/// This machine's boot id as 32 lower-case hex digits.
public func currentBootID() -> String? {
    var id = sd_id128_t()
    guard sd_id128_get_boot(&id) >= 0 else { return nil }
    let hex = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    withUnsafeBytes(of: id.bytes) { bytes in
        for byte in bytes {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0xF)])
        }
    }
    return String(decoding: text, as: UTF8.self)
}

/// The local time zone's offset from UTC at a time, in seconds (for `short-iso` timestamps).
@Sendable public func localUTCOffset(secondsSinceEpoch: Int64) -> Int {
    var time = time_t(secondsSinceEpoch)
    var parts = tm()
    guard localtime_r(&time, &parts) != nil else { return 0 }
    return parts.tm_gmtoff
}

/// Whether this machine's journal has entries this process may read (for the default sources).
public func localJournalHasEntries() -> Bool {
    guard let journal = try? JournalHandle(.local) else { return false }
    return (try? journal.seekHead()) != nil && (try? journal.next()) == true
}
