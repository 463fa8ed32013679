public import NIOCore

/// Formats journal timestamps without touching the C library's time zone state.
public enum JournalTime {
    /// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ` (RFC 3339, UTC, microseconds).
    public static func writeRFC3339(microseconds: UInt64, to buffer: inout ByteBuffer) {
        withFormatted(seconds: Int64(microseconds / 1_000_000)) { text, end in
            text[end] = UInt8(ascii: ".")
            put(Int64(microseconds % 1_000_000), count: 6, at: end + 1, in: &text)
            text[end + 7] = UInt8(ascii: "Z")
            return end + 8
        } write: { buffer.writeBytes($0) }
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS+hhmm` as `journalctl -o short-iso` does, at a UTC offset.
    public static func writeShortISO(microseconds: UInt64, utcOffsetSeconds: Int, to buffer: inout ByteBuffer) {
        withFormatted(seconds: Int64(microseconds / 1_000_000) + Int64(utcOffsetSeconds)) { text, end in
            let offset = abs(utcOffsetSeconds) / 60
            text[end] = utcOffsetSeconds < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+")
            put(Int64(offset / 60), count: 2, at: end + 1, in: &text)
            put(Int64(offset % 60), count: 2, at: end + 3, in: &text)
            return end + 5
        } write: { buffer.writeBytes($0) }
    }

    /// Formats `YYYY-MM-DDTHH:MM:SS` on the stack, lets `suffix` append to it, and writes it at once.
    private static func withFormatted(
        seconds: Int64, suffix: (inout UnsafeMutableRawBufferPointer, Int) -> Int, write: (UnsafeRawBufferPointer) -> Void
    ) {
        var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &storage) { raw in
            var text = raw
            let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
            let secondOfDay = seconds - days * 86_400
            let (year, month, day) = civilDate(daysSinceEpoch: days)
            put(year, count: 4, at: 0, in: &text)
            text[4] = UInt8(ascii: "-")
            put(month, count: 2, at: 5, in: &text)
            text[7] = UInt8(ascii: "-")
            put(day, count: 2, at: 8, in: &text)
            text[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, count: 2, at: 11, in: &text)
            text[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, count: 2, at: 14, in: &text)
            text[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, count: 2, at: 17, in: &text)
            let end = suffix(&text, 19)
            write(UnsafeRawBufferPointer(rebasing: raw[0..<end]))
        }
    }

    private static func put(_ value: Int64, count: Int, at start: Int, in text: inout UnsafeMutableRawBufferPointer) {
        var remaining = max(0, value)
        for index in stride(from: start + count - 1, through: start, by: -1) {
            text[index] = UInt8(ascii: "0") + UInt8(remaining % 10)
            remaining /= 10
        }
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01.
    public static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
