import HTTPTypes
import Hummingbird
import NIOCore
import TailSSECore
import TailSSESources

/// `GET /sources/{name}/lines`: the lines just before or just after a position, by id.
///
/// `before=ID|end` or `after=ID|start`, `limit=N` (1–10,000, default 100), `grep=` and
/// `grep-case=` as on streams. The answer is complete (not live), oldest first, each line with the
/// id a live stream gives it, in the format `Accept` asks (SSE, NDJSON, plain text). The header
/// `TailSSE-History-Edge: yes` says nothing lies further in that direction now.
extension SourcesAPI {
    func lines(_ request: Request, name: String, context: TailSSERequestContext) async -> Response {
        guard let source = source(named: name, for: context.grant) else {
            return Self.error("unknown source '\(name.prefix(64))'", status: .notFound)
        }
        guard let historical = source as? any HistoricalSource else {
            return Self.error("source '\(name.prefix(64))' (\(source.kind)) has no history by position", status: .badRequest)
        }
        var before: HistoryAnchor?
        var after: HistoryAnchor?
        var limit: Int?
        var streamParameters: [(key: String, value: String)] = []
        for (rawKey, rawValue) in request.uri.queryParameters {
            let value = String(rawValue)
            switch String(rawKey) {
            case "before", "after":
                guard (rawKey == "before" ? before : after) == nil else { return Self.error("\(rawKey)= is given twice", status: .badRequest) }
                guard !value.isEmpty, value.utf8.count <= CompositeEventID.maxLength else { return Self.error("\(rawKey)= needs an id, 'start' or 'end'", status: .badRequest) }
                if rawKey == "before" { before = HistoryAnchor(parameter: value) } else { after = HistoryAnchor(parameter: value) }
            case "limit":
                guard let parsed = Int(value), (1...HistoryRequest.maxLimit).contains(parsed) else {
                    return Self.error("limit must be a number of lines from 1 to \(HistoryRequest.maxLimit)", status: .badRequest)
                }
                limit = parsed
            case "grep", "grep-case":
                streamParameters.append((String(rawKey), value))
            case "tail", "lastEventId":
                return Self.error("unknown parameter '\(rawKey.prefix(64))': lines takes before, after, limit, grep and grep-case (and a journal's filters)", status: .badRequest)
            default:
                guard source.kind == "journal" else {
                    return Self.error("unknown parameter '\(rawKey.prefix(64))': lines takes before, after, limit, grep and grep-case", status: .badRequest)
                }
                streamParameters.append((String(rawKey), value))
            }
        }
        let made: StreamRequest
        switch Self.streamRequest(for: source, parameters: streamParameters, ignoringOthers: false) {
        case .success(let request): made = request
        case .failure(let problem): return Self.error(problem.message, status: .badRequest)
        }
        let format = StreamFormat.negotiate(accept: request.headers[.accept])
        let encoder = EventEncoder(format: format, source: source.name, utcOffset: localUTCOffset)
        var headers = HTTPFields()
        headers[.contentType] = format.contentType
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        let direction: HistoryRequest.Direction
        switch (before, after) {
        case (nil, nil): return Self.error("give before=ID (or end) or after=ID (or start), or both", status: .badRequest)
        case (let anchor?, nil): direction = .before(anchor)
        case (nil, let anchor?): direction = .after(anchor)
        case (let end?, let start?):
            // Every line between two anchors, streamed a block at a time (never all in memory).
            guard limit == nil else { return Self.error("limit= goes with one of before= and after=; with both, every line between is sent", status: .badRequest) }
            guard let file = source as? FileSource else {
                return Self.error("source '\(source.name.prefix(64))' (\(source.kind)) takes one of before= and after=", status: .badRequest)
            }
            switch await file.historyDownload(from: start, through: end, grep: made.grep, encoder: encoder) {
            case .failure(let problem):
                return Self.error(problem.description, status: problem.isMalformed ? .badRequest : .notFound)
            case .success(let chunks):
                if format != .eventStream {
                    headers[.contentDisposition] = "attachment; filename=\"\(source.name).\(format == .ndjson ? "ndjson" : "log")\""
                }
                return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                    for try await chunk in chunks { try await writer.write(chunk) }
                    try await writer.finish(nil)
                })
            }
        }
        switch await historical.history(HistoryRequest(direction: direction, limit: limit ?? 100, grep: made.grep, journalFilter: made.journalFilter), encoder: encoder) {
        case .failure(let problem):
            return Self.error(problem.description, status: problem.isMalformed ? .badRequest : .notFound)
        case .success(let answer):
            headers[HTTPField.Name("TailSSE-History-Edge")!] = answer.reachedEdge ? "yes" : "no"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: answer.body))
        }
    }
}
