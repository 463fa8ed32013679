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
    private let cursor: SharedLogCursor<JournalPosition>
    /// Whether the client keeps up: large steps; else small ones.
    private let pace = Mutex(ReadPace())

    init(source: JournalSource, encoder: EventEncoder, filter: JournalFilter, start: JournalPosition, pending: [StreamEvent]) {
        self.source = source
        self.encoder = encoder
        self.filter = filter
        self.cursor = SharedLogCursor(log: source.log, start: start, pending: pending)
    }

    deinit { source.streamEnded() }

    func stop() { cursor.stop() }

    func followLive(_ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat) async -> LivePushReturn? {
        guard encoder.isPushable, filter.isEmpty else { return nil }
        return await cursor.followLive(target, encoder: encoder, meter: meter, heartbeat: heartbeat).map(LivePushReturn.init)
    }

    func pushLive(
        _ target: any PushTarget, meter: (any SourceMeter)?, heartbeat: PushHeartbeat, onLeave: @escaping @Sendable (LivePushReturn) -> Void
    ) -> Bool {
        guard encoder.isPushable, filter.isEmpty else { return false }
        return cursor.pushLive(target, encoder: encoder, meter: meter, heartbeat: heartbeat) { onLeave(LivePushReturn($0)) }
    }

    func currentID() async -> String? {
        cursor.position.cursor
    }

    func next(into buffer: inout ByteBuffer) async throws -> StreamStep {
        let filter = self.filter
        let maxBytes = pace.withLock { $0.bytes() }
        defer { pace.withLock { $0.handedOut() } }
        while true {
            let position: JournalPosition
            let observed: UInt64
            switch await cursor.next(encoder: encoder, into: &buffer, maxBytes: maxBytes, accept: { event in
                guard let entry = event.entry, !filter.isEmpty else { return true }
                return filter.matches(entry.fields)
            }) {
            case .done(let step):
                return step
            case .behind(let behind, let sequence):
                (position, observed) = (behind, sequence)
            }
            let read: JournalSource.Read
            do {
                read = try await source.read(after: position, filter: filter, encoder: encoder, maxBytes: maxBytes)
            } catch is JournalReaderPool.Stopped {
                if source.log.isClosed { continue }
                return .finished
            } catch {
                source.logger.warning("cannot read the journal for a client; retrying", metadata: ["error": .string("\(error)")])
                if let step = await cursor.wait(after: observed) { return step }
                continue
            }
            source.logger.trace("client read", metadata: ["from": "\(position)", "to": "\(read.position)", "bytes": "\(read.output.readableBytes)", "end": "\(read.reachedEnd)", "observed": "\(observed)"])
            if read.vanished {
                let target = await source.tailPosition(.last(0), filter: JournalFilter())
                encoder.encode(.marker(.reset, id: target.cursor, message: "this client fell behind entries the journal no longer holds (vacuumed); continuing from the newest entries"), into: &buffer)
                encoder.count(events: encoder.writes(.reset) ? 1 : 0)
                source.meter.reset()
                cursor.move(to: target)
                return .events
            }
            cursor.move(to: read.position)
            encoder.count(events: read.entries)
            if read.output.readableBytes > 0 {
                var output = read.output
                buffer.writeBuffer(&output)
                return .events
            }
            if read.reachedEnd, read.position == position {
                if let step = await cursor.wait(after: observed) { return step }
            }
        }
    }
}
