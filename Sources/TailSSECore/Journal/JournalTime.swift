public import NIOCore

/// Formats journal timestamps without touching the C library's time zone state.
public enum JournalTime {
    /// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ` (RFC 3339, UTC, microseconds).
    public static func writeRFC3339(microseconds: UInt64, to buffer: inout ByteBuffer) {
        let seconds = Int64(microseconds / 1_000_000)
        writeDateTime(seconds: seconds, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "."))
        writeDigits(Int64(microseconds % 1_000_000), count: 6, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "Z"))
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS+hhmm` as `journalctl -o short-iso` does, at a UTC offset.
    public static func writeShortISO(microseconds: UInt64, utcOffsetSeconds: Int, to buffer: inout ByteBuffer) {
        writeDateTime(seconds: Int64(microseconds / 1_000_000) + Int64(utcOffsetSeconds), to: &buffer)
        let offset = abs(utcOffsetSeconds) / 60
        buffer.writeInteger(utcOffsetSeconds < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        writeDigits(Int64(offset / 60), count: 2, to: &buffer)
        writeDigits(Int64(offset % 60), count: 2, to: &buffer)
    }

    private static func writeDateTime(seconds: Int64, to buffer: inout ByteBuffer) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        writeDigits(year, count: 4, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(month, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(day, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "T"))
        writeDigits(secondOfDay / 3600, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(secondOfDay / 60 % 60, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(secondOfDay % 60, count: 2, to: &buffer)
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

    private static func writeDigits(_ value: Int64, count: Int, to buffer: inout ByteBuffer) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
        var remaining = max(0, value)
        withUnsafeMutableBytes(of: &digits) { raw in
            for index in stride(from: count - 1, through: 0, by: -1) {
                raw[index] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[0..<count]))
        }
    }
}
