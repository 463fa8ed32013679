/// The Prometheus text exposition `GET /metrics` answers, made from what a metrics registry emits.
///
/// The registry writes each metric family as a `# TYPE` line and its samples, in no fixed order
/// and without help texts. ``render(_:help:allowsSource:)`` sorts families and samples, gives each
/// family its `# HELP` line, writes whole numbers without a fraction (a gauge of 4 streams reads
/// `4`, not `4.0`), and leaves out every sample labelled `source="NAME"` for a source the reader
/// may not read: a token limited to some sources never learns other sources' names.
public enum MetricsExposition {
    /// One metric family: its name, the lines that describe it, and its samples.
    private struct Family {
        var name: String
        var help: Substring?
        var type: Substring?
        var samples: [Substring] = []
    }

    /// Rewrites `text` for one reader.
    ///
    /// - Parameters:
    ///   - help: the `# HELP` text of each family, by name (a family without one keeps its own).
    ///   - allowsSource: whether the reader may see series of the source with this name.
    public static func render(_ text: String, help: [String: String], allowsSource: (String) -> Bool) -> String {
        var families: [String: Family] = [:]
        var current = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#") {
                let words = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
                guard words.count >= 3, words[0] == "#", words[1] == "TYPE" || words[1] == "HELP" else { continue }
                current = String(words[2])
                families[current, default: Family(name: current)].name = current
                if words[1] == "TYPE" { families[current]?.type = line } else { families[current]?.help = line }
                continue
            }
            if let source = labelValue("source", inSample: line), !allowsSource(source) { continue }
            families[current, default: Family(name: current)].samples.append(withoutZeroFraction(line))
        }
        var out = ""
        for family in families.values.sorted(by: { $0.name < $1.name }) {
            if let text = help[family.name] {
                out += "# HELP \(family.name) \(escapedHelp(text))\n"
            } else if let own = family.help {
                out += own + "\n"
            }
            if let type = family.type { out += type + "\n" }
            for sample in family.samples.sorted() { out += sample + "\n" }
        }
        return out
    }

    /// The value of the label `name` in a sample line (`metric{a="x",b="y"} 1`), unescaped, or
    /// `nil` when the sample has no such label (or its labels cannot be read).
    public static func labelValue(_ name: String, inSample line: Substring) -> String? {
        let bytes = Array(line.utf8)
        guard let open = bytes.firstIndex(of: UInt8(ascii: "{")) else { return nil }
        var index = open + 1
        while index < bytes.count, bytes[index] != UInt8(ascii: "}") {
            if bytes[index] == UInt8(ascii: ",") || bytes[index] == UInt8(ascii: " ") {
                index += 1
                continue
            }
            guard let equals = bytes[index...].firstIndex(of: UInt8(ascii: "=")), equals + 1 < bytes.count,
                  bytes[equals + 1] == UInt8(ascii: "\"")
            else { return nil }
            let key = bytes[index..<equals]
            var value: [UInt8] = []
            var position = equals + 2
            var closed = false
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\\"), position + 1 < bytes.count {
                    let next = bytes[position + 1]
                    value.append(next == UInt8(ascii: "n") ? UInt8(ascii: "\n") : next)
                    position += 2
                    continue
                }
                if byte == UInt8(ascii: "\"") {
                    closed = true
                    break
                }
                value.append(byte)
                position += 1
            }
            guard closed else { return nil }
            if key.elementsEqual(name.utf8) { return String(decoding: value, as: UTF8.self) }
            index = position + 1
        }
        return nil
    }

    /// A sample whose value is a whole number written as `N.0`, without the `.0`.
    private static func withoutZeroFraction(_ line: Substring) -> Substring {
        guard line.hasSuffix(".0"), let space = line.lastIndex(of: " ") else { return line }
        let digits = line[line.index(after: space)..<line.index(line.endIndex, offsetBy: -2)]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return line }
        return line.dropLast(2)
    }

    private static func escapedHelp(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}

/// Figures of the running process, read from `/proc/self` when `/metrics` is scraped.
public enum ProcessFigures {
    /// Resident memory in bytes from the text of `/proc/self/statm` (sizes in pages: total,
    /// resident, shared, …), or `nil` when it cannot be read.
    public static func residentBytes(statm: String, pageSize: Int) -> Int? {
        let fields = statm.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let pages = Int(fields[1]), pages >= 0, pageSize > 0 else { return nil }
        return pages * pageSize
    }
}
