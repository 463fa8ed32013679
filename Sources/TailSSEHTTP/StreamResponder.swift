import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TailSSECore
import TailSSESources

/// Turns a source into a streaming HTTP response and keeps it healthy: batching, heartbeats, write
/// deadlines, noticing clients that leave, and ending cleanly on shutdown.
struct StreamResponder: Sendable {
    let settings: StreamSettings
    let connections: ConnectionRegistry
    let logger: Logger

    /// - Parameter channel: the connection, for the live end to be pushed to while the client is up
    ///   to date, and to notice the client leaving.
    func response(
        source: any LogSource, streamRequest: StreamRequest, format: StreamFormat, body: RequestBody, audit: StreamAudit, channel: any Channel
    ) -> Response {
        let meters = StreamMeters(meters: [source.meter], multiplexed: false)
        let progress = streamRequest.grep != nil && format == .eventStream
        return response(
            label: source.name, format: format, body: body, audit: audit, meters: meters, sendsProgressIDs: progress, channel: channel, push: pushTarget(channel)
        ) {
            await source.openStream(streamRequest, encoder: EventEncoder(format: format, source: source.name, utcOffset: localUTCOffset, tally: meters.tallies[0], grep: streamRequest.grep))
        }
    }

    /// A streaming response of the stream `open` makes (when the response starts). When it ends,
    /// one access log line says who read what, how much, for how long and why it ended. What it
    /// sends of each source is counted through `meters` (whose tallies `open`'s encoders count in).
    /// `sendsProgressIDs`: a heartbeat is an SSE event with the stream's current id and no data
    /// (a `grep=` stream: the client's resume id moves past the lines left out, and no event fires).
    /// `channel`: the connection, to notice the client leaving without a task watching the
    /// request (``watchForTheClientLeaving(_:)``).
    /// `push`: where the stream's live end may be pushed (``EventStream/followLive(_:meter:heartbeat:)``).
    func response(
        label: String, format: StreamFormat, body: RequestBody, audit: StreamAudit, meters: StreamMeters, sendsProgressIDs: Bool = false,
        channel: (any Channel)? = nil, push: ChannelPushTarget? = nil, open: @escaping @Sendable () async -> any EventStream
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = format.contentType
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        let settings = self.settings
        let connections = self.connections
        let logger = self.logger
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let encoder = EventEncoder(format: format, source: label)
            let started = ContinuousClock.now
            let stream = await open()
            let connection = ConnectionGuard(stream: stream, audit: audit)
            connections.register(connection)
            defer {
                connections.unregister(connection)
                connection.sent(bytes: stream.takeBytesPushed())
                Self.logEnd(of: connection, since: started, logger: logger)
            }
            let pumpWriter = WriterBox(writer)
            let pumpUntilKilled: @Sendable () async throws -> Void = {
                // A write straight to the channel is not cancelled with the task: closing the
                // channel ends it.
                try await connection.whileKillable(onKill: { push?.close() }) {
                    do {
                        try await Self.pump(
                            stream, encoder: encoder, writer: pumpWriter, connection: connection, meters: meters, settings: settings,
                            sendsProgressIDs: sendsProgressIDs, push: push
                        )
                    } catch {
                        // A write that fails: the client closed its end.
                        if !connection.isKilled { connection.stopStream(reason: "client went away") }
                        throw error
                    }
                }
            }
            let watch: LeavingWatch = if let channel { await Self.watchForTheClientLeaving(channel) } else { .unsupported }
            switch watch {
            case .watching:
                // Weakly: a kept-alive connection must not hold every stream it served.
                channel?.closeFuture.whenComplete { [weak connection] _ in connection?.clientLeft() }
                defer { channel?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).whenFailure { _ in } }
                try await pumpUntilKilled()
            case .alreadyLeft:
                connection.clientLeft()
            case .unsupported:
                try await body.consumeWithInboundCloseHandler { _ in try await pumpUntilKilled() } onInboundClosed: { connection.clientLeft() }
            }
            writer = pumpWriter.writer
            try await writer.finish(nil)
        })
    }

    /// The connection's push target, when live ends are pushed.
    func pushTarget(_ channel: any Channel) -> ChannelPushTarget? {
        settings.livePush ? ChannelPushTarget(channel: channel) : nil
    }

    /// How a stream learns that its client left.
    private enum LeavingWatch {
        /// The connection closes when the client closes its end: its `closeFuture` says so.
        case watching
        /// The client closed its end before the stream began.
        case alreadyLeft
        /// An HTTP/2 stream (whose client always ends its side after the request): a task reads
        /// the request's inbound side.
        case unsupported
    }

    /// Makes an HTTP/1 connection (one a listener accepted, not a stream inside a connection)
    /// close when its client closes its end, rather than stay half open as the server allows
    /// for requests, so that no task has to read the connection to notice the client leaving.
    private static func watchForTheClientLeaving(_ channel: any Channel) async -> LeavingWatch {
        guard let listener = channel.parent, listener.parent == nil else { return .unsupported }
        let watch = channel.eventLoop.submit { () throws -> LeavingWatch in
            if try channel.pipeline.syncOperations.handler(type: RequestDeadline.self).inputClosed { return .alreadyLeft }
            guard let options = channel.syncOptions else { return .unsupported }
            try options.setOption(ChannelOptions.allowRemoteHalfClosure, value: false)
            return .watching
        }
        return (try? await watch.get()) ?? .unsupported
    }

    /// Writes the stream's events until it finishes, batching whatever is ready into one write.
    /// While the stream is at the live end, its events are pushed to `push` instead, with no
    /// task of its own running.
    private static func pump(
        _ stream: any EventStream, encoder: EventEncoder, writer: WriterBox,
        connection: ConnectionGuard, meters: StreamMeters, settings: StreamSettings, sendsProgressIDs: Bool, push: ChannelPushTarget?
    ) async throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 4096)
        var boundary = EventBoundary(format: encoder.format)
        encoder.preamble(retryMilliseconds: settings.retryMilliseconds, into: &buffer)
        if try await write(&buffer, to: writer, direct: push, connection: connection, boundary: &boundary) { return }
        var lastWrite = ContinuousClock.now
        while true {
            if let push, let pushed = await stream.followLive(
                push, meter: meters.meters.first, heartbeat: PushHeartbeat(after: settings.heartbeat / 2, quietSince: lastWrite)
            ) {
                connection.sent(bytes: pushed.bytes)
                try Task.checkCancellation()
                lastWrite = pushed.lastWrite
                if pushed.reason == .notWritable { meters.meters.first?.leftPush() }
                continue
            }
            let step = try await stream.next(into: &buffer)
            connection.sent(bytes: stream.takeBytesPushed())
            switch step {
            case .finished:
                if let reason = connection.revocation {
                    encodeRevocation(reason, format: encoder.format, sources: connection.audit.sources, meters: meters, into: &buffer)
                }
                if buffer.readableBytes > 0 {
                    let before = connection.bytesSent
                    _ = try await write(&buffer, to: writer, direct: push, connection: connection, boundary: &boundary)
                    meters.wrote(eventBytes: connection.bytesSent - before)
                }
                return
            case .idle:
                if ContinuousClock.now - lastWrite >= settings.heartbeat / 2 {
                    await beat(stream, encoder: encoder, progressID: sendsProgressIDs, into: &buffer)
                }
            case .events:
                // Lines a `grep=` pattern left out move the stream without writing: still beat.
                if buffer.readableBytes == 0, ContinuousClock.now - lastWrite >= settings.heartbeat {
                    await beat(stream, encoder: encoder, progressID: sendsProgressIDs, into: &buffer)
                }
            }
            guard buffer.readableBytes > 0 else { continue }
            let before = connection.bytesSent
            let ended = try await write(&buffer, to: writer, direct: push, connection: connection, boundary: &boundary)
            meters.wrote(eventBytes: step == .events ? connection.bytesSent - before : 0)
            if ended { return }
            lastWrite = .now
        }
    }

    /// A heartbeat: with `progressID`, `id: ID` and no data (EventSource takes the id and fires
    /// nothing), else a comment.
    private static func beat(_ stream: any EventStream, encoder: EventEncoder, progressID: Bool, into buffer: inout ByteBuffer) async {
        if progressID, let id = await stream.currentID() {
            buffer.writeString("id: \(id)\n\n")
        } else {
            encoder.heartbeat(into: &buffer)
        }
    }

    /// The `end` event of each of the stream's sources, saying why the stream was revoked; each
    /// counts as an event of its source.
    private static func encodeRevocation(_ reason: String, format: StreamFormat, sources: [String], meters: StreamMeters, into buffer: inout ByteBuffer) {
        for (source, tally) in zip(sources, meters.tallies) {
            let before = buffer.writerIndex
            let encoder = EventEncoder(format: format, source: source, tally: tally)
            encoder.encode(.marker(.end, id: nil, message: reason), into: &buffer)
            encoder.count(events: encoder.writes(.end) ? 1 : 0)
            if meters.streamCountsBytes { tally.add(bytes: buffer.writerIndex - before) }
        }
    }

    /// The most bytes handed to the channel in one write: a client's progress is counted per
    /// slice, so one that drains a large catch-up slowly but steadily never looks stuck.
    static let maxWriteSliceBytes = 16 << 10

    /// Writes the buffer's events in slices; returns `true` when the stream was told to end
    /// between events and has (the rest of the buffer is dropped).
    /// `direct`: write through the channel (a stream that may be pushed), in order with pushed writes.
    private static func write(
        _ buffer: inout ByteBuffer, to writer: WriterBox, direct: ChannelPushTarget?, connection: ConnectionGuard, boundary: inout EventBoundary
    ) async throws -> Bool {
        connection.writeBegan()
        defer { connection.writeEnded() }
        while buffer.readableBytes > 0 {
            var length = min(buffer.readableBytes, maxWriteSliceBytes)
            let ending = connection.endsBetweenEvents
            if ending { length = boundary.bytesToEventEnd(in: buffer) }
            if length > 0, let slice = buffer.readSlice(length: length) {
                if let direct {
                    try await direct.send(slice)
                } else {
                    try await writer.writer.write(slice)
                }
                boundary.wrote(slice)
                connection.sent(bytes: slice.readableBytes)
            }
            if ending { return true }
        }
        buffer = ByteBufferAllocator().buffer(capacity: 256)
        return false
    }
}

extension StreamResponder {
    /// The access log line of a stream that ended: client, sources, format, whether it resumed,
    /// bytes sent, duration and why it ended. No token, id or log content.
    static func logEnd(of connection: ConnectionGuard, since started: ContinuousClock.Instant, logger: Logger) {
        let audit = connection.audit
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        let format = switch audit.format {
        case .eventStream: "sse"
        case .ndjson: "ndjson"
        case .plainText: "plain"
        }
        logger.info("stream ended", metadata: [
            "client": .string(audit.client ?? "unknown"),
            "sources": .string(audit.sources.joined(separator: ",")),
            "format": .string(format),
            "resumed": .string(audit.resumed ? "yes" : "no"),
            "bytes": .stringConvertible(connection.bytesSent),
            "duration": .string("\((seconds * 1000).rounded() / 1000)s"),
            "end": .string(connection.endReason),
        ])
    }
}

/// Ticks every source so idle streams send heartbeats, and closes streams stuck in a write.
struct StreamSweeper: Service, CustomStringConvertible {
    var description: String { "StreamSweeper" }
    let registry: SourceRegistry
    let settings: StreamSettings
    let connections: ConnectionRegistry
    let metrics: ServerMetrics
    let logger: Logger

    func run() async throws {
        let interval = min(settings.heartbeat / 2, settings.writeTimeout / 2, .seconds(5), settings.slowReader.isEnabled ? settings.slowReader.window / 4 : .seconds(5))
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: interval)
                    for source in registry.sources { source.tick() }
                    let killed = await connections.killStuck(timeout: settings.writeTimeout)
                    if killed > 0 {
                        metrics.closed(by: .write, count: killed)
                        logger.info("closed clients that stopped reading", metadata: ["count": .stringConvertible(killed)])
                    }
                    await endFallingBehind()
                }
            }
        } catch is CancellationError {}
    }

    private func endFallingBehind() async {
        guard settings.slowReader.isEnabled else { return }
        let sources = Dictionary(registry.sources.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let ended = await connections.endFallingBehind(rule: settings.slowReader) { audit in
            audit.sources.reduce(0) { $0 + (sources[$1]?.bytesAppended ?? 0) }
        }
        metrics.closed(by: .slowReader, count: ended.count)
        for (audit, verdict) in ended {
            logger.info("closing a client that falls ever further behind; it can resume", metadata: [
                "client": .string(audit.client ?? "unknown"),
                "sources": .string(audit.sources.joined(separator: ",")),
                "read": .string("\(verdict.drainedBytesPerSecond) B/s"),
                "grew": .string("\(verdict.appendedBytesPerSecond) B/s"),
            ])
        }
    }
}

/// Moves the response writer into the task that pumps events, so that killing the connection can
/// cancel a write the client never reads. Only one task uses it at a time.
final class WriterBox: @unchecked Sendable {
    var writer: any ResponseBodyWriter
    init(_ writer: any ResponseBodyWriter) { self.writer = writer }
}
