#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A thread of its own for blocking work (inotify polling, an `sd_journal`), never the
/// cooperative pool. ``join()`` waits for it without blocking a pool thread.
final class DedicatedThread: Sendable {
    private let completion = Completion()

    init(_ body: @escaping @Sendable () -> Void) throws(SystemError) {
        let completion = self.completion
        let box = Unmanaged.passRetained(ThreadStart {
            body()
            completion.finish()
        })
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw SystemError(errno: result, operation: "pthread_create")
        }
        pthread_detach(thread)
    }

    /// Waits until the thread's body has returned.
    func join() async { await completion.wait() }
}

/// A one-time signal: ``finish()`` (again: no effect) wakes every ``wait()``, now and later.
final class Completion: Sendable {
    private let state = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func finish() {
        let waiters = state.withLock { state in
            state.done = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state in
                if !state.done { state.waiters.append(continuation) }
                return state.done
            }
            if done { continuation.resume() }
        }
    }
}

private final class ThreadStart {
    let body: @Sendable () -> Void
    init(body: @escaping @Sendable () -> Void) { self.body = body }
}
