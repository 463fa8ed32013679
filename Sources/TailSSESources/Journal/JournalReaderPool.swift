#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// A few dedicated threads, each owning one `sd_journal` for its whole life, that run the
/// clients' reads (backlogs, resumes, catch-up) off the cooperative pool.
///
/// A job gets the thread's journal with no position or matches it can rely on: it seeks and
/// sets its own matches.
final class JournalReaderPool: Sendable {
    private typealias Job = @Sendable (Result<JournalHandle, SystemError>) -> Void

    private struct State {
        var jobs: [Job] = []
        var head = 0
        var stopped = false
    }

    /// Why a job did not run.
    struct Stopped: Error, CustomStringConvertible {
        var description: String { "the journal source is shutting down" }
    }

    private let location: JournalLocation
    private let state = Mutex(State())
    private let signal = Semaphore()
    private let threadCount: Int
    private let threads = Mutex<[DedicatedThread]>([])
    private let logger: Logger

    init(location: JournalLocation, threads: Int, logger: Logger) {
        self.location = location
        self.threadCount = threads
        self.logger = logger
    }

    func start() throws(SystemError) {
        var started: [DedicatedThread] = []
        for _ in 0..<threadCount {
            started.append(try DedicatedThread { [self] in work() })
        }
        threads.withLock { $0 = started }
    }

    /// Ends the threads after the jobs queued so far; later jobs fail with ``Stopped``.
    func stop() async {
        state.withLock { $0.stopped = true }
        for _ in 0..<threadCount { signal.post() }
        for thread in threads.withLock({ $0 }) { await thread.join() }
    }

    /// Runs `body` on one of the pool's threads with its journal.
    func run<T: Sendable>(_ body: @escaping @Sendable (JournalHandle) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.jobs.append { journal in
                    continuation.resume(with: Result { try body(journal.get()) })
                }
                return true
            }
            if accepted { signal.post() } else { continuation.resume(throwing: Stopped()) }
        }
    }

    private func work() {
        var journal: JournalHandle?
        // A journal without inotify (a limit is reached) learns of new files only by reopening.
        var reopenAfter: ContinuousClock.Instant?
        while true {
            signal.wait()
            let job: Job? = state.withLock { state in
                guard state.head < state.jobs.count else { return nil }
                defer {
                    state.head += 1
                    if state.head > 64, state.head * 2 > state.jobs.count {
                        state.jobs.removeFirst(state.head)
                        state.head = 0
                    }
                }
                return state.jobs[state.head]
            }
            guard let job else {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            do {
                if let reopenAfter, ContinuousClock.now >= reopenAfter { journal = nil }
                if journal == nil {
                    let opened = try JournalHandle(location)
                    let polled = try opened.inotifyShortage() != nil
                    reopenAfter = polled ? .now + .seconds(InotifyShortage.pollInterval) : nil
                    journal = opened
                }
                try journal!.process()
            } catch {
                journal = nil
                logger.warning("cannot open the journal for a client's read", metadata: ["error": .string(error.description)])
                job(.failure(error))
                continue
            }
            job(.success(journal!))
        }
    }
}

/// A counting semaphore for dedicated threads (never used from the cooperative pool).
final class Semaphore: @unchecked Sendable {
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init() { sem_init(semaphore, 0, 0) }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    func post() { sem_post(semaphore) }

    func wait() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }
}
