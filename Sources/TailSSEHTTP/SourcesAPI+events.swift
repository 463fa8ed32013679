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

    /// The sources of a multiplexed request (`/events`, `/events/lines`) and their parameters:
    /// `source=NAME` (1–16, in order), `sharedKeys` for all, `NAME.PARAM=value` for one.
    struct MultiplexQuery {
        var names: [String] = []
        var shared: [(key: String, value: String)] = []
        var perSource: [(source: String, key: String, value: String)] = []

        /// Parses the query; `other` takes the route's own keys (`nil`: not one of them, else the
        /// error to answer, if any). `example` shows the route's use; `unit` is what it serves.
        static func parse(
            _ request: Request, sharedKeys: Set<String>, example: String, unit: String, other: (String, String) -> Response??
        ) -> Result<MultiplexQuery, MultiplexQueryError> {
            var query = MultiplexQuery()
            for (rawKey, rawValue) in request.uri.queryParameters {
                let key = String(rawKey)
                let value = String(rawValue)
                if let taken = other(key, value) {
                    if let taken { return .failure(MultiplexQueryError(response: taken)) }
                    continue
                }
                if key == "source" {
                    guard !query.names.contains(value) else { return .failure(.init("source '\(value.prefix(64))' is given twice")) }
                    query.names.append(value)
                } else if sharedKeys.contains(key) {
                    query.shared.append((key, value))
                } else {
                    guard let dot = key.lastIndex(of: "."), dot != key.startIndex, key.index(after: dot) != key.endIndex else {
                        return .failure(.init("unknown parameter '\(key.prefix(64))': per-source parameters are written NAME.PARAM"))
                    }
                    query.perSource.append((String(key[..<dot]), String(key[key.index(after: dot)...]), value))
                }
            }
            guard !query.names.isEmpty else { return .failure(.init("name at least one source: \(example)")) }
            guard query.names.count <= SourcesAPI.maxMultiplexedSources else {
                return .failure(.init("at most \(SourcesAPI.maxMultiplexedSources) sources per \(unit)"))
            }
            for parameter in query.perSource where !query.names.contains(parameter.source) {
                return .failure(.init("parameter '\(parameter.source.prefix(64)).\(parameter.key.prefix(64))' names a source that is not in this \(unit)"))
            }
            return .success(query)
        }

        /// The parameters for one source: the shared ones, then its own.
        func parameters(of name: String) -> [(key: String, value: String)] {
            shared + perSource.filter { $0.source == name }.map { (key: $0.key, value: $0.value) }
        }
    }

    struct MultiplexQueryError: Error {
        var response: Response
        init(response: Response) { self.response = response }
        init(_ message: String) { self.response = SourcesAPI.error(message, status: .badRequest) }
    }

    func events(_ request: Request, context: TailSSERequestContext) -> Response {
        var queryResumeID: String?
        let parsed = MultiplexQuery.parse(request, sharedKeys: ["tail", "grep", "grep-case"], example: "/events?source=NAME&source=...", unit: "stream") { key, value in
            guard key == "lastEventId" else { return nil }
            queryResumeID = value
            return .some(nil)
        }
        let query: MultiplexQuery
        switch parsed {
        case .success(let given): query = given
        case .failure(let refusal): return refusal.response
        }
        let names = query.names
        var chosen: [any LogSource] = []
        for name in names {
            guard let source = source(named: name, for: context.grant) else { return Self.error("unknown source '\(name.prefix(64))'", status: .notFound) }
            chosen.append(source)
        }
        let resumeText = request.headers[.lastEventID] ?? queryResumeID
        let resume: Result<CompositeEventID, CompositeEventID.ParseError>? = resumeText.map { text in
            Result { () throws(CompositeEventID.ParseError) in try CompositeEventID(parsing: text) }
        }
        var requests: [StreamRequest] = []
        for source in chosen {
            var streamRequest: StreamRequest
            switch Self.streamRequest(for: source, parameters: query.parameters(of: source.name), ignoringOthers: false) {
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
        let push = responder.pushTarget(context.channel)
        let heartbeat = responder.settings.heartbeat
        return responder.response(label: names.joined(separator: ","), format: format, body: request.body, audit: audit, meters: meters, channel: context.channel, push: push) {
            var streams: [any EventStream] = []
            var startIDs: [String?] = []
            for (index, (source, streamRequest)) in zip(sources, opened).enumerated() {
                let encoder = EventEncoder.framed(format: format, source: source.name, utcOffset: localUTCOffset, tally: meters.tallies[index], grep: streamRequest.grep)
                let stream = await source.openStream(streamRequest, encoder: encoder)
                streams.append(stream)
                startIDs.append(await stream.currentID())
            }
            let encoder = MultiplexEncoder(format: format, sources: sources.map(\.name), startIDs: startIDs)
            let pushing = push.map { MultiplexPush(connection: $0, heartbeatAfter: heartbeat / 2, meters: meters.meters) }
            return MultiplexedEventStream(streams: streams, encoder: encoder, tallies: meters.tallies, push: pushing)
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
