import Logging
import NIOCore
import Synchronization
import TailSSECore

/// One client's stream of a ``JournalSource``: entries from the shared log while it holds the
/// client's position (filtered in memory), otherwise read from the journal at the client's own
/// cursor (filtered by sd_journal matches) on the source's reader pool.
final class JournalEventStream: EventStream {
    private let source: JournalSource
    private let encoder: EventEncoder
    private let filter: JournalFilter
    private let token: EventLog<JournalPosition>.WaitToken
    private let state: Mutex<State>

    private struct State {
        var position: JournalPosition
        var sequence: UInt64?
        var pending: [StreamEvent]
        var stopped = false
    }

    init(source: JournalSource, encoder: EventEncoder, filter: JournalFilter, start: JournalPosition, pending: [StreamEvent]) {
        self.source = source
        self.encoder = encoder
        self.filter = filter
        self.token = source.log.makeWaitToken()
        self.state = Mutex(State(position: start, pending: pending))
    }

    deinit {
        source.log.releaseWaitToken(token)
        source.streamEnded()
    }

    func stop() {
        state.withLock { $0.stopped = true }
        source.log.interrupt(token)
    }

    func currentID() async -> String? {
        state.withLock { $0.position.cursor }
    }

    func next(into buffer: inout ByteBuffer) async throws -> StreamStep {
        while true {
            let (position, sequence, pending, stopped) = state.withLock { state in
                defer { state.pending.removeAll() }
                return (state.position, state.sequence, state.pending, state.stopped)
            }
            if stopped { return .finished }
            if !pending.isEmpty {
                for event in pending { encoder.encode(event, into: &buffer) }
                return .events
            }
            if source.log.isClosed {
                state.withLock { $0.stopped = true }
                guard let finalEvent = source.log.finalEvent else { return .finished }
                encoder.encode(finalEvent, into: &buffer)
                return .events
            }
            if let sequence {
                switch source.log.read(after: sequence) {
                case .records(let records):
                    for record in records {
                        guard let event = record.event else { continue }
                        if let entry = event.entry, !filter.isEmpty, !filter.matches(entry.fields) { continue }
                        encoder.encode(record, into: &buffer)
                    }
                    let last = records[records.count - 1]
                    state.withLock { $0.position = last.to; $0.sequence = last.sequence }
                    if buffer.readableBytes > 0 { return .events }
                    continue
                case .upToDate:
                    if let step = await waitStep(after: sequence) { return step }
                    continue
                case .evicted:
                    state.withLock { $0.sequence = nil }
                    continue
                }
            }
            let observed = source.log.lastSequence
            if let located = source.log.locate(position) {
                source.logger.trace("client joins the shared log", metadata: ["at": "\(position)", "sequence": "\(located)"])
                state.withLock { $0.sequence = located }
                continue
            }
            let read: JournalSource.Read
            do {
                read = try await source.read(after: position, filter: filter, encoder: encoder)
            } catch is JournalReaderPool.Stopped {
                if source.log.isClosed { continue }
                return .finished
            } catch {
                source.logger.warning("cannot read the journal for a client; retrying", metadata: ["error": .string("\(error)")])
                if let step = await waitStep(after: observed) { return step }
                continue
            }
            source.logger.trace("client read", metadata: ["from": "\(position)", "to": "\(read.position)", "bytes": "\(read.output.readableBytes)", "end": "\(read.reachedEnd)", "observed": "\(observed)"])
            if read.vanished {
                let target = await source.tailPosition(.last(0), filter: JournalFilter())
                encoder.encode(.marker(.reset, id: target.cursor, message: "this client fell behind entries the journal no longer holds (vacuumed); continuing from the newest entries"), into: &buffer)
                state.withLock { $0.position = target; $0.sequence = nil }
                return .events
            }
            state.withLock { $0.position = read.position }
            if read.output.readableBytes > 0 {
                var output = read.output
                buffer.writeBuffer(&output)
                return .events
            }
            if read.reachedEnd, read.position == position {
                if let step = await waitStep(after: observed) { return step }
            }
        }
    }

    private func waitStep(after sequence: UInt64) async -> StreamStep? {
        switch await source.log.wait(after: sequence, token: token) {
        case .appended: return nil
        case .tick: return .idle
        case .interrupted: return .finished
        case .closed: return nil
        }
    }
}
