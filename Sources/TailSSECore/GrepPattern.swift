import CPCRE2
import Synchronization

/// The pattern of a `grep=` stream parameter: only lines (journal entries: their `MESSAGE`) that
/// it matches are sent.
///
/// A PCRE2 regular expression, as `journalctl --grep` takes, compiled once per request (JIT where
/// the machine supports it) in UTF mode that tolerates invalid UTF-8 in lines. Matching is bounded:
/// a pattern that backtracks catastrophically (`(a+)+$` on a long line of `a`s) stops at
/// ``matchLimit`` steps and counts as no match, so no pattern holds a thread for long.
public final class GrepPattern: Sendable, CustomStringConvertible {
    /// How letter case counts.
    public enum Case: String, Sendable, CaseIterable {
        /// `A` matches only `A` (grep's default).
        case sensitive
        /// `a` matches `A` too (`grep -i`).
        case insensitive
        /// Insensitive when the pattern has no upper-case letter (`journalctl --grep`'s default).
        case smart
    }

    /// Why a pattern was refused.
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Longest pattern accepted, in bytes.
    public static let maxPatternBytes = 1024
    /// Most backtracking steps one line may take (PCRE2's match limit).
    public static let matchLimit: UInt32 = 200_000
    /// Deepest backtracking one line may take (PCRE2's depth limit, for the interpreter).
    public static let depthLimit: UInt32 = 10_000
    /// Most heap the interpreter may use for one line, in KiB (JIT uses its own small stack).
    public static let heapLimitKiB: UInt32 = 20 << 10

    /// The pattern as given.
    public let pattern: String
    public let letterCase: Case
    private let code: UnsafeCode
    private let context: UnsafeContext
    private let limitsHit = Atomic<Int>(0)

    private final class UnsafeCode: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        deinit { pcre2_code_free_8(pointer) }
    }

    private final class UnsafeContext: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        deinit { pcre2_match_context_free_8(pointer) }
    }

    /// Compiles `pattern`; throws a ``Problem`` naming what is wrong and where.
    public init(_ pattern: String, case letterCase: Case = .sensitive) throws(Problem) {
        let bytes = Array(pattern.utf8)
        guard !bytes.isEmpty else { throw Problem(description: "the pattern is empty") }
        guard bytes.count <= Self.maxPatternBytes else { throw Problem(description: "the pattern is longer than \(Self.maxPatternBytes) bytes") }
        // `\C` (one code unit, splitting UTF-8 characters) is refused; a pattern's own
        // `(*LIMIT_MATCH=…)` can only lower the limits set here, never raise them.
        var options = UInt32(PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C)
        let caseless = switch letterCase {
        case .sensitive: false
        case .insensitive: true
        case .smart: !pattern.contains { $0.isUppercase }
        }
        if caseless { options |= UInt32(PCRE2_CASELESS) }
        var errorCode: Int32 = 0
        var errorOffset = 0
        let compiled = bytes.withUnsafeBufferPointer { buffer in
            pcre2_compile_8(buffer.baseAddress, buffer.count, options, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            throw Problem(description: "\(Self.message(for: errorCode)) at offset \(errorOffset) of the pattern")
        }
        _ = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE))
        guard let context = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(compiled)
            throw Problem(description: "out of memory")
        }
        pcre2_set_match_limit_8(context, Self.matchLimit)
        pcre2_set_depth_limit_8(context, Self.depthLimit)
        pcre2_set_heap_limit_8(context, Self.heapLimitKiB)
        self.pattern = pattern
        self.letterCase = letterCase
        self.code = UnsafeCode(compiled)
        self.context = UnsafeContext(context)
    }

    public var description: String { pattern }

    /// Lines on which matching stopped at a limit (counted as no match) so far.
    public var linesOverLimit: Int { limitsHit.load(ordering: .relaxed) }

    /// Whether `text` (one line, without its newline; any bytes) matches.
    public func matches(_ text: UnsafeRawBufferPointer) -> Bool {
        guard let data = pcre2_match_data_create_from_pattern_8(code.pointer, nil) else { return false }
        defer { pcre2_match_data_free_8(data) }
        var empty: UInt8 = 0
        let result = withUnsafePointer(to: &empty) { empty in
            pcre2_match_8(code.pointer, text.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? empty, text.count, 0, 0, data, context.pointer)
        }
        if result >= 0 { return true }
        if result != PCRE2_ERROR_NOMATCH { limitsHit.add(1, ordering: .relaxed) }
        return false
    }

    /// Whether `text` matches.
    public func matches(_ text: some Collection<UInt8>) -> Bool {
        if let matched = text.withContiguousStorageIfAvailable({ matches(UnsafeRawBufferPointer($0)) }) { return matched }
        return Array(text).withUnsafeBytes { matches($0) }
    }

    private static func message(for code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        guard length > 0 else { return "invalid pattern (error \(code))" }
        return String(decoding: buffer.prefix(Int(length)), as: UTF8.self)
    }
}
