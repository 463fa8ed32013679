/// What follows a log file's name in the name of one of its rotated generations lying beside it:
/// the rule that decides which files of a directory may ever be read as the configured file's past.
///
/// Only these forms count, for a configured file `NAME` (any other name — `NAME~`, `NAME.bak`,
/// `NAMEins.txt`, `NAME.1.gz` — is never a generation of it):
///
/// | Form                          | Written by                                              |
/// |-------------------------------|---------------------------------------------------------|
/// | `NAME.N` (N: 0–999999)        | logrotate, savelog, newsyslog, Python's RotatingFileHandler, log4j/logback size rolling |
/// | `NAME-YYYYMMDD`               | logrotate `dateext`                                     |
/// | `NAME-YYYYMMDDHH`             | logrotate `dateext` with `hourly`                       |
/// | `NAME-YYYYMMDD-S`             | logrotate `dateformat -%Y%m%d-%s` (S: 1–12 digits)      |
/// | `NAME.YYYYMMDD`               | applications, cronolog-style dates                      |
/// | `NAME.YYYY-MM-DD`             | Python's TimedRotatingFileHandler (midnight), logback/log4j daily |
/// | `NAME.YYYY-MM-DD_HH`, `NAME.YYYY-MM-DD_HH-MM`, `NAME.YYYY-MM-DD_HH-MM-SS` | TimedRotatingFileHandler by hour, minute, second |
///
/// Dates are checked (month 01–12, day 01–31, hour 00–23, minute and second 00–59).
public struct RotationSuffix: Sendable, Hashable {
    /// How a rotation names its generations.
    public enum Scheme: Sendable, Hashable {
        /// `NAME.N`: the higher N, the older.
        case numbered
        /// A date and time in the name: the earlier, the older.
        case dated
    }

    public let scheme: Scheme
    /// Orders generations of one scheme from oldest to newest (smaller is older).
    private let rank: (UInt64, UInt64)

    private init(numbered value: UInt64) {
        scheme = .numbered
        rank = (UInt64.max - value, 0)
    }

    private init(stamp: UInt64, sequence: UInt64 = 0) {
        scheme = .dated
        rank = (stamp, sequence)
    }

    public static func == (a: RotationSuffix, b: RotationSuffix) -> Bool {
        a.scheme == b.scheme && a.rank == b.rank
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(scheme)
        hasher.combine(rank.0)
        hasher.combine(rank.1)
    }

    /// `true` when this generation was rotated before `other`; `nil` when the two use different
    /// schemes (their names say nothing about their order).
    public func isOlder(than other: RotationSuffix) -> Bool? {
        guard scheme == other.scheme else { return nil }
        return rank < other.rank
    }

    /// The suffix that makes `name` a rotated generation of the file named `base`, or `nil` when
    /// `name` is not one of the forms listed above.
    public init?(name: some StringProtocol, rotating base: some StringProtocol) {
        let nameBytes = Array(name.utf8)
        let baseBytes = Array(base.utf8)
        guard !baseBytes.isEmpty, nameBytes.count > baseBytes.count + 1,
              nameBytes.starts(with: baseBytes) else { return nil }
        let separator = nameBytes[baseBytes.count]
        let rest = Array(nameBytes[(baseBytes.count + 1)...])
        switch separator {
        case UInt8(ascii: "."):
            if let parsed = Self.dottedSuffix(rest) { self = parsed } else { return nil }
        case UInt8(ascii: "-"):
            if let parsed = Self.dashedSuffix(rest) { self = parsed } else { return nil }
        default:
            return nil
        }
    }

    /// After `NAME.`: `N`, `YYYYMMDD`, `YYYY-MM-DD` with optional `_HH`, `_HH-MM`, `_HH-MM-SS`.
    private static func dottedSuffix(_ rest: [UInt8]) -> RotationSuffix? {
        if rest.allSatisfy(isDigit) {
            if rest.count <= 6 {
                guard rest.count == 1 || rest[0] != UInt8(ascii: "0") else { return nil }
                return RotationSuffix(numbered: number(rest[...]))
            }
            guard rest.count == 8, let stamp = dateStamp(rest[...], separated: false) else { return nil }
            return RotationSuffix(stamp: stamp)
        }
        guard rest.count >= 10, var stamp = dateStamp(rest[0..<10], separated: true) else { return nil }
        let time = rest[10...]
        guard !time.isEmpty else { return RotationSuffix(stamp: stamp) }
        // _HH, _HH-MM, _HH-MM-SS
        guard [3, 6, 9].contains(time.count), time.first == UInt8(ascii: "_") else { return nil }
        let fields = time.dropFirst().split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        let limits: [UInt64] = [23, 59, 59]
        var multiplier: UInt64 = 10000
        for (index, field) in fields.enumerated() {
            guard field.count == 2, field.allSatisfy(isDigit) else { return nil }
            let value = number(field)
            guard value <= limits[index] else { return nil }
            stamp += value * multiplier
            multiplier /= 100
        }
        return RotationSuffix(stamp: stamp)
    }

    /// After `NAME-`: `YYYYMMDD`, `YYYYMMDDHH`, `YYYYMMDD-S`.
    private static func dashedSuffix(_ rest: [UInt8]) -> RotationSuffix? {
        guard rest.count >= 8, let day = dateStamp(rest[0..<8], separated: false) else { return nil }
        let tail = rest[8...]
        if tail.isEmpty { return RotationSuffix(stamp: day) }
        if tail.count == 2, tail.allSatisfy(isDigit) {
            let hour = number(tail)
            guard hour <= 23 else { return nil }
            return RotationSuffix(stamp: day + hour * 10000)
        }
        guard tail.first == UInt8(ascii: "-"), (2...13).contains(tail.count) else { return nil }
        let sequence = tail.dropFirst()
        guard sequence.allSatisfy(isDigit) else { return nil }
        return RotationSuffix(stamp: day, sequence: number(sequence))
    }

    /// `YYYYMMDD` or `YYYY-MM-DD` as the number `YYYYMMDD000000` (room for `HHMMSS`).
    private static func dateStamp(_ bytes: ArraySlice<UInt8>, separated: Bool) -> UInt64? {
        let digits: [UInt8]
        if separated {
            let parts = bytes.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2 else { return nil }
            digits = Array(parts[0]) + Array(parts[1]) + Array(parts[2])
        } else {
            digits = Array(bytes)
        }
        guard digits.count == 8, digits.allSatisfy(isDigit) else { return nil }
        let month = number(digits[4..<6])
        let day = number(digits[6..<8])
        guard (1...12).contains(month), (1...31).contains(day) else { return nil }
        return number(digits[...]) * 1_000_000
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> UInt64 {
        digits.reduce(0) { $0 * 10 + UInt64($1 - UInt8(ascii: "0")) }
    }
}
