import Foundation

// Parsing with an independent JSON parser. `JSONDecoder`, not `JSONSerialization`: on Linux,
// swift-corelibs-foundation's JSONSerialization drops a U+FEFF that starts a string or follows an
// escape (`"\uFEFFa"` parses as "a"), which would make correct output look wrong.

/// A JSON value as the encoders write them: strings, booleans and (for journal entries) integers.
enum JSONValue: Decodable, Equatable {
    case string(String)
    case bool(Bool)
    case integer(Int)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let integer = try? container.decode(Int.self) {
            self = .integer(integer)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    var string: String? { if case .string(let value) = self { value } else { nil } }
    var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
}

/// Parses one JSON object whose members are strings or booleans.
func parseJSONObject(_ bytes: some Sequence<UInt8>) throws -> [String: JSONValue] {
    try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
}

/// Parses `"` + inside + `"` as a JSON document.
func parseJSONString(_ inside: [UInt8]) throws -> String {
    try JSONDecoder().decode(String.self, from: Data([0x22] + inside + [0x22]))
}
