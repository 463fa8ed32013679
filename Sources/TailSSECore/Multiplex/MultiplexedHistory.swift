import NIOCore

/// The history of several sources as one answer with composite ids: the sources of
/// `GET /events/lines`, the files of a glob source.
///
/// The anchor is `start`, `end`, or a ``CompositeEventID``: each source's part is its own anchor,
/// and a source the id has no part for has nothing to give (its stream had not sent anything).
/// Each source answers with up to `limit` lines of its own; the answer lists them source by
/// source, in the members' order, each source's lines oldest first, and gives every event the
/// composite id of all the sources' positions just after it *in this answer*:
/// - `after`: a source's part starts at its anchor; the last event's id continues every source
///   (with `after=` again, or to resume a live stream);
/// - `before`: a source's part starts at the line just before its first line here
///   (``HistoryAnswer/startID``; none at the start of its history), so `before=` with the first
///   event's id goes on further back, and the last event's id is the anchor itself.
public enum MultiplexedHistory {
    /// One source of the answer.
    public struct Member: Sendable {
        /// The source's name in the composite id.
        public var name: String
        /// Answers a history request for this source with framed events (``EventFrame``).
        public var history: @Sendable (HistoryRequest.Direction, _ limit: Int) async -> Result<HistoryAnswer, HistoryProblem>

        public init(name: String, history: @escaping @Sendable (HistoryRequest.Direction, _ limit: Int) async -> Result<HistoryAnswer, HistoryProblem>) {
            self.name = name
            self.history = history
        }
    }

    /// The answer for `direction` over `members`, written by a ``MultiplexEncoder`` in `format`
    /// (framed for an outer multiplex encoder when `framed`).
    public static func answer(
        members: [Member], direction: HistoryRequest.Direction, limit: Int, format: StreamFormat, framed: Bool = false
    ) async -> Result<HistoryAnswer, HistoryProblem> {
        let isBefore: Bool
        let anchor: HistoryAnchor
        switch direction {
        case .before(let given): (isBefore, anchor) = (true, given)
        case .after(let given): (isBefore, anchor) = (false, given)
        }
        var composite: CompositeEventID?
        if case .id(let text) = anchor {
            do {
                composite = try CompositeEventID(parsing: text)
            } catch {
                return .failure(HistoryProblem(description: "\(error.description) (m1,NAME=ID,...)", isMalformed: true))
            }
        }
        var pieces: [ByteBuffer] = []
        var startIDs: [String?] = []
        var count = 0
        var reachedEdge = true
        for member in members {
            let own: HistoryAnchor
            if let composite {
                guard let part = composite[member.name] else {
                    pieces.append(ByteBuffer())
                    startIDs.append(nil)
                    continue
                }
                own = .id(part)
            } else {
                own = anchor
            }
            let answer: HistoryAnswer
            switch await member.history(isBefore ? .before(own) : .after(own), limit) {
            case .failure(let problem):
                return .failure(HistoryProblem(description: "\(member.name): \(problem.description)", isMalformed: problem.isMalformed))
            case .success(let given):
                answer = given
            }
            reachedEdge = reachedEdge && answer.reachedEdge
            if isBefore {
                startIDs.append(answer.startID)
            } else if case .id(let part) = own {
                startIDs.append(part)
            } else {
                startIDs.append(nil)
            }
            pieces.append(answer.body)
            count += answer.count
        }
        var encoder = MultiplexEncoder(format: format, sources: members.map(\.name), startIDs: startIDs, framed: framed)
        let startID = isBefore && startIDs.contains { $0 != nil } ? encoder.currentID.description : nil
        var output = ByteBuffer()
        for (index, piece) in pieces.enumerated() where piece.readableBytes > 0 {
            encoder.write(frames: piece, source: index, into: &output)
        }
        return .success(HistoryAnswer(body: output, count: count, reachedEdge: reachedEdge, startID: startID))
    }
}
