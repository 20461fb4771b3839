/// Per-connection state, owned by exactly one worker (never shared between threads).
final class Connection {
    let fd: Int32
    /// epoll user data: generation << 32 | slot, so an event for a reused slot is recognisable as stale.
    let token: UInt64
    /// Received bytes not yet consumed by a complete request (starts at a request boundary).
    var input: ByteBuffer
    /// Response bytes the socket did not take yet; while non-empty we wait for EPOLLOUT and stop
    /// reading, which bounds memory when a client pipelines faster than it reads.
    var pending = ByteBuffer()
    var pendingOffset = 0
    /// Do not re-parse until `input.count` reaches this (the size of a request whose body is arriving).
    var needBytes = 0
    var lastActive: Int64
    /// Current epoll interest, to skip redundant epoll_ctl calls.
    var events: UInt32
    /// Close once `pending` is flushed (Connection: close, HTTP/1.0, server error).
    var closeAfterFlush = false
    /// When closing, shut down the write side and drain input first, so unread request bytes do not
    /// turn our close into a RST that destroys the response in flight.
    var lingerOnClose = false
    /// Write side shut; reading and discarding until EOF or `lingerDeadline`.
    var lingering = false
    var lingerDeadline: Int64 = 0

    init(fd: Int32, token: UInt64, now: Int64, events: UInt32, inputCapacity: Int) {
        self.fd = fd
        self.token = token
        self.lastActive = now
        self.events = events
        self.input = ByteBuffer(capacity: inputCapacity)
    }

    var slot: Int { Int(token & 0xffff_ffff) }
}
