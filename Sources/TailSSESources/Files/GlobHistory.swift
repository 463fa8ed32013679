import NIOCore
import TailSSECore

extension GlobSource: HistoricalSource {
    /// The history of the glob's files now: with ``HistoryRequest/file``, one file's lines with its
    /// own ids (the parts of the glob's composite ids); without, every file's lines, file by file,
    /// with the glob's composite ids (``MultiplexedHistory``), anchored at `start`, `end` or a
    /// composite id a glob stream gave.
    public func history(_ request: HistoryRequest, encoder: EventEncoder) async -> Result<HistoryAnswer, HistoryProblem> {
        if let file = request.file {
            guard let member = member(named: file) else { return .failure(Self.noFile(file)) }
            var own = request
            own.file = nil
            return await member.history(own, encoder: encoder.taggingFile(file))
        }
        let anchor: HistoryAnchor
        switch request.direction {
        case .before(let given), .after(let given): anchor = given
        }
        if case .id(let text) = anchor, !text.hasPrefix("m1") {
            return .failure(HistoryProblem(description: "a glob's history takes the glob's own id (m1,FILE=ID,...), or file=NAME with the id of a line of that file", isMalformed: true))
        }
        let grep = request.grep
        let members = files.map { file in
            MultiplexedHistory.Member(name: file.name) { direction, limit in
                await file.source.history(HistoryRequest(direction: direction, limit: limit, grep: grep), encoder: encoder.framed(file: file.name))
            }
        }
        return await MultiplexedHistory.answer(members: members, direction: request.direction, limit: request.limit, format: encoder.format, framed: encoder.isFramed)
    }

    /// Every line of one file of the glob between two anchors (see ``FileSource/historyDownload(from:through:grep:encoder:)``).
    public func historyDownload(file: String, from start: HistoryAnchor, through end: HistoryAnchor, grep: GrepPattern?, encoder: EventEncoder) async -> Result<AsyncThrowingStream<ByteBuffer, any Error>, HistoryProblem> {
        guard let member = member(named: file) else { return .failure(Self.noFile(file)) }
        return await member.historyDownload(from: start, through: end, grep: grep, encoder: encoder.taggingFile(file))
    }

    private static func noFile(_ file: String) -> HistoryProblem {
        HistoryProblem(description: "the glob follows no file '\(file.prefix(64))' now (GET /sources lists its files)")
    }
}
