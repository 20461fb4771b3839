import Synchronization

/// A snapshot of the server's counters (summed over workers).
public struct HTTPServerStats: Sendable, Equatable, CustomStringConvertible {
    /// Connections accepted and served.
    public var accepted: Int = 0
    /// Connections accepted then closed at once because `maxConnections` were open.
    public var rejectedOverLimit: Int = 0
    /// Connections currently open.
    public var openConnections: Int = 0
    /// Requests passed to the handler.
    public var requests: Int = 0
    /// 4xx/5xx responses produced by the server itself (parse errors, limits).
    public var badRequests: Int = 0
    /// Connections closed by the idle timeout.
    public var idleClosed: Int = 0

    public init() {}

    public var description: String {
        "accepted=\(accepted) rejectedOverLimit=\(rejectedOverLimit) open=\(openConnections) "
            + "requests=\(requests) badRequests=\(badRequests) idleClosed=\(idleClosed)"
    }
}

/// One worker's counters. Only the owning worker writes them, so increments are a relaxed
/// load + store (no locked read-modify-write in the hot path); readers may see slightly stale values.
final class WorkerCounters: Sendable {
    let accepted = Atomic<Int>(0)
    let rejectedOverLimit = Atomic<Int>(0)
    let requests = Atomic<Int>(0)
    let badRequests = Atomic<Int>(0)
    let idleClosed = Atomic<Int>(0)

    @inline(__always)
    static func bump(_ a: borrowing Atomic<Int>, by n: Int = 1) {
        a.store(a.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    func add(to s: inout HTTPServerStats) {
        s.accepted += accepted.load(ordering: .relaxed)
        s.rejectedOverLimit += rejectedOverLimit.load(ordering: .relaxed)
        s.requests += requests.load(ordering: .relaxed)
        s.badRequests += badRequests.load(ordering: .relaxed)
        s.idleClosed += idleClosed.load(ordering: .relaxed)
    }
}

/// State shared by all workers of one server.
final class SharedServerState: Sendable {
    /// Open connections across workers; enforces maxConnections.
    let openConnections = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
}
