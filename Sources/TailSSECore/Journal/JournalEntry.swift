#if canImport(Glibc)
import Glibc
#endif

/// One journal entry as tailsse sends it: the fields a viewer shows, and (for filtering) all of
/// its fields. The shown fields share one array, so an entry costs few allocations.
public struct JournalEntry: Sendable, Equatable {
    /// The entry's cursor: its event id.
    public var cursor: String
    /// `__REALTIME_TIMESTAMP`: microseconds since the Unix epoch.
    public var realtime: UInt64
    /// `PRIORITY` (0 = emerg … 7 = debug), when present and valid.
    public var priority: UInt8?
    /// Every `NAME=value` item of the entry, when it was read for filtering (else empty).
    public var fields: JournalFields

    private var storage: [UInt8] = []
    private var spans = Spans()

    /// Where each shown field lies in `storage` (`start < 0`: absent).
    private struct Spans: Sendable, Equatable {
        var message = Span()
        var unit = Span()
        var identifier = Span()
        var command = Span()
        var pid = Span()
        var syslogPID = Span()
        var host = Span()
    }

    private struct Span: Sendable, Equatable {
        var start: Int32 = -1
        var count: Int32 = 0
    }

    public init(
        cursor: String, realtime: UInt64, message: [UInt8], priority: UInt8? = nil, unit: [UInt8]? = nil,
        identifier: [UInt8]? = nil, pid: [UInt8]? = nil, host: [UInt8]? = nil, fields: JournalFields = JournalFields()
    ) {
        self.cursor = cursor
        self.realtime = realtime
        self.priority = priority
        self.fields = fields
        message.withUnsafeBytes { spans.message = store($0) }
        unit?.withUnsafeBytes { spans.unit = store($0) }
        identifier?.withUnsafeBytes { spans.identifier = store($0) }
        pid?.withUnsafeBytes { spans.pid = store($0) }
        host?.withUnsafeBytes { spans.host = store($0) }
    }

    /// Builds an entry from its `NAME=value` items, as `sd_journal_enumerate_data` yields them.
    ///
    /// - Parameter keepingFields: also keep every item in ``fields`` (needed to filter it later).
    public init(cursor: String, realtime: UInt64, items: some Sequence<UnsafeRawBufferPointer>, keepingFields: Bool) {
        self.cursor = cursor
        self.realtime = realtime
        self.fields = JournalFields()
        storage.reserveCapacity(256)
        spans.message = Span(start: 0, count: 0)
        for item in items {
            if keepingFields { fields.append(item) }
            guard let base = item.baseAddress, item.count >= 5, let equals = Self.equalsSign(in: item) else { continue }
            let value = UnsafeRawBufferPointer(rebasing: item[(equals + 1)...])
            switch (equals, base.load(as: UInt8.self)) {
            case (7, UInt8(ascii: "M")) where Self.named(base, "MESSAGE"): spans.message = store(value)
            case (8, UInt8(ascii: "P")) where Self.named(base, "PRIORITY"):
                if value.count == 1, value[0] >= UInt8(ascii: "0"), value[0] <= UInt8(ascii: "7") { priority = value[0] - UInt8(ascii: "0") }
            case (13, UInt8(ascii: "_")) where Self.named(base, "_SYSTEMD_UNIT"): spans.unit = store(value)
            case (17, UInt8(ascii: "S")) where Self.named(base, "SYSLOG_IDENTIFIER"): spans.identifier = store(value)
            case (5, UInt8(ascii: "_")) where Self.named(base, "_COMM"): spans.command = store(value)
            case (4, UInt8(ascii: "_")) where Self.named(base, "_PID"): spans.pid = store(value)
            case (10, UInt8(ascii: "S")) where Self.named(base, "SYSLOG_PID"): spans.syslogPID = store(value)
            case (9, UInt8(ascii: "_")) where Self.named(base, "_HOSTNAME"): spans.host = store(value)
            default: break
            }
        }
    }

    /// `MESSAGE` (raw bytes: may be binary or invalid UTF-8).
    public var message: ArraySlice<UInt8> { self[spans.message] ?? [] }
    /// `_SYSTEMD_UNIT`.
    public var unit: ArraySlice<UInt8>? { self[spans.unit] }
    /// `SYSLOG_IDENTIFIER`, else `_COMM`.
    public var identifier: ArraySlice<UInt8>? { self[spans.identifier] ?? self[spans.command] }
    /// `_PID`, else `SYSLOG_PID`.
    public var pid: ArraySlice<UInt8>? { self[spans.pid] ?? self[spans.syslogPID] }
    /// `_HOSTNAME`.
    public var host: ArraySlice<UInt8>? { self[spans.host] }

    /// Approximate memory held by the entry, for bounding buffers.
    public var footprint: Int { cursor.utf8.count + storage.count + fields.storage.count + 160 }

    public static func == (lhs: JournalEntry, rhs: JournalEntry) -> Bool {
        lhs.cursor == rhs.cursor && lhs.realtime == rhs.realtime && lhs.priority == rhs.priority && lhs.fields == rhs.fields
            && lhs.message == rhs.message && lhs.unit == rhs.unit && lhs.identifier == rhs.identifier && lhs.pid == rhs.pid && lhs.host == rhs.host
    }

    private subscript(span: Span) -> ArraySlice<UInt8>? {
        span.start < 0 ? nil : storage[Int(span.start)..<Int(span.start + span.count)]
    }

    private mutating func store(_ bytes: UnsafeRawBufferPointer) -> Span {
        let span = Span(start: Int32(truncatingIfNeeded: storage.count), count: Int32(truncatingIfNeeded: bytes.count))
        storage.append(contentsOf: bytes)
        return span
    }

    private static func equalsSign(in item: UnsafeRawBufferPointer) -> Int? {
        guard let found = memchr(item.baseAddress!, Int32(UInt8(ascii: "=")), min(item.count, 65)) else { return nil }
        return item.baseAddress!.distance(to: UnsafeRawPointer(found))
    }

    private static func named(_ base: UnsafeRawPointer, _ name: StaticString) -> Bool {
        memcmp(base, name.utf8Start, name.utf8CodeUnitCount) == 0
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
