import HomefeedStore

/// The candidates of one user, merged across sources: each video once, with the normalized score every source
/// gave it (0 when a source did not propose it) and the first source that proposed it.
struct CandidateSet {
    static let sourceCount = CandidateSource.allCases.count
    var videos: [UInt32] = []
    var firstSource: [CandidateSource] = []
    /// `sourceScores[c * sourceCount + s]`: candidate c's score from source s, scaled to [0, 1] by the source's top.
    var sourceScores: [Float] = []
    /// Per video: stamp of the user that last touched it (`seenStamp`: excluded; `addStamp`: index in `slot`).
    private var excludedStamp: [UInt32]
    private var addedStamp: [UInt32]
    private var slot: [Int32]
    private var stamp: UInt32 = 0

    init(videoCount: Int) {
        excludedStamp = [UInt32](repeating: 0, count: videoCount)
        addedStamp = [UInt32](repeating: 0, count: videoCount)
        slot = [Int32](repeating: 0, count: videoCount)
    }

    var count: Int { videos.count }

    /// Starts a new user: forgets the previous candidates and exclusions in O(1).
    mutating func reset() {
        videos.removeAll(keepingCapacity: true)
        firstSource.removeAll(keepingCapacity: true)
        sourceScores.removeAll(keepingCapacity: true)
        stamp &+= 1
        if stamp == 0 {  // wrapped: clear for real once every 4 billion users
            for i in excludedStamp.indices { excludedStamp[i] = 0; addedStamp[i] = 0 }
            stamp = 1
        }
    }

    mutating func exclude(_ v: Int) { excludedStamp[v] = stamp }
    func isExcluded(_ v: Int) -> Bool { excludedStamp[v] == stamp }

    /// Adds (or merges) a candidate from `source` with a score already scaled to [0, 1].
    mutating func add(_ v: UInt32, source: CandidateSource, score: Float) {
        let i = Int(v)
        let c: Int
        if addedStamp[i] == stamp {
            c = Int(slot[i])
        } else {
            addedStamp[i] = stamp
            c = videos.count
            slot[i] = Int32(c)
            videos.append(v)
            firstSource.append(source)
            sourceScores.append(contentsOf: repeatElement(0, count: Self.sourceCount))
        }
        let k = c * Self.sourceCount + Int(source.rawValue)
        sourceScores[k] = max(sourceScores[k], score)
    }

    func score(_ c: Int, _ s: CandidateSource) -> Float { sourceScores[c * Self.sourceCount + Int(s.rawValue)] }
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
