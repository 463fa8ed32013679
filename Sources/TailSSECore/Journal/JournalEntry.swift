/// One journal entry as tailsse sends it: the fields a viewer shows, and (for filtering) all of
/// its fields.
public struct JournalEntry: Sendable, Equatable {
    /// The entry's cursor: its event id.
    public var cursor: String
    /// `__REALTIME_TIMESTAMP`: microseconds since the Unix epoch.
    public var realtime: UInt64
    /// `MESSAGE` (raw bytes: may be binary or invalid UTF-8).
    public var message: [UInt8]
    /// `PRIORITY` (0 = emerg … 7 = debug), when present and valid.
    public var priority: UInt8?
    /// `_SYSTEMD_UNIT`.
    public var unit: [UInt8]?
    /// `SYSLOG_IDENTIFIER`, else `_COMM`.
    public var identifier: [UInt8]?
    /// `_PID`, else `SYSLOG_PID`.
    public var pid: [UInt8]?
    /// `_HOSTNAME`.
    public var host: [UInt8]?
    /// Every `NAME=value` item of the entry, when it was read for filtering (else empty).
    public var fields: JournalFields

    public init(
        cursor: String, realtime: UInt64, message: [UInt8], priority: UInt8? = nil, unit: [UInt8]? = nil,
        identifier: [UInt8]? = nil, pid: [UInt8]? = nil, host: [UInt8]? = nil, fields: JournalFields = JournalFields()
    ) {
        self.cursor = cursor
        self.realtime = realtime
        self.message = message
        self.priority = priority
        self.unit = unit
        self.identifier = identifier
        self.pid = pid
        self.host = host
        self.fields = fields
    }

    /// Builds an entry from its `NAME=value` items, as `sd_journal_enumerate_data` yields them.
    ///
    /// - Parameter keepingFields: also keep every item in ``fields`` (needed to filter it later).
    public init(cursor: String, realtime: UInt64, items: some Sequence<UnsafeRawBufferPointer>, keepingFields: Bool) {
        self.init(cursor: cursor, realtime: realtime, message: [])
        var command: [UInt8]?
        var syslogPID: [UInt8]?
        for item in items {
            if keepingFields { fields.append(item) }
            guard let equals = item.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let name = UnsafeRawBufferPointer(rebasing: item[..<equals])
            let value = UnsafeRawBufferPointer(rebasing: item[(equals + 1)...])
            switch name.count {
            case 7 where name.elementsEqual("MESSAGE".utf8): message = Array(value)
            case 8 where name.elementsEqual("PRIORITY".utf8):
                if value.count == 1, value[0] >= UInt8(ascii: "0"), value[0] <= UInt8(ascii: "7") { priority = value[0] - UInt8(ascii: "0") }
            case 13 where name.elementsEqual("_SYSTEMD_UNIT".utf8): unit = Array(value)
            case 17 where name.elementsEqual("SYSLOG_IDENTIFIER".utf8): identifier = Array(value)
            case 5 where name.elementsEqual("_COMM".utf8): command = Array(value)
            case 4 where name.elementsEqual("_PID".utf8): pid = Array(value)
            case 10 where name.elementsEqual("SYSLOG_PID".utf8): syslogPID = Array(value)
            case 9 where name.elementsEqual("_HOSTNAME".utf8): host = Array(value)
            default: break
            }
        }
        if identifier == nil { identifier = command }
        if pid == nil { pid = syslogPID }
    }

    /// Approximate memory held by the entry, for bounding buffers.
    public var footprint: Int {
        cursor.utf8.count + message.count + (unit?.count ?? 0) + (identifier?.count ?? 0) + (pid?.count ?? 0)
            + (host?.count ?? 0) + fields.storage.count + 160
    }
}

/// All `NAME=value` items of a journal entry, packed in one array (each item prefixed by its
/// length), so keeping them costs one allocation.
public struct JournalFields: Sendable, Equatable {
    public private(set) var storage: [UInt8] = []

    public init() {}

    public init(_ items: [String]) {
        for item in items { Array(item.utf8).withUnsafeBytes { append($0) } }
    }

    public var isEmpty: Bool { storage.isEmpty }

    public mutating func append(_ item: UnsafeRawBufferPointer) {
        let count = UInt32(truncatingIfNeeded: item.count)
        storage.append(UInt8(truncatingIfNeeded: count))
        storage.append(UInt8(truncatingIfNeeded: count >> 8))
        storage.append(UInt8(truncatingIfNeeded: count >> 16))
        storage.append(UInt8(truncatingIfNeeded: count >> 24))
        storage.append(contentsOf: item)
    }

    /// Calls `body` with each item's name and value until it returns `true`; says whether it did.
    public func contains(where body: (_ name: ArraySlice<UInt8>, _ value: ArraySlice<UInt8>) -> Bool) -> Bool {
        var index = 0
        while index + 4 <= storage.count {
            let count = Int(storage[index]) | Int(storage[index + 1]) << 8 | Int(storage[index + 2]) << 16 | Int(storage[index + 3]) << 24
            let start = index + 4
            let end = min(start + count, storage.count)
            let item = storage[start..<end]
            if let equals = item.firstIndex(of: UInt8(ascii: "=")), body(item[..<equals], item[(equals + 1)...]) { return true }
            index = end
        }
        return false
    }
}

/// Where a client's journal stream stands: before the first entry, or just after an entry.
///
/// A position means "every matching entry up to here was sent, none after it".
public enum JournalPosition: Hashable, Sendable {
    case head
    case after(cursor: String)

    public var cursor: String? {
        if case .after(let cursor) = self { return cursor }
        return nil
    }
}
