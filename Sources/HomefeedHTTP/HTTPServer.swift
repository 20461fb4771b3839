import CSystem
import Glibc
import Synchronization

/// HTTP/1.1 server: N worker threads, each an epoll loop (see `Worker`), sharing one listening socket.
///
/// Thread safety is compiler-checked (plain `Sendable`, no `@unchecked`): every mutable field sits in a
/// `Mutex` or an `Atomic`. The non-Sendable per-thread state (`Worker`, its connections and buffers)
/// is never stored here: it is handed to its pthread at start and touched only by that thread.
public final class HTTPServer: Sendable {
    public let config: HTTPServerConfig
    private let handler: any HTTPHandler
    private let shared = SharedServerState()
    private let boundPort = Atomic<Int>(0)
    private let lifecycle = Mutex(Lifecycle())
    /// The workers' counters, apart from `lifecycle`: `stats` is read from handlers (e.g. a /metrics route), and
    /// `stop()` holds `lifecycle` while it joins the workers.
    private let workerCounters = Mutex<[WorkerCounters]>([])

    private enum Phase { case idle, running, stopped }

    private struct Lifecycle {
        var phase = Phase.idle
        var listenFd: Int32 = -1
        var wakeRead: Int32 = -1
        var wakeWrite: Int32 = -1
        var threads: [pthread_t] = []
        var counters: [WorkerCounters] = []
    }

    /// Validates the configuration; nothing is bound until `start()`.
    public init(config: HTTPServerConfig, handler: any HTTPHandler) throws(HTTPConfigError) {
        func check(_ ok: Bool, _ what: String) throws(HTTPConfigError) {
            if !ok { throw HTTPConfigError("invalid server setting: \(what)") }
        }
        try check((0...65535).contains(config.port), "port \(config.port) is not in 0...65535")
        try check((0...1024).contains(config.threads), "threads \(config.threads) is not in 0...1024")
        try check((64...(1 << 24)).contains(config.maxHeaderBytes), "max_header_bytes \(config.maxHeaderBytes) is not in 64...16777216")
        try check((0...(1 << 30)).contains(config.maxBodyBytes), "max_body_bytes \(config.maxBodyBytes) is not in 0...1073741824")
        try check(config.maxConnections >= 1, "max_connections must be at least 1")
        try check(config.idleTimeoutSeconds > 0 && config.idleTimeoutSeconds <= 86400 * 365,
                  "idle_timeout_seconds \(config.idleTimeoutSeconds) must be > 0")
        try check(config.backlog >= 1, "backlog must be at least 1")
        self.config = config
        self.handler = handler
    }

    deinit { stop() }

    /// The bound port (useful with port 0); the configured port before `start()`.
    public var port: Int {
        let p = boundPort.load(ordering: .acquiring)
        return p != 0 ? p : config.port
    }

    /// Counters summed over the workers (each may lag by a few events).
    public var stats: HTTPServerStats {
        var s = HTTPServerStats()
        for c in workerCounters.withLock({ $0 }) { c.add(to: &s) }
        s.openConnections = shared.openConnections.load(ordering: .relaxed)
        return s
    }

    /// Binds, listens and starts the workers. Throws (naming the address) if binding fails; at most once.
    public func start() throws(HTTPServerError) {
        try lifecycle.withLock { (st: inout Lifecycle) throws(HTTPServerError) in
            guard st.phase == .idle else {
                throw HTTPServerError(st.phase == .running ? "HTTPServer.start(): already running"
                                                           : "HTTPServer.start(): a stopped server cannot be restarted")
            }
            st.listenFd = try Posix.listen(host: config.host, port: config.port, backlog: config.backlog)
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else {
                let e = errno
                close(st.listenFd)
                throw HTTPServerError("HTTPServer.start(): pipe()", errno: e)
            }
            st.wakeRead = fds[0]
            st.wakeWrite = fds[1]
            Posix.setNonBlocking(st.wakeWrite)
            boundPort.store(Posix.boundPort(st.listenFd) ?? config.port, ordering: .releasing)
            st.phase = .running  // from here on, a failure unwinds through shutdown(&st)

            let count = config.threads > 0 ? config.threads : Posix.availableCPUs()
            for i in 0..<count {
                do throws(HTTPServerError) {
                    try spawnWorker(&st)
                } catch {
                    shutdown(&st)
                    st.phase = .stopped
                    throw HTTPServerError("HTTPServer.start(): worker \(i): \(error.description)")
                }
            }
        }
    }

    private func spawnWorker(_ st: inout Lifecycle) throws(HTTPServerError) {
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard ep >= 0 else { throw HTTPServerError("epoll_create1", errno: errno) }
        // EPOLLEXCLUSIVE: a new connection wakes one waiting worker, not all of them.
        guard csys_epoll_add(ep, st.listenFd, EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue, Worker.listenToken) == 0,
              csys_epoll_add(ep, st.wakeRead, EPOLLIN.rawValue, Worker.wakeToken) == 0 else {
            let e = csys_errno()
            close(ep)
            throw HTTPServerError("epoll_ctl(ADD)", errno: e)
        }
        let counters = WorkerCounters()
        let worker = Worker(epfd: ep, listenFd: st.listenFd, config: config, handler: handler,
                            shared: shared, counters: counters)
        do throws(HTTPServerError) {
            st.threads.append(try PThread.spawn { worker.run() })
        } catch {
            close(ep)
            throw error
        }
        st.counters.append(counters)
        workerCounters.withLock { $0.append(counters) }
    }

    /// Stops accepting, closes every connection and joins the workers. Idempotent; safe from any
    /// thread except a handler (a worker cannot join itself: it is then left to exit on its own).
    public func stop() {
        lifecycle.withLock { st in
            if st.phase == .running { shutdown(&st) }
            st.phase = .stopped
        }
    }

    private func shutdown(_ st: inout Lifecycle) {
        shared.stopping.store(true, ordering: .releasing)
        var one: UInt8 = 1
        _ = write(st.wakeWrite, &one, 1)  // level-triggered: stays readable, so every worker sees it
        let me = pthread_self()
        for t in st.threads where pthread_equal(t, me) == 0 { pthread_join(t, nil) }
        st.threads.removeAll()
        close(st.listenFd)
        close(st.wakeRead)
        close(st.wakeWrite)
        st.listenFd = -1
        st.wakeRead = -1
        st.wakeWrite = -1
    }
}

/// Minimal pthread spawning (Foundation's Thread cannot be joined).
enum PThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func spawn(_ body: @escaping () -> Void) throws(HTTPServerError) -> pthread_t {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            if let raw {
                Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
            }
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw HTTPServerError("pthread_create", errno: rc)
        }
        return thread
    }
}
