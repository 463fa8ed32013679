/// A source that can start and stop being followed while tailsse runs, so that reloading the
/// configuration adds and removes sources without a restart.
///
/// A file source, followed by the shared inotify thread, and a journal source, followed by a
/// reader thread of its own, are both managed this way by ``SourceRegistry``:
///
/// - ``begin()`` is called once, before the source is listed or served. It starts following
///   (registers the file with the watcher, starts the reader thread) and returns once the source
///   holds its current end, so the first clients find it ready.
/// - ``end(reason:)`` is called once, when the source leaves the configuration (`reason` says
///   why) or when tailsse shuts down (`reason` is `nil`). It stops following and ends every open
///   stream: with a final `end` event carrying the reason — a named SSE event
///   `event: end` / `data: {"source": NAME, "reason": REASON}` — or, on shutdown, with no event
///   so that clients reconnect and resume. Closing the source's ``EventLog`` with
///   ``EventLog/close(finalEvent:)`` does this for streams that wait on the log.
///
/// A reload keeps a source whose ``name`` and ``definition`` are unchanged, with its clients.
public protocol ManagedSource: LogSource {
    /// The source's configuration in one line (e.g. `file /var/log/app.log`): a reload that
    /// yields the same name and definition keeps this source.
    var definition: String { get }
    /// Starts following; the source is served only after this returns.
    func begin() async throws
    /// Stops following and ends every stream: with a final `end` event carrying `reason`, or with
    /// none when `reason` is `nil` (shutdown).
    func end(reason: String?) async
}

extension ManagedSource {
    /// The `end` event for this source's streams.
    public func endEvent(reason: String) -> StreamEvent {
        .marker(.end, id: nil, message: reason)
    }
}
