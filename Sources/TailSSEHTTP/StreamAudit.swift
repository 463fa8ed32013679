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
