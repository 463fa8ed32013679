/// The journal filters of a stream request, as journalctl applies them: the same field ORs,
/// different fields AND.
///
/// A filter is a conjunction of clauses; a clause is satisfied by any of its terms; a term needs
/// every one of its fields to have one of the term's values. `unit=` is the one clause with two
/// kinds of term: the unit's own messages (`_SYSTEMD_UNIT`) and systemd's messages about it
/// (`_PID=1` with `UNIT`).
public struct JournalFilter: Sendable, Equatable {
    /// Field name → accepted values (`NAME=value` items must match one).
    public typealias Term = [String: Set<[UInt8]>]

    public private(set) var clauses: [[Term]] = []

    /// ``clauses`` as bytes, for matching without allocating.
    private var compiled: [[[(name: [UInt8], values: [[UInt8]])]]] = []

    public init() {}

    public static func == (lhs: JournalFilter, rhs: JournalFilter) -> Bool { lhs.clauses == rhs.clauses }

    public var isEmpty: Bool { clauses.isEmpty }

    /// What is wrong with a filter parameter; the message is meant for the client.
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// The priority names journalctl accepts, most urgent first.
    public static let priorityNames = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    /// Parses filter parameters (query items that are not `tail`, `lastEventId` …).
    ///
    /// - Parameters:
    ///   - parameters: the query items in order; repeated names are allowed.
    ///   - currentBoot: the boot id for `boot=current` (32 lower-case hex digits), if known.
    public init(parameters: [(name: String, value: String)], currentBoot: () -> String?) throws(Problem) {
        var fields: [String: Set<[UInt8]>] = [:]
        var order: [String] = []
        var units: [String] = []
        func add(_ name: String, _ value: [UInt8]) {
            if fields[name] == nil { order.append(name) }
            fields[name, default: []].insert(value)
        }
        for (name, value) in parameters {
            switch name {
            case "unit":
                guard !value.isEmpty, value.utf8.count <= 256 else { throw Problem(description: "unit must be a unit name such as ssh.service") }
                let unit = value.contains(".") ? value : value + ".service"
                if !units.contains(unit) { units.append(unit) }
            case "identifier":
                guard !value.isEmpty, value.utf8.count <= 256 else { throw Problem(description: "identifier must not be empty") }
                add("SYSLOG_IDENTIFIER", Array(value.utf8))
            case "priority":
                guard let level = Self.priorityLevel(value) else {
                    throw Problem(description: "priority must be 0-7 or one of \(Self.priorityNames.joined(separator: ", "))")
                }
                for accepted in 0...level { add("PRIORITY", Array(String(accepted).utf8)) }
            case "boot":
                guard let boot = value == "current" ? currentBoot() : Self.bootID(value) else {
                    throw Problem(description: value == "current" ? "the current boot id is not known here" : "boot must be 'current' or a 32-hex-digit boot id")
                }
                add("_BOOT_ID", Array(boot.utf8))
            case "host":
                guard !value.isEmpty, value.utf8.count <= 256 else { throw Problem(description: "host must not be empty") }
                add("_HOSTNAME", Array(value.utf8))
            default:
                guard Self.isFieldName(name) else {
                    throw Problem(description: "unknown parameter '\(name.prefix(64))': use unit, identifier, priority, boot, host, tail, lastEventId or a journal field name (A-Z, 0-9, _)")
                }
                guard value.utf8.count <= 4096 else { throw Problem(description: "the value of \(name) is too long") }
                add(name, Array(value.utf8))
            }
        }
        if !units.isEmpty {
            let values = Set(units.map { Array($0.utf8) })
            clauses.append([["_SYSTEMD_UNIT": values], ["_PID": [Array("1".utf8)], "UNIT": values]])
        }
        for name in order { clauses.append([[name: fields[name]!]]) }
        compiled = clauses.map { $0.map { $0.map { (name: Array($0.key.utf8), values: Array($0.value)) } } }
    }

    /// `true` when the entry's items satisfy every clause.
    public func matches(_ fields: JournalFields) -> Bool {
        compiled.allSatisfy { clause in
            clause.contains { term in
                term.allSatisfy { name, values in
                    fields.contains { itemName, itemValue in
                        itemName.elementsEqual(name) && values.contains { $0.elementsEqual(itemValue) }
                    }
                }
            }
        }
    }

    /// The filter as sd_journal matches: per clause, per term, the `NAME=value` items to add with
    /// `sd_journal_add_match` (a disjunction between terms, a conjunction between clauses).
    public var matchItems: [[[[UInt8]]]] {
        clauses.map { clause in
            clause.map { term in
                term.keys.sorted().flatMap { name in term[name]!.sorted { $0.lexicographicallyPrecedes($1) }.map { Array(name.utf8) + [UInt8(ascii: "=")] + $0 } }
            }
        }
    }

    /// A journal field name a client may match on: `[A-Z0-9_]+`, not starting with a digit or
    /// with `__` (address fields), at most 64 bytes.
    public static func isFieldName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count), !(bytes.first! >= UInt8(ascii: "0") && bytes.first! <= UInt8(ascii: "9")), !name.hasPrefix("__") else { return false }
        return bytes.allSatisfy { ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
    }

    /// `0`–`7` or a priority name → the level.
    public static func priorityLevel(_ text: String) -> Int? {
        if text.utf8.count == 1, let digit = Int(text), (0...7).contains(digit) { return digit }
        return priorityNames.firstIndex(of: text.lowercased())
    }

    /// A boot id as 32 lower-case hex digits (dashes of the UUID form are accepted).
    public static func bootID(_ text: String) -> String? {
        let digits = text.lowercased().filter { $0 != "-" }
        guard digits.utf8.count == 32, digits.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
        return digits
    }
}
