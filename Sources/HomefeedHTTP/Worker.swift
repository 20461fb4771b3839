import CSystem
import Glibc

/// One event-loop thread: its own epoll instance, the shared listening socket, its connections.
///
/// epoll is level-triggered: one read(2) per readiness event is enough (no extra read to hit EAGAIN,
/// which edge-triggered mode would need), and a full buffer is simply reported again. The listening
/// socket is registered in every worker with EPOLLEXCLUSIVE so a new connection wakes one worker,
/// which accepts and keeps it. Handlers run inline on this thread.
final class Worker {
    static let listenToken: UInt64 = .max
    static let wakeToken: UInt64 = .max - 1
    /// Events taken per epoll_wait, each batch answered before the next: small batches serve ready connections
    /// in the kernel's FIFO order with little waiting behind a long batch (HTTP p99 at 50 connections 0.96–0.99 ms
    /// with 16, 1.03–1.11 ms with 256; 8 no better). One more epoll_wait per 16 requests costs next to nothing.
    static let maxEvents: Int32 = 16
    /// The batch's responses are sent mid-batch once they reach this, so deep pipelines cannot grow the output
    /// buffer without bound; a buffer grown past `shrinkOutAbove` by one is released after its batch.
    static let flushThreshold = 128 * 1024
    static let shrinkOutAbove = 256 * 1024
    static let initialInputCapacity = 4096
    /// Input buffers grown beyond this are released when empty (idle connections stay small).
    static let shrinkAbove = 16 * 1024

    private let epfd: Int32
    private let listenFd: Int32
    private let handler: any HTTPHandler
    private let shared: SharedServerState
    let counters: WorkerCounters
    private let maxHeaderBytes: Int
    private let maxBodyBytes: Int
    private let maxConnections: Int
    private let idleNanos: Int64
    private let sweepNanos: Int64
    private let lingerNanos: Int64

    private var connections: [Connection?] = []
    private var freeSlots: [Int] = []
    private var generation: UInt32 = 0
    /// Responses of the current epoll batch, connection after connection; sent once the batch is served.
    private var out = ByteBuffer(capacity: 64 * 1024)
    /// Whose bytes `out` holds: each connection's response bytes start at its offset and end at the next entry's.
    private var deferred: [(connection: Connection, start: Int)] = []
    private var response = HTTPResponse()
    private var now: Int64 = Posix.monotonicNanos()
    private var nextSweep: Int64 = 0
    private var acceptPaused = false
    private let eventFlags: UnsafeMutablePointer<UInt32>
    private let eventData: UnsafeMutablePointer<UInt64>
    private let rejectBytes: [UInt8]

    private static let IN = EPOLLIN.rawValue
    private static let OUT = EPOLLOUT.rawValue
    private static let ERR = EPOLLERR.rawValue
    private static let HUP = EPOLLHUP.rawValue

    init(epfd: Int32, listenFd: Int32, config: HTTPServerConfig, handler: any HTTPHandler,
         shared: SharedServerState, counters: WorkerCounters) {
        self.epfd = epfd
        self.listenFd = listenFd
        self.handler = handler
        self.shared = shared
        self.counters = counters
        maxHeaderBytes = config.maxHeaderBytes
        maxBodyBytes = config.maxBodyBytes
        maxConnections = config.maxConnections
        idleNanos = Int64(config.idleTimeoutSeconds * 1e9)
        sweepNanos = Int64(min(1.0, max(0.01, config.idleTimeoutSeconds / 4)) * 1e9)
        lingerNanos = Int64(min(2.0, config.idleTimeoutSeconds) * 1e9)
        eventFlags = .allocate(capacity: Int(Self.maxEvents))
        eventData = .allocate(capacity: Int(Self.maxEvents))
        var reject = HTTPResponse()
        reject.setError(503, "server is at its connection limit (maxConnections=\(config.maxConnections))")
        var buffer = ByteBuffer()
        ResponseEncoder.append(reject, headOnly: false, close: true, http10KeepAlive: false, to: &buffer)
        rejectBytes = Array(buffer.bytes)
    }

    deinit {
        eventFlags.deallocate()
        eventData.deallocate()
    }

    // MARK: Loop

    func run() {
        nextSweep = now + sweepNanos
        loop: while !shared.stopping.load(ordering: .acquiring) {
            let timeoutMs = Int32(clamping: max(0, (nextSweep - now + 999_999) / 1_000_000))
            let n = csys_epoll_wait(epfd, eventFlags, eventData, Self.maxEvents, timeoutMs)
            now = Posix.monotonicNanos()
            if n < 0 {
                if csys_errno() == EINTR { continue }
                break  // epoll fd unusable: nothing sensible left to do on this thread
            }
            for k in 0..<Int(n) {
                let token = eventData[k]
                switch token {
                case Self.listenToken: acceptBatch()
                case Self.wakeToken: break loop
                default: onEvent(token, eventFlags[k])
                }
            }
            // Reply to the whole batch at once, as Redis does: clients then send their next requests together
            // and every request waits about one batch. Replying inline made a request's wait anything from
            // nothing to two batches (HTTP p99 2.6× p50 under load, against Redis's 1.6×).
            flushDeferred()
            if now >= nextSweep {
                sweep()
                nextSweep = now + sweepNanos
            }
        }
        flushDeferred()  // answers computed before the stop signal still go out
        for case let c? in connections { closeConnection(c) }
        close(epfd)
    }

    // MARK: Accept

    private func acceptBatch() {
        for _ in 0..<64 {
            let fd = accept(listenFd, nil, nil)
            if fd < 0 {
                let e = csys_errno()
                if e == EINTR || e == ECONNABORTED || e == EPROTO { continue }
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    // Out of descriptors: level-triggered epoll would spin on the listener, so stop
                    // watching it until the next sweep.
                    _ = csys_epoll_del(epfd, listenFd)
                    acceptPaused = true
                }
                return  // EAGAIN: another worker took it, or the queue is empty
            }
            let open = shared.openConnections.wrappingAdd(1, ordering: .relaxed).newValue
            if open > maxConnections {
                shared.openConnections.wrappingSubtract(1, ordering: .relaxed)
                WorkerCounters.bump(counters.rejectedOverLimit)
                // Best effort: tell the client why, then close at once.
                rejectBytes.withUnsafeBytes { _ = send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                close(fd)
                continue
            }
            Posix.setNonBlocking(fd)
            Posix.setIntOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            let slot: Int
            if let free = freeSlots.popLast() {
                slot = free
            } else {
                slot = connections.count
                connections.append(nil)
            }
            generation &+= 1
            let token = UInt64(generation) << 32 | UInt64(slot)
            let c = Connection(fd: fd, token: token, now: now, events: Self.IN, inputCapacity: Self.initialInputCapacity)
            if csys_epoll_add(epfd, fd, Self.IN, token) != 0 {
                close(fd)
                freeSlots.append(slot)
                shared.openConnections.wrappingSubtract(1, ordering: .relaxed)
                continue
            }
            connections[slot] = c
            WorkerCounters.bump(counters.accepted)
        }
    }

    // MARK: Events

    private func onEvent(_ token: UInt64, _ flags: UInt32) {
        let slot = Int(token & 0xffff_ffff)
        guard slot < connections.count, let c = connections[slot], c.token == token else { return }
        if flags & Self.ERR != 0 {
            closeConnection(c)
            return
        }
        if c.lingering {
            drainLingering(c)
            return
        }
        if flags & Self.OUT != 0 {
            flushPending(c)
            return
        }
        if flags & (Self.IN | Self.HUP) != 0 {
            readAndServe(c)
        }
    }

    private func readAndServe(_ c: Connection) {
        // Room for the rest of a request whose size is known (growing at most 2x per read, so a
        // large Content-Length alone does not allocate), else at least 2 KB.
        let want = c.needBytes > c.input.count ? min(c.needBytes - c.input.count, max(2048, c.input.capacity)) : 2048
        if c.input.freeSpace < want && !c.input.reserve(want) {
            closeConnection(c)
            return
        }
        let n = read(c.fd, c.input.tail, c.input.freeSpace)
        if n > 0 {
            c.input.count += n
            c.lastActive = now
            if c.input.count >= c.needBytes { serveBuffered(c) }
        } else if n == 0 {
            closeConnection(c)  // peer closed; every complete request was already answered
        } else {
            let e = csys_errno()
            if e != EAGAIN && e != EWOULDBLOCK && e != EINTR { closeConnection(c) }
        }
    }

    /// Answers every complete request in `c.input` (pipelining), in order, into `out`; the bytes go out when the
    /// epoll batch has been served (`flushDeferred`), or at once past `flushThreshold` (a deep pipeline).
    private func serveBuffered(_ c: Connection) {
        var start = out.count
        var pos = 0
        while pos < c.input.count, let base = c.input.base {
            let view = UnsafeRawBufferPointer(start: base + pos, count: c.input.count - pos)
            switch HTTPParser.parse(view, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes) {
            case .incomplete(let needed):
                c.needBytes = needed  // relative to the request start, which compaction moves to 0
                c.input.consumeFront(pos)
                if out.count > start { deferred.append((c, start)) }
                return
            case .error(let error):
                WorkerCounters.bump(counters.badRequests)
                response.reset()
                response.setError(error.status, error.message)
                ResponseEncoder.append(response, headOnly: false, close: true, http10KeepAlive: false, to: &out)
                c.closeAfterFlush = true
                c.lingerOnClose = true  // the rest of the request may still be arriving
                pos = c.input.count
            case .complete(let request, let consumed):
                WorkerCounters.bump(counters.requests)
                response.reset()
                handler.handle(request, &response)
                let keep = request.keepAlive && !response.closeConnection
                ResponseEncoder.append(response, headOnly: request.method == .head, close: !keep,
                                       http10KeepAlive: keep && request.minorVersion == 0, to: &out)
                pos += consumed
                c.needBytes = 0
                if !keep {
                    c.closeAfterFlush = true
                    c.lingerOnClose = pos < c.input.count
                    pos = c.input.count
                } else if out.count >= Self.flushThreshold {
                    // The batch's buffer is full (deep pipelines): send what it holds, this connection's part too.
                    c.input.consumeFront(pos)
                    pos = 0
                    deferred.append((c, start))
                    flushDeferred()
                    start = 0
                    guard isOpen(c), c.pending.count == 0, !c.lingering else { return }
                }
            }
        }
        c.input.consumeFront(pos)
        if c.input.count == 0 && c.input.capacity > Self.shrinkAbove { c.input.release() }
        if out.count > start { deferred.append((c, start)) }
    }

    /// Sends every response of the batch (each connection's bytes run up to the next connection's start).
    private func flushDeferred() {
        for (i, d) in deferred.enumerated() {
            let end = i + 1 < deferred.count ? deferred[i + 1].start : out.count
            let c = d.connection
            guard isOpen(c) else { continue }  // closed meanwhile
            sendOut(c, d.start, end)
        }
        deferred.removeAll(keepingCapacity: true)
        out.count = 0
        if out.capacity > Self.shrinkOutAbove { out.release() }
    }

    /// Sends out[start..<end] to `c`. What the socket does not take is copied to `c.pending` (we then wait for
    /// EPOLLOUT); a connection marked `closeAfterFlush` starts closing once everything went out.
    private func sendOut(_ c: Connection, _ start: Int, _ end: Int) {
        var offset = start
        while offset < end, let base = out.base {
            let n = send(c.fd, base + offset, end - offset, Int32(MSG_NOSIGNAL))
            if n > 0 {
                offset += n
                continue
            }
            let e = csys_errno()
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) { break }
            closeConnection(c)  // EPIPE, ECONNRESET: the client is gone
            return
        }
        if offset < end, let base = out.base {
            c.pending.append(base + offset, end - offset)
            c.pendingOffset = 0
            setInterest(c, Self.OUT)
            return
        }
        if c.closeAfterFlush { finishClose(c) }
    }

    /// EPOLLOUT: push pending bytes; once empty, resume reading and serve any pipelined input.
    private func flushPending(_ c: Connection) {
        while c.pendingOffset < c.pending.count, let base = c.pending.base {
            let n = send(c.fd, base + c.pendingOffset, c.pending.count - c.pendingOffset, Int32(MSG_NOSIGNAL))
            if n > 0 {
                c.pendingOffset += n
                c.lastActive = now
                continue
            }
            let e = csys_errno()
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) { return }
            closeConnection(c)
            return
        }
        c.pending.release()
        c.pendingOffset = 0
        if c.closeAfterFlush {
            finishClose(c)
            return
        }
        setInterest(c, Self.IN)
        if c.input.count > 0 && c.input.count >= c.needBytes { serveBuffered(c) }
    }

    private func finishClose(_ c: Connection) {
        guard c.lingerOnClose else {
            closeConnection(c)
            return
        }
        shutdown(c.fd, Int32(SHUT_WR))
        c.lingering = true
        c.lingerDeadline = now + lingerNanos
        c.input.release()
        setInterest(c, Self.IN)
    }

    /// Discards input until the peer closes (or the sweep hits the linger deadline).
    private func drainLingering(_ c: Connection) {
        // Scratch space after the batch's responses (`out` holds them until the batch is flushed).
        guard out.reserve(16 * 1024), let scratch = out.tail else {
            closeConnection(c)
            return
        }
        for _ in 0..<8 {
            let n = read(c.fd, scratch, out.freeSpace)
            if n > 0 { continue }
            if n < 0 {
                let e = csys_errno()
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return }
            }
            closeConnection(c)
            return
        }
    }

    private func setInterest(_ c: Connection, _ events: UInt32) {
        guard c.events != events else { return }
        c.events = events
        if csys_epoll_mod(epfd, c.fd, events, c.token) != 0 { closeConnection(c) }
    }

    /// Whether `c` is still the connection registered in its slot (not closed, slot not reused).
    private func isOpen(_ c: Connection) -> Bool {
        c.slot < connections.count && connections[c.slot] === c
    }

    private func closeConnection(_ c: Connection) {
        guard isOpen(c) else { return }
        close(c.fd)  // also removes it from epoll (never dup'ed)
        connections[c.slot] = nil
        freeSlots.append(c.slot)
        shared.openConnections.wrappingSubtract(1, ordering: .relaxed)
    }

    // MARK: Timers

    /// Closes idle connections and expired lingerers; resumes accepting after descriptor exhaustion.
    private func sweep() {
        if acceptPaused && csys_epoll_add(epfd, listenFd, Self.IN | EPOLLEXCLUSIVE.rawValue, Self.listenToken) == 0 {
            acceptPaused = false
        }
        for case let c? in connections {
            if c.lingering {
                if now >= c.lingerDeadline { closeConnection(c) }
            } else if now - c.lastActive >= idleNanos {
                WorkerCounters.bump(counters.idleClosed)
                closeConnection(c)
            }
        }
    }
}
