import HTTPTypes
import Hummingbird
import NIOCore
import TailSSECore
import TailSSESources

/// `GET /sources/{name}/lines` and `GET /events/lines`: the lines just before or just after a
/// position, by id.
///
/// `before=ID|end` or `after=ID|start`, `limit=N` (1–10,000, default 100), `grep=` and
/// `grep-case=` as on streams; a glob source also takes `file=NAME`. The answer is complete (not
/// live), oldest first, each line with the id a live stream gives it, in the format `Accept`
/// asks (SSE, NDJSON, plain text). The header `TailSSE-History-Edge: yes` says nothing lies further
/// in that direction now.
extension SourcesAPI {
    /// `before`, `after` and `limit` of a history request, as given.
    private struct HistoryBounds {
        var before: HistoryAnchor?
        var after: HistoryAnchor?
        var limit: Int?

        /// Takes `key` if it is one of the three; `nil` when it is not, else the error to answer.
        mutating func take(_ key: String, _ value: String) -> Response?? {
            switch key {
            case "before", "after":
                guard (key == "before" ? before : after) == nil else { return .some(SourcesAPI.error("\(key)= is given twice", status: .badRequest)) }
                guard !value.isEmpty, value.utf8.count <= CompositeEventID.maxLength else { return .some(SourcesAPI.error("\(key)= needs an id, 'start' or 'end'", status: .badRequest)) }
                if key == "before" { before = HistoryAnchor(parameter: value) } else { after = HistoryAnchor(parameter: value) }
                return .some(nil)
            case "limit":
                guard let parsed = Int(value), (1...HistoryRequest.maxLimit).contains(parsed) else {
                    return .some(SourcesAPI.error("limit must be a number of lines from 1 to \(HistoryRequest.maxLimit)", status: .badRequest))
                }
                limit = parsed
                return .some(nil)
            default:
                return nil
            }
        }

        /// What the anchors ask for.
        enum Span {
            case one(HistoryRequest.Direction)
            /// Both anchors: every line between (a download).
            case between(start: HistoryAnchor, end: HistoryAnchor)
            case neither
        }

        var span: Span {
            switch (before, after) {
            case (nil, nil): .neither
            case (let anchor?, nil): .one(.before(anchor))
            case (nil, let anchor?): .one(.after(anchor))
            case (let end?, let start?): .between(start: start, end: end)
            }
        }

        static let neitherMessage = "give before=ID (or end) or after=ID (or start), or both"
    }

    private static func historyHeaders(_ format: StreamFormat) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = format.contentType
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return headers
    }

    private static func respond(_ outcome: Result<HistoryAnswer, HistoryProblem>, headers: HTTPFields) -> Response {
        switch outcome {
        case .failure(let problem):
            return Self.error(problem.description, status: problem.isMalformed ? .badRequest : .notFound)
        case .success(let answer):
            var headers = headers
            headers[HTTPField.Name("TailSSE-History-Edge")!] = answer.reachedEdge ? "yes" : "no"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: answer.body))
        }
    }

    func lines(_ request: Request, name: String, context: TailSSERequestContext) async -> Response {
        guard let source = source(named: name, for: context.grant) else {
            return Self.error("unknown source '\(name.prefix(64))'", status: .notFound)
        }
        guard let historical = source as? any HistoricalSource else {
            return Self.error("source '\(name.prefix(64))' (\(source.kind)) has no history by position", status: .badRequest)
        }
        let glob = source as? GlobSource
        var bounds = HistoryBounds()
        var file: String?
        var streamParameters: [(key: String, value: String)] = []
        for (rawKey, rawValue) in request.uri.queryParameters {
            let key = String(rawKey)
            let value = String(rawValue)
            if let refused = bounds.take(key, value) {
                if let refused { return refused }
                continue
            }
            switch key {
            case "grep", "grep-case":
                streamParameters.append((key, value))
            case "file" where glob != nil:
                guard file == nil else { return Self.error("file= is given twice", status: .badRequest) }
                guard SourceName.isValid(value.utf8) else { return Self.error("file= needs the name of a file of the glob", status: .badRequest) }
                file = value
            case "tail", "lastEventId":
                return Self.error("unknown parameter '\(key.prefix(64))': lines takes before, after, limit, grep and grep-case (and a journal's filters, a glob's file)", status: .badRequest)
            default:
                guard source.kind == "journal" else {
                    return Self.error("unknown parameter '\(key.prefix(64))': lines takes before, after, limit, grep and grep-case\(glob == nil ? "" : " and file")", status: .badRequest)
                }
                streamParameters.append((key, value))
            }
        }
        let made: StreamRequest
        switch Self.streamRequest(for: source, parameters: streamParameters, ignoringOthers: false) {
        case .success(let request): made = request
        case .failure(let problem): return Self.error(problem.message, status: .badRequest)
        }
        let format = StreamFormat.negotiate(accept: request.headers[.accept])
        let encoder = EventEncoder(format: format, source: source.name, utcOffset: localUTCOffset)
        var headers = Self.historyHeaders(format)
        let direction: HistoryRequest.Direction
        switch bounds.span {
        case .one(let given):
            direction = given
        case .neither:
            return Self.error(HistoryBounds.neitherMessage, status: .badRequest)
        case .between(let start, let end):
            // Every line between two anchors, streamed a block at a time (never all in memory).
            guard bounds.limit == nil else { return Self.error("limit= goes with one of before= and after=; with both, every line between is sent", status: .badRequest) }
            let download: Result<AsyncThrowingStream<ByteBuffer, any Error>, HistoryProblem>
            if let fileSource = source as? FileSource {
                download = await fileSource.historyDownload(from: start, through: end, grep: made.grep, encoder: encoder)
            } else if let glob, let file {
                download = await glob.historyDownload(file: file, from: start, through: end, grep: made.grep, encoder: encoder)
            } else {
                return Self.error("source '\(source.name.prefix(64))' (\(glob == nil ? source.kind : "glob")) takes one of before= and after=\(glob == nil ? "" : "; a glob's file is downloaded with file=NAME")", status: .badRequest)
            }
            switch download {
            case .failure(let problem):
                return Self.error(problem.description, status: problem.isMalformed ? .badRequest : .notFound)
            case .success(let chunks):
                if format != .eventStream {
                    let name = file.map { "\(source.name)-\($0)" } ?? source.name
                    headers[.contentDisposition] = "attachment; filename=\"\(name).\(format == .ndjson ? "ndjson" : "log")\""
                }
                return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                    for try await chunk in chunks { try await writer.write(chunk) }
                    try await writer.finish(nil)
                })
            }
        }
        let asked = HistoryRequest(direction: direction, limit: bounds.limit ?? 100, grep: made.grep, journalFilter: made.journalFilter, file: file)
        return Self.respond(await historical.history(asked, encoder: encoder), headers: headers)
    }

    /// `GET /events/lines`: the history of several sources at once, anchored at a composite id of
    /// `GET /events` (``MultiplexedHistory``): up to `limit` lines of each source, source by source.
    /// `source=NAME` (1–16), `grep=`/`grep-case=` for all and `NAME.PARAM=value` for one, as on
    /// `/events`.
    func eventsLines(_ request: Request, context: TailSSERequestContext) async -> Response {
        var bounds = HistoryBounds()
        let parsed = MultiplexQuery.parse(request, sharedKeys: ["grep", "grep-case"], example: "/events/lines?source=NAME&source=...&before=ID", unit: "request") { key, value in
            bounds.take(key, value)
        }
        let query: MultiplexQuery
        switch parsed {
        case .success(let given): query = given
        case .failure(let refusal): return refusal.response
        }
        let direction: HistoryRequest.Direction
        switch bounds.span {
        case .one(let given): direction = given
        case .neither: return Self.error(HistoryBounds.neitherMessage, status: .badRequest)
        case .between: return Self.error("/events/lines takes one of before= and after= (a download is per source: /sources/NAME/lines)", status: .badRequest)
        }
        let format = StreamFormat.negotiate(accept: request.headers[.accept])
        var members: [MultiplexedHistory.Member] = []
        for name in query.names {
            guard let source = source(named: name, for: context.grant) else { return Self.error("unknown source '\(name.prefix(64))'", status: .notFound) }
            guard let historical = source as? any HistoricalSource else {
                return Self.error("source '\(name.prefix(64))' (\(source.kind)) has no history by position", status: .badRequest)
            }
            let parameters = query.parameters(of: name)
            if parameters.contains(where: { $0.key == "tail" || $0.key == "lastEventId" }) { return Self.error("\(name): lines takes no tail or lastEventId", status: .badRequest) }
            let made: StreamRequest
            switch Self.streamRequest(for: source, parameters: parameters, ignoringOthers: false) {
            case .success(let request): made = request
            case .failure(let problem): return Self.error("\(name): \(problem.message)", status: .badRequest)
            }
            let encoder = EventEncoder.framed(format: format, source: source.name, utcOffset: localUTCOffset)
            members.append(MultiplexedHistory.Member(name: name) { direction, limit in
                await historical.history(HistoryRequest(direction: direction, limit: limit, grep: made.grep, journalFilter: made.journalFilter), encoder: encoder)
            })
        }
        let outcome = await MultiplexedHistory.answer(members: members, direction: direction, limit: bounds.limit ?? 100, format: format)
        return Self.respond(outcome, headers: Self.historyHeaders(format))
    }
}
