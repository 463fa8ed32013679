import TailSSECore

/// Who opened a stream and what of: for the access log line written when the stream ends, and
/// to end the stream when its token is revoked. Holds no token, id or log content.
struct StreamAudit: Sendable {
    var client: String?
    var sources: [String]
    var format: StreamFormat
    var resumed: Bool
    var grant: AccessGrant
    /// Measures the client's progress on its connection.
    var drain: DrainGauge?
}

/// Where one stream counts what it sends of each of its sources: per source (in the stream's
/// order) a tally that the source's encoder counts events in, and the source's meter, which the
/// stream's writer hands the tally to after each write.
struct StreamMeters: Sendable {
    let tallies: [SentTally]
    let meters: [any SourceMeter]
    /// Whether the stream itself counts the bytes of each source (a multiplexed stream); else
    /// the writer counts the bytes of every event write for the stream's one source.
    let streamCountsBytes: Bool

    init(meters: [any SourceMeter], multiplexed: Bool) {
        self.meters = meters
        self.tallies = meters.map { _ in SentTally() }
        self.streamCountsBytes = multiplexed
    }

    /// After a write of `bytes` bytes of events (0 for a preamble or heartbeat): hands what the
    /// tallies hold to the sources' meters.
    func wrote(eventBytes bytes: Int) {
        if !streamCountsBytes, let tally = tallies.first { tally.add(bytes: bytes) }
        for (tally, meter) in zip(tallies, meters) {
            let taken = tally.take()
            if taken.events > 0 || taken.bytes > 0 { meter.sent(events: taken.events, bytes: taken.bytes) }
        }
    }
}
