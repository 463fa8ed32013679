import HTTPTypes
import Hummingbird
import TailSSECore
import TailSSESources

/// `GET /events`: several sources multiplexed on one stream.
///
/// `source=NAME` (repeatable, in the order their ids appear in the composite id) picks the
/// sources; `tail=N` applies to all of them, `NAME.PARAM=value` to one (e.g. `app.tail=0`,
/// `journal.unit=ssh.service`). The resume id (`Last-Event-ID` or `lastEventId=`) is a
/// ``CompositeEventID``; a source it does not name starts at its `tail` position, a source whose
/// part cannot be honoured gets its own `reset`.
extension SourcesAPI {
    /// Most sources one multiplexed stream may combine.
    static let maxMultiplexedSources = 16
    /// Most journal filter terms (`FIELD=value` parameters) one stream may have.
    static let maxFilterTerms = 32

    func events(_ request: Request, context: TailSSERequestContext) -> Response {
        let query = request.uri.queryParameters
        var names: [String] = []
        var shared: [(key: String, value: String)] = []
        var perSource: [(source: String, key: String, value: String)] = []
        var queryResumeID: String?
        for (rawKey, rawValue) in query {
            let key = String(rawKey)
            let value = String(rawValue)
            switch key {
            case "source":
                guard !names.contains(value) else { return Self.error("source '\(value.prefix(64))' is given twice", status: .badRequest) }
                names.append(value)
            case "tail", "grep", "grep-case":
                shared.append((key, value))
            case "lastEventId":
                queryResumeID = value
            default:
                guard let dot = key.lastIndex(of: "."), dot != key.startIndex, key.index(after: dot) != key.endIndex else {
                    return Self.error("unknown parameter '\(key.prefix(64))': per-source parameters are written NAME.PARAM", status: .badRequest)
                }
                perSource.append((String(key[..<dot]), String(key[key.index(after: dot)...]), value))
            }
        }
        guard !names.isEmpty else { return Self.error("name at least one source: /events?source=NAME&source=...", status: .badRequest) }
        guard names.count <= Self.maxMultiplexedSources else {
            return Self.error("at most \(Self.maxMultiplexedSources) sources per stream", status: .badRequest)
        }
        var chosen: [any LogSource] = []
        for name in names {
            guard let source = source(named: name, for: context.grant) else { return Self.error("unknown source '\(name.prefix(64))'", status: .notFound) }
            chosen.append(source)
        }
        for parameter in perSource where !names.contains(parameter.source) {
            return Self.error("parameter '\(parameter.source.prefix(64)).\(parameter.key.prefix(64))' names a source that is not in this stream", status: .badRequest)
        }
        let resumeText = request.headers[.lastEventID] ?? queryResumeID
        let resume: Result<CompositeEventID, CompositeEventID.ParseError>? = resumeText.map { text in
            Result { () throws(CompositeEventID.ParseError) in try CompositeEventID(parsing: text) }
        }
        var requests: [StreamRequest] = []
        for source in chosen {
            let own = perSource.filter { $0.source == source.name }.map { (key: $0.key, value: $0.value) }
            var streamRequest: StreamRequest
            switch Self.streamRequest(for: source, parameters: shared + own, ignoringOthers: false) {
            case .success(let made): streamRequest = made
            case .failure(let problem): return Self.error("\(source.name): \(problem.message)", status: .badRequest)
            }
            switch resume {
            case nil: break
            case .success(let composite): streamRequest.resumeID = composite[source.name]
            case .failure(let error): streamRequest.resumeID = "\(error)"
            }
            requests.append(streamRequest)
        }
        let format = StreamFormat.negotiate(accept: request.headers[.accept])
        let sources = chosen
        let opened = requests
        let audit = StreamAudit(client: context.clientAddress, sources: names, format: format, resumed: resumeText != nil, grant: context.grant, drain: DrainGauge(channel: context.channel))
        let meters = StreamMeters(meters: sources.map(\.meter), multiplexed: true)
        return responder.response(label: names.joined(separator: ","), format: format, body: request.body, audit: audit, meters: meters) {
            var streams: [any EventStream] = []
            var startIDs: [String?] = []
            for (index, (source, streamRequest)) in zip(sources, opened).enumerated() {
                let encoder = EventEncoder.framed(format: format, source: source.name, utcOffset: localUTCOffset, tally: meters.tallies[index], grep: streamRequest.grep)
                let stream = await source.openStream(streamRequest, encoder: encoder)
                streams.append(stream)
                startIDs.append(await stream.currentID())
            }
            let encoder = MultiplexEncoder(format: format, sources: sources.map(\.name), startIDs: startIDs)
            return MultiplexedEventStream(streams: streams, encoder: encoder, tallies: meters.tallies)
        }
    }

    /// A malformed stream parameter.
    struct BadParameter: Error {
        var message: String
    }

    /// Parameters every source's stream takes (the others are a journal's filters).
    static let streamParameters: Set<String> = ["tail", "grep", "grep-case"]

    /// The request for one source's stream from its query parameters (without `lastEventId`):
    /// `tail` (the last one wins), `grep` and `grep-case`, and for a journal every other parameter
    /// as a filter. A file source ignores other parameters when `ignoringOthers`, else rejects them.
    static func streamRequest(
        for source: any LogSource, parameters: [(key: String, value: String)], ignoringOthers: Bool
    ) -> Result<StreamRequest, BadParameter> {
        var streamRequest = StreamRequest()
        for (key, value) in parameters where key == "tail" {
            guard let parsed = TailStart(parameter: value) else {
                return .failure(BadParameter(message: "tail must be a non-negative number of lines or 'all'"))
            }
            streamRequest.tail = parsed
        }
        let grep = parameters.last { $0.key == "grep" }?.value
        let grepCase = parameters.last { $0.key == "grep-case" }?.value
        if let grepCase, grep == nil || GrepPattern.Case(rawValue: grepCase) == nil {
            return .failure(BadParameter(message: grep == nil ? "grep-case needs a grep pattern" : "grep-case must be sensitive, insensitive or smart"))
        }
        if let grep {
            do {
                streamRequest.grep = try GrepPattern(grep, case: grepCase.flatMap(GrepPattern.Case.init(rawValue:)) ?? .sensitive)
            } catch {
                return .failure(BadParameter(message: "grep: \(error.description)"))
            }
        }
        let others = parameters.filter { !Self.streamParameters.contains($0.key) }
        if source.kind == "journal" {
            guard others.count <= Self.maxFilterTerms else {
                return .failure(BadParameter(message: "at most \(Self.maxFilterTerms) filter terms per journal stream"))
            }
            do {
                streamRequest.journalFilter = try JournalFilter(parameters: others.map { (name: $0.key, value: $0.value) }, currentBoot: currentBootID)
            } catch {
                return .failure(BadParameter(message: error.description))
            }
        } else if let other = others.first, !ignoringOthers {
            return .failure(BadParameter(message: "source '\(source.name)' (\(source.kind)) takes no parameter '\(other.key.prefix(64))'"))
        }
        return .success(streamRequest)
    }
}
