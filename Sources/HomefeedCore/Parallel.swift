import Dispatch
import Synchronization

/// Runs `body(worker, range)` over 0..<count split into chunks, on `threads` workers that pull chunks from a
/// shared counter (so uneven chunks balance). `worker` is in 0..<threads: index per-worker scratch with it.
public func parallelFor(_ count: Int, threads: Int, chunk: Int = 64, _ body: @Sendable (_ worker: Int, Range<Int>) -> Void) {
    if count == 0 { return }
    let chunks = (count + chunk - 1) / chunk
    let workers = max(1, min(threads, chunks))
    if workers == 1 {
        body(0, 0..<count)
        return
    }
    let next = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        while true {
            let c = next.add(1, ordering: .relaxed).oldValue
            if c >= chunks { return }
            body(w, (c * chunk)..<min(count, (c + 1) * chunk))
        }
    }
}

/// A fixed-size buffer whose slots are written by different threads, each slot by exactly one at a time
/// (that invariant is why it may be `@unchecked Sendable`): per-user results, per-worker scratch.
/// Raw storage, so concurrent access to different slots never touches shared array bookkeeping.
public final class SlotBuffer<T>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<T>
    public let count: Int
    public init(repeating v: T, count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: v, count: count)
    }
    public init(_ values: [T]) {
        count = values.count
        base = .allocate(capacity: max(count, 1))
        _ = UnsafeMutableBufferPointer(start: base, count: count).initialize(from: values)
    }
    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }
    public subscript(i: Int) -> T {
        get { base[i] }
        set { base[i] = newValue }
    }
    /// In-place access to slot i (no copy of the value, so big scratch arrays are not duplicated).
    public func withSlot<R>(_ i: Int, _ body: (inout T) -> R) -> R { body(&base[i]) }
}
