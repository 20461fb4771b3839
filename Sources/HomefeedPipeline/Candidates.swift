import HomefeedStore

/// The candidates of one user, merged across sources: each video once, with the normalized score every source
/// gave it (0 when a source did not propose it) and the first source that proposed it.
///
/// One per worker thread, reused for every user: flat raw buffers sized once (`capacity` candidates), and per-video
/// stamps so starting a new user and deduplicating are O(1) — the per-candidate cost is a few stores.
final class CandidateSet {
    static let sourceCount = CandidateSource.allCases.count
    let capacity: Int
    private(set) var count = 0
    private let videoBuf: UnsafeMutablePointer<UInt32>
    private let sourceBuf: UnsafeMutablePointer<CandidateSource>
    /// `scoreBuf[c * sourceCount + s]`: candidate c's score from source s, scaled to [0, 1] by the source's top.
    private let scoreBuf: UnsafeMutablePointer<Float>
    /// Per video: stamp of the user that excluded it / added it, and its candidate slot.
    private let excludedStamp: UnsafeMutablePointer<UInt32>
    private let addedStamp: UnsafeMutablePointer<UInt32>
    private let slot: UnsafeMutablePointer<Int32>
    private let videoCount: Int
    private var stamp: UInt32 = 0

    init(videoCount: Int, capacity: Int) {
        self.videoCount = videoCount
        self.capacity = max(capacity, 1)
        videoBuf = .allocate(capacity: self.capacity)
        sourceBuf = .allocate(capacity: self.capacity)
        scoreBuf = .allocate(capacity: self.capacity * Self.sourceCount)
        excludedStamp = .allocate(capacity: max(videoCount, 1))
        excludedStamp.initialize(repeating: 0, count: max(videoCount, 1))
        addedStamp = .allocate(capacity: max(videoCount, 1))
        addedStamp.initialize(repeating: 0, count: max(videoCount, 1))
        slot = .allocate(capacity: max(videoCount, 1))
    }

    deinit {
        videoBuf.deallocate(); sourceBuf.deallocate(); scoreBuf.deallocate()
        excludedStamp.deallocate(); addedStamp.deallocate(); slot.deallocate()
    }

    /// Starts a new user: forgets the previous candidates and exclusions in O(1).
    func reset() {
        count = 0
        stamp &+= 1
        if stamp == 0 {  // wrapped: clear for real once every 4 billion users
            excludedStamp.update(repeating: 0, count: videoCount)
            addedStamp.update(repeating: 0, count: videoCount)
            stamp = 1
        }
    }

    @inline(__always) func exclude(_ v: Int) { excludedStamp[v] = stamp }
    @inline(__always) func isExcluded(_ v: Int) -> Bool { excludedStamp[v] == stamp }

    /// Adds (or merges) a candidate from `source` with a score already scaled to [0, 1]; ignored when full.
    @inline(__always)
    func add(_ v: UInt32, source: CandidateSource, score: Float) {
        let i = Int(v)
        let c: Int
        if addedStamp[i] == stamp {
            c = Int(slot[i])
        } else {
            guard count < capacity else { return }
            addedStamp[i] = stamp
            c = count
            count += 1
            slot[i] = Int32(c)
            videoBuf[c] = v
            sourceBuf[c] = source
            (scoreBuf + c * Self.sourceCount).update(repeating: 0, count: Self.sourceCount)
        }
        let k = c * Self.sourceCount + Int(source.rawValue)
        scoreBuf[k] = max(scoreBuf[k], score)
    }

    @inline(__always) func video(_ c: Int) -> UInt32 { videoBuf[c] }
    @inline(__always) func firstSource(_ c: Int) -> CandidateSource { sourceBuf[c] }
    @inline(__always) func score(_ c: Int, _ s: CandidateSource) -> Float { scoreBuf[c * Self.sourceCount + Int(s.rawValue)] }
}

/// Keeps the `k` best (score, candidate) pairs; ties go to the lower video index so output is deterministic.
struct TopK {
    private(set) var items: [(score: Float, video: UInt32, candidate: Int32)] = []
    let k: Int
    init(k: Int) { self.k = k; items.reserveCapacity(k + 1) }

    @inline(__always)
    static func better(_ a: (score: Float, video: UInt32, candidate: Int32), _ b: (score: Float, video: UInt32, candidate: Int32)) -> Bool {
        a.score != b.score ? a.score > b.score : a.video < b.video
    }

    /// Min-heap on "worst first" keeps insertion O(log k).
    mutating func offer(score: Float, video: UInt32, candidate: Int32) {
        let item = (score: score, video: video, candidate: candidate)
        if items.count < k {
            items.append(item)
            siftUp(items.count - 1)
        } else if k > 0, Self.better(item, items[0]) {
            items[0] = item
            siftDown(0)
        }
    }

    mutating func reset() { items.removeAll(keepingCapacity: true) }

    /// Best first.
    func sorted() -> [(score: Float, video: UInt32, candidate: Int32)] { items.sorted(by: Self.better) }

    private mutating func siftUp(_ i0: Int) {
        var i = i0
        while i > 0 {
            let p = (i - 1) / 2
            if Self.better(items[p], items[i]) { items.swapAt(p, i); i = p } else { break }
        }
    }
    private mutating func siftDown(_ i0: Int) {
        var i = i0
        while true {
            let l = 2 * i + 1, r = l + 1
            var worst = i
            if l < items.count, Self.better(items[worst], items[l]) { worst = l }
            if r < items.count, Self.better(items[worst], items[r]) { worst = r }
            if worst == i { return }
            items.swapAt(i, worst); i = worst
        }
    }
}
