/// A token file that cannot be used, with the line at fault. Never holds a token's text.
public struct TokenFileError: Error, Equatable, CustomStringConvertible {
    public var line: Int?
    public var message: String

    public init(line: Int? = nil, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}
