import Foundation
import HomefeedCore
import HomefeedData

// Offline ranking metrics (docs/EVALUATION.md), with the definitions of the shared evaluator
// (`shared/quality/rec_eval.py`, the Microsoft Recommenders benchmark) so Homefeed's numbers compare with published
// ones. Notation for one user u and one cut-off k:
//
//   L_u   the user's list, best first, cut to its first k entries (a shorter list is not padded)
//   T_u   the user's ground truth: the distinct relevant test videos (|T_u| also counts test videos outside the
//         catalog, which no list can hit)
//   hits  the entries of L_u that are in T_u; the j-th hit sits at rank r_j (1-based)
//
// Items are dense video indices (`Int32`) of one catalog, usually the `Dataset`'s videos; negative or out-of-range
// entries are allowed in a list (e.g. a video a version knows but the dataset does not) and never hit.

/// Binary tag vectors of a catalog's videos, for the diversity metric: the tags of video v are
/// `tags[offsets[v]..<offsets[v + 1]]` (distinct tag indices; the CSR layout of `Videos`).
public struct TagVectors: Sendable {
    public let offsets: [Int32]
    public let tags: [Int32]
    /// Number of distinct tags (every tag index is < tagCount).
    public let tagCount: Int

    public init(offsets: [Int32], tags: [Int32], tagCount: Int) {
        precondition(!offsets.isEmpty && Int(offsets.last!) == tags.count, "TagVectors: offsets must be CSR over tags")
        self.offsets = offsets; self.tags = tags; self.tagCount = tagCount
    }

    /// The dataset's video tags (shares its arrays; no copy).
    public init(_ data: Dataset) {
        self.init(offsets: data.videos.tagOffsets, tags: data.videos.tagIds, tagCount: data.tags.count)
    }

    public var videoCount: Int { offsets.count - 1 }

    /// Tags of video v (empty for an index outside the catalog).
    public func tags(of v: Int32) -> ArraySlice<Int32> {
        guard v >= 0, Int(v) < videoCount else { return [] }
        return tags[Int(offsets[Int(v)])..<Int(offsets[Int(v) + 1])]
    }
}

/// One user's metrics at one cut-off k (what `RankingMetrics.score` returns; the report averages them).
public struct UserMetrics: Sendable, Equatable {
    public var k: Int
    /// |L_u ∩ T_u| counted over the entries of L_u (a duplicated hit counts twice, as in rec_eval).
    public var hits: Int
    /// hits / k.
    public var precision: Double
    /// hits / |T_u|.
    public var recall: Double
    /// AP = Σ_j (j / r_j) / |T_u|: the benchmark's "MAP" column per user (rec_eval `MAP`).
    public var averagePrecision: Double
    /// AP@k = Σ_j (j / r_j) / min(|T_u|, k): Spark's / recommenders ≥ 1.2 `map_at_k` per user (rec_eval `MAP@k_spark`).
    public var averagePrecisionAtK: Double
    /// DCG / IDCG with binary gains: DCG = Σ_j 1/ln(1 + r_j), IDCG = Σ_{r=1}^{min(|T_u|, k)} 1/ln(1 + r).
    public var ndcg: Double
    /// Mean pairwise cosine similarity of the tag vectors in L_u (see `RankingMetrics.diversity`); nil when fewer
    /// than two videos of L_u have tags.
    public var diversity: Double?
}

/// Per-user metric functions (the accumulator uses the same code; these are for tests, tools and single lists).
public enum RankingMetrics {
    /// One user's metrics at each k of `ks` (each ≥ 1; returned ascending, duplicates removed) in one pass over the list.
    /// - Parameters:
    ///   - list: recommended videos, best first (only the first max(ks) entries are read).
    ///   - truth: the relevant test videos (duplicates are ignored).
    ///   - unreachable: relevant test videos that are not in the catalog (count in |T_u|, can never hit).
    ///   - tags: tag vectors for the diversity metric (nil: diversity is nil).
    /// With an empty ground truth every metric is 0.
    public static func score(list: some Collection<Int32>, truth: some Collection<Int32>, unreachable: Int = 0,
                             ks: [Int], tags: TagVectors? = nil) -> [UserMetrics] {
        let t = Set(truth)
        var s = ListScorer(ks: Array(Set(ks)).sorted(), tags: tags)
        s.run(list) { t.contains($0) }
        return s.userMetrics(relevant: t.count + unreachable)
    }

    /// The rank discount of nDCG: 1 / ln(1 + rank), rank ≥ 1 (the log base cancels in DCG / IDCG).
    @inlinable
    public static func discount(rank: Int) -> Double { 1 / Foundation.log(Double(1 + rank)) }

    /// Diversity of one list: the mean, over the unordered pairs {a, b} of entries that both have tags, of the
    /// cosine similarity of their binary tag vectors, |A ∩ B| / √(|A|·|B|). Entries without tags (or outside the
    /// catalog) are skipped, so they neither raise nor lower the value; nil when fewer than two entries have tags.
    /// 0 = no two videos share a tag (most diverse), 1 = all tag sets identical. Lower is more diverse.
    public static func diversity(of list: some Collection<Int32>, tags: TagVectors) -> Double? {
        var s = ListScorer(ks: [max(list.count, 1)], tags: tags)
        s.run(list) { _ in false }
        return s.diversity(0)
    }
}

// MARK: - The one-pass scorer shared by RankingMetrics and MetricsAccumulator

/// Walks one list once and records, at each cut-off, the raw sums every metric is built from. Holds the scratch
/// arrays of the diversity computation, so an accumulator reuses one for all users.
struct ListScorer: Sendable {
    let ks: [Int]                 // sorted ascending, each ≥ 1
    let maxK: Int
    /// discount[r - 1] = 1 / ln(1 + r), r = 1…maxK.
    let discount: [Double]
    /// idcg[m] = Σ_{r=1}^{m} 1 / ln(1 + r), m = 0…maxK.
    let idcg: [Double]
    let tags: TagVectors?
    // Per cut-off (index into ks), for the last list run:
    var hits: [Int]
    var precisionSum: [Double]    // Σ_j j / r_j
    var dcg: [Double]             // Σ_j 1 / ln(1 + r_j)
    var pairSum: [Double]         // Σ over tagged pairs of the cosine similarity
    var tagged: [Int]             // entries with tags
    // Diversity scratch: tagSum[t] = Σ over the tagged entries so far that have tag t of 1/√|tags|.
    private var tagSum: [Double]
    private var touched: [Int32] = []

    init(ks: [Int], tags: TagVectors?) {
        precondition(!ks.isEmpty && ks.allSatisfy { $0 >= 1 }, "cut-offs must be ≥ 1")
        self.ks = ks
        maxK = ks.last!
        discount = (1...maxK).map { RankingMetrics.discount(rank: $0) }
        var c = [0.0]
        for d in discount { c.append(c.last! + d) }
        idcg = c
        self.tags = tags
        tagSum = [Double](repeating: 0, count: tags?.tagCount ?? 0)
        hits = [Int](repeating: 0, count: ks.count)
        precisionSum = [Double](repeating: 0, count: ks.count)
        dcg = precisionSum; pairSum = precisionSum
        tagged = hits
    }

    /// Scores `list` (first maxK entries); `isHit` tells whether an entry is in the ground truth.
    mutating func run<L: Collection<Int32>>(_ list: L, isHit: (Int32) -> Bool) {
        var h = 0, p = 0.0, d = 0.0, pairs = 0.0, m = 0
        var ki = 0, r = 0
        let tv = tags
        for v in list {
            if r == maxK { break }
            r += 1
            if isHit(v) {
                h += 1
                p += Double(h) / Double(r)          // the j-th hit at rank r adds j / r
                d += discount[r - 1]                // binary gain 1, discount 1 / ln(1 + r)
            }
            if let tv {
                let vt = tv.tags(of: v)
                if !vt.isEmpty {
                    // Cosine of binary vectors A, B: |A ∩ B| / √(|A||B|) = Σ_t (1/√|A|)(1/√|B|) over shared tags t,
                    // so this entry's similarity to all earlier tagged entries is Σ_{t ∈ A} tagSum[t] / √|A|.
                    let w = 1 / Double(vt.count).squareRoot()
                    var dot = 0.0
                    for t in vt {
                        let x = tagSum[Int(t)]
                        if x == 0 { touched.append(t) }
                        dot += x
                        tagSum[Int(t)] = x + w
                    }
                    pairs += dot * w
                    m += 1
                }
            }
            while ki < ks.count && ks[ki] == r {
                hits[ki] = h; precisionSum[ki] = p; dcg[ki] = d; pairSum[ki] = pairs; tagged[ki] = m
                ki += 1
            }
        }
        while ki < ks.count {   // the list is shorter than these cut-offs: nothing more to add
            hits[ki] = h; precisionSum[ki] = p; dcg[ki] = d; pairSum[ki] = pairs; tagged[ki] = m
            ki += 1
        }
        for t in touched { tagSum[Int(t)] = 0 }
        touched.removeAll(keepingCapacity: true)
    }

    /// Mean pairwise similarity at cut-off index i of the last run: pairSum / C(m, 2), nil when m < 2.
    func diversity(_ i: Int) -> Double? {
        guard tags != nil, tagged[i] >= 2 else { return nil }
        let m = Double(tagged[i])
        return pairSum[i] / (m * (m - 1) / 2)
    }

    /// Per-user values at cut-off index i, for a ground truth of `relevant` videos (|T_u|).
    func precision(_ i: Int) -> Double { Double(hits[i]) / Double(ks[i]) }                     // hits / k
    func recall(_ i: Int, relevant: Int) -> Double { relevant > 0 ? Double(hits[i]) / Double(relevant) : 0 }  // hits / |T_u|
    func averagePrecision(_ i: Int, relevant: Int) -> Double {                                  // Σ j/r_j / |T_u|
        relevant > 0 ? precisionSum[i] / Double(relevant) : 0
    }
    func averagePrecisionAtK(_ i: Int, relevant: Int) -> Double {                               // Σ j/r_j / min(|T_u|, k)
        relevant > 0 ? precisionSum[i] / Double(min(relevant, ks[i])) : 0
    }
    func ndcg(_ i: Int, relevant: Int) -> Double {                                              // DCG / IDCG(min(|T_u|, k))
        relevant > 0 ? dcg[i] / idcg[min(relevant, ks[i])] : 0
    }

    func userMetrics(relevant: Int) -> [UserMetrics] {
        ks.indices.map { i in
            UserMetrics(k: ks[i], hits: hits[i], precision: precision(i), recall: recall(i, relevant: relevant),
                        averagePrecision: averagePrecision(i, relevant: relevant),
                        averagePrecisionAtK: averagePrecisionAtK(i, relevant: relevant),
                        ndcg: ndcg(i, relevant: relevant), diversity: diversity(i))
        }
    }
}

// MARK: - Accumulating over users

/// Averages the metrics over many users in one pass each (add every test user once, then `report`).
///
/// Who is averaged over follows rec_eval: a **scored** user is one with a non-empty list. Precision, recall, MAP,
/// MAP@k, hit rate and diversity average over scored users; nDCG and the `*Strict` variants over **all** test users
/// added (a user without a list counts 0). Catalog coverage counts the distinct videos in the top k of all lists.
public struct MetricsAccumulator: Sendable {
    /// The cut-offs, ascending.
    public var ks: [Int] { scorer.ks }
    /// Size of the video index space (entries outside 0..<catalogSize never hit and are not covered).
    public let catalogSize: Int
    /// Denominator of coverage: the number of videos that could be recommended.
    public let eligibleVideos: Int

    private var scorer: ListScorer
    private var truthMark: [UInt32]       // truthMark[v] == stamp ⇔ v ∈ T_u of the current user
    private var listMark: [UInt32]        // listMark[v] == stamp ⇔ v already in the current list (duplicates)
    private var seenMark: [UInt32] = []   // seenMark[v] == stamp ⇔ v seen in train by the current user (lazy)
    private var stamp: UInt32 = 0
    private var bestRank: [Int32]         // smallest rank at which a list recommended v (Int32.max = never)
    private var listBuffer: [Int32] = []  // reused copies of the current user's list and truth
    private var truthBuffer: [Int32] = []

    // Sums over users, per cut-off.
    private(set) var testUsers = 0
    private(set) var scoredUsers = 0
    private(set) var fallbackUsers = 0
    private(set) var usersWithDuplicates = 0
    private(set) var seenRecommended = 0
    private(set) var precisionSum: [Double]
    private(set) var recallSum: [Double]
    private(set) var apSum: [Double]
    private(set) var apAtKSum: [Double]
    private(set) var ndcgSum: [Double]
    private(set) var hitUsers: [Int]
    private(set) var diversitySum: [Double]
    private(set) var diversityUsers: [Int]

    /// - Parameters:
    ///   - ks: cut-offs (≥ 1; duplicates removed, sorted).
    ///   - catalogSize: the video index space, usually `dataset.videos.count`.
    ///   - eligibleVideos: coverage denominator (default: the whole catalog), e.g. the videos available anywhere.
    ///   - tags: tag vectors for diversity (nil: no diversity).
    public init(ks: [Int], catalogSize: Int, eligibleVideos: Int? = nil, tags: TagVectors? = nil) throws {
        let sorted = Array(Set(ks)).sorted()
        guard !sorted.isEmpty, sorted.first! >= 1 else { throw HomefeedError("metric cut-offs must be ≥ 1, got \(ks)") }
        guard catalogSize >= 0 else { throw HomefeedError("catalog size must be ≥ 0") }
        scorer = ListScorer(ks: sorted, tags: tags)
        self.catalogSize = catalogSize
        self.eligibleVideos = eligibleVideos ?? catalogSize
        truthMark = [UInt32](repeating: 0, count: catalogSize)
        listMark = truthMark
        bestRank = [Int32](repeating: .max, count: catalogSize)
        let z = [Double](repeating: 0, count: sorted.count)
        precisionSum = z; recallSum = z; apSum = z; apAtKSum = z; ndcgSum = z; diversitySum = z
        hitUsers = [Int](repeating: 0, count: sorted.count); diversityUsers = hitUsers
    }

    /// Adds one test user.
    /// - Parameters:
    ///   - list: the user's recommendations, best first (empty = the user has no list: counts 0 in nDCG and the
    ///     strict metrics, and is left out of the others).
    ///   - truth: the user's relevant test videos (duplicates ignored; an index outside the catalog counts as one
    ///     unreachable video per occurrence).
    ///   - unreachable: further relevant test videos outside the catalog (count in |T_u|, never hit).
    ///   - fallback: the list came from a fallback (popular lists) rather than the model.
    ///   - seen: videos the user saw in train, for the `seenInTrainRecommended` diagnostic.
    /// A user with an empty ground truth is still counted (with 0 everywhere); the splits never produce one.
    public mutating func add<L: Collection<Int32>, T: Collection<Int32>>(
        list: L, truth: T, unreachable: Int = 0, fallback: Bool = false, seen: ArraySlice<Int32> = []
    ) {
        // Copy into reused buffers (a memcpy for arrays and slices), so the per-entry work below runs on concrete
        // arrays rather than through the generic collection's witness table.
        let maxK = scorer.maxK
        var l = listBuffer, t = truthBuffer
        listBuffer = []; truthBuffer = []    // l and t are now the buffers' only owners: no copy on write
        l.removeAll(keepingCapacity: true); t.removeAll(keepingCapacity: true)
        if list.withContiguousStorageIfAvailable({ l.append(contentsOf: $0.prefix(maxK)) }) == nil {
            for v in list.prefix(maxK) { l.append(v) }
        }
        if truth.withContiguousStorageIfAvailable({ t.append(contentsOf: $0) }) == nil { t.append(contentsOf: truth) }
        add(list: l, truth: t, unreachable: unreachable, fallback: fallback, seen: seen)
        listBuffer = l; truthBuffer = t
    }

    private mutating func add(list: [Int32], truth: [Int32], unreachable: Int, fallback: Bool, seen: ArraySlice<Int32>) {
        nextStamp()
        let s = stamp
        let n = catalogSize
        var relevant = unreachable
        for v in truth {
            if v >= 0 && Int(v) < n {
                if truthMark[Int(v)] != s { truthMark[Int(v)] = s; relevant += 1 }
            } else {
                relevant += 1
            }
        }
        testUsers += 1
        guard !list.isEmpty else { return }
        scoredUsers += 1
        if fallback { fallbackUsers += 1 }
        if !seen.isEmpty {
            if seenMark.isEmpty { seenMark = [UInt32](repeating: 0, count: n) }
            for v in seen where v >= 0 && Int(v) < n { seenMark[Int(v)] = s }
        }
        // Diagnostics and coverage over the first max(k) entries (the list is already cut to max(k)).
        var duplicate = false, rank: Int32 = 0
        for v in list {
            rank += 1
            guard v >= 0 && Int(v) < n else { continue }
            let i = Int(v)
            if listMark[i] == s { duplicate = true } else { listMark[i] = s }
            if rank < bestRank[i] { bestRank[i] = rank }
            if !seen.isEmpty && seenMark[i] == s { seenRecommended += 1 }
        }
        if duplicate { usersWithDuplicates += 1 }
        truthMark.withUnsafeBufferPointer { mark in
            scorer.run(list) { v in v >= 0 && Int(v) < n && mark[Int(v)] == s }
        }
        for i in scorer.ks.indices {
            precisionSum[i] += scorer.precision(i)
            recallSum[i] += scorer.recall(i, relevant: relevant)
            apSum[i] += scorer.averagePrecision(i, relevant: relevant)
            apAtKSum[i] += scorer.averagePrecisionAtK(i, relevant: relevant)
            ndcgSum[i] += scorer.ndcg(i, relevant: relevant)
            if scorer.hits[i] > 0 { hitUsers[i] += 1 }
            if let d = scorer.diversity(i) { diversitySum[i] += d; diversityUsers[i] += 1 }
        }
    }

    /// Adds one user of a `TestSet` (its truth, unreachable count and train-seen videos).
    public mutating func add<L: Collection<Int32>>(_ user: TestUser, list: L, fallback: Bool = false) {
        add(list: list, truth: user.truth, unreachable: user.unreachable, fallback: fallback, seen: user.seen)
    }

    private mutating func nextStamp() {
        if stamp == .max {
            stamp = 0
            for i in truthMark.indices { truthMark[i] = 0; listMark[i] = 0 }
            for i in seenMark.indices { seenMark[i] = 0 }
        }
        stamp += 1
    }

    /// Distinct videos among the first k entries of every list added.
    func distinctVideos(k: Int) -> Int {
        var c = 0
        let kk = Int32(clamping: k)
        for r in bestRank where r <= kk { c += 1 }
        return c
    }

    /// The averaged metrics (see `EvalReport` for every field); `split` is copied into the report as is.
    public func report(label: String = "", split: SplitStats? = nil) -> EvalReport {
        func avg(_ x: Double, _ n: Int) -> Double { n > 0 ? x / Double(n) : 0 }
        var r = EvalReport(label: label)
        r.split = split
        r.testUsers = testUsers
        r.scoredUsers = scoredUsers
        r.fallbackUsers = fallbackUsers
        r.fallbackShare = avg(Double(fallbackUsers), scoredUsers)
        r.catalogSize = eligibleVideos
        r.usersWithDuplicateItems = usersWithDuplicates
        r.seenInTrainRecommended = seenRecommended
        r.metrics = ks.indices.map { i in
            let distinct = distinctVideos(k: ks[i])
            return EvalReport.AtK(
                k: ks[i],
                precision: avg(precisionSum[i], scoredUsers), recall: avg(recallSum[i], scoredUsers),
                map: avg(apSum[i], scoredUsers), mapAtK: avg(apAtKSum[i], scoredUsers),
                ndcg: avg(ndcgSum[i], testUsers), hitRate: avg(Double(hitUsers[i]), scoredUsers),
                precisionStrict: avg(precisionSum[i], testUsers), recallStrict: avg(recallSum[i], testUsers),
                mapStrict: avg(apSum[i], testUsers),
                diversity: diversityUsers[i] > 0 ? diversitySum[i] / Double(diversityUsers[i]) : nil,
                diversityUsers: diversityUsers[i],
                distinctVideos: distinct, coverage: avg(Double(distinct), eligibleVideos))
        }
        return r
    }
}

// MARK: - The report

/// Averaged offline metrics of one recommender on one test set, at several cut-offs. `Codable` (the `eval` command
/// writes it as JSON), with a fixed-width `table()` for the terminal.
public struct EvalReport: Codable, Sendable, Equatable {
    /// Metrics at one cut-off k. Averages are over scored users (users with a non-empty list) unless noted.
    public struct AtK: Codable, Sendable, Equatable {
        public var k: Int
        /// mean of hits / k (rec_eval `Precision@k`).
        public var precision: Double
        /// mean of hits / |T_u| (rec_eval `Recall@k`).
        public var recall: Double
        /// mean of Σ_j (j / r_j) / |T_u| (rec_eval `MAP`, the benchmark's MAP column).
        public var map: Double
        /// mean of Σ_j (j / r_j) / min(|T_u|, k) (rec_eval `MAP@k_spark`).
        public var mapAtK: Double
        /// mean over **all test users** of DCG / IDCG, binary gains, 1/ln(1 + rank) (rec_eval `nDCG@k`).
        public var ndcg: Double
        /// share of scored users with at least one hit.
        public var hitRate: Double
        /// precision, recall, MAP with all test users in the denominator (rec_eval `*_strict`).
        public var precisionStrict: Double
        public var recallStrict: Double
        public var mapStrict: Double
        /// mean over lists with ≥ 2 tagged videos of their mean pairwise tag cosine similarity (lower = more
        /// diverse); nil when no list qualifies or no tags were given.
        public var diversity: Double?
        /// lists that entered `diversity`.
        public var diversityUsers: Int
        /// distinct videos in the top k of all lists.
        public var distinctVideos: Int
        /// distinctVideos / the eligible catalog (`EvalReport.catalogSize`).
        public var coverage: Double

        public init(k: Int, precision: Double, recall: Double, map: Double, mapAtK: Double, ndcg: Double,
                    hitRate: Double, precisionStrict: Double, recallStrict: Double, mapStrict: Double,
                    diversity: Double?, diversityUsers: Int, distinctVideos: Int, coverage: Double) {
            self.k = k; self.precision = precision; self.recall = recall; self.map = map; self.mapAtK = mapAtK
            self.ndcg = ndcg; self.hitRate = hitRate; self.precisionStrict = precisionStrict
            self.recallStrict = recallStrict; self.mapStrict = mapStrict; self.diversity = diversity
            self.diversityUsers = diversityUsers; self.distinctVideos = distinctVideos; self.coverage = coverage
        }
    }

    /// Free text naming the model / split (shown above the table).
    public var label: String
    /// How the test set was made (nil when the caller did not say).
    public var split: SplitStats?
    /// Users added (every test user; rec_eval `n_test_users`).
    public var testUsers = 0
    /// Users with a non-empty list (rec_eval `n_scored_users`).
    public var scoredUsers = 0
    /// Scored users whose list came from a fallback, and their share of the scored users.
    public var fallbackUsers = 0
    public var fallbackShare = 0.0
    /// Coverage denominator: the eligible catalog.
    public var catalogSize = 0
    /// Lists with a video twice in their top max(k) (must be 0; rec_eval counts such hits twice).
    public var usersWithDuplicateItems = 0
    /// Top-max(k) entries the user had seen in train (0 for a recommender that removes seen videos).
    public var seenInTrainRecommended = 0
    /// One entry per cut-off, ascending k.
    public var metrics: [AtK] = []
    /// How far fresh videos reach (set by the caller that knows which videos are fresh).
    public var fresh: FreshReach?

    /// Fresh videos — published within the freshness window of the split's as-of time, which models trained on
    /// interactions barely know: how many distinct ones appear in some list (reach) and in some top k, and how many of
    /// the held-out relevant (user, fresh video) pairs the lists hit, in the top k and anywhere in the list.
    public struct FreshReach: Codable, Sendable, Equatable {
        public var k: Int
        public var videos: Int
        public var reached = 0
        public var reachedInTop = 0
        public var truthPairs = 0
        public var hits = 0
        public var hitsInList = 0
        public var reach: Double { videos > 0 ? Double(reached) / Double(videos) : 0 }
        public var recall: Double { truthPairs > 0 ? Double(hits) / Double(truthPairs) : 0 }
        public init(k: Int, videos: Int) { self.k = k; self.videos = videos }
    }

    public init(label: String = "") { self.label = label }

    /// The metrics at cut-off k, if computed.
    public func at(_ k: Int) -> AtK? { metrics.first { $0.k == k } }

    /// Pretty-printed JSON with sorted keys (`diversity` is omitted when nil).
    public func json() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(self)
    }

    /// A fixed-width table: one row per k, 4 decimals; a split line when `split` is set; the strict block only when
    /// some test user had no list. The three-user example of the tests (ILS = diversity, "-" when undefined):
    ///
    ///     three users
    ///     users: 3 test, 2 with a list (1 by fallback, 50.00%); coverage of 10 videos
    ///         k     P@k     R@k     MAP   MAP@k  nDCG@k    HR@k     ILS   cover
    ///         3  0.5000  0.7500  0.4583  0.5278  0.4449  1.0000       -  0.5000
    ///        10  0.2000  0.8750  0.5208  0.5208  0.4519  1.0000       -  0.8000
    ///     strict (all 3 test users in the denominator; 1 without a list):
    ///         k     P@k     R@k     MAP  nDCG@k
    ///         3  0.3333  0.5000  0.3056  0.4449
    ///        10  0.1333  0.5833  0.3472  0.4519
    public func table() -> String {
        var lines: [String] = []
        if !label.isEmpty { lines.append(label) }
        if let s = split {
            let how: String
            switch s.method {
            case "time": how = "time split, last \(Format.fixed((s.testFraction ?? 0) * 100, 1))% of each user's interactions"
            case "random": how = "random split, \(Format.fixed((s.testFraction ?? 0) * 100, 1))% of each user's interactions, seed \(s.seed ?? 0)"
            default: how = "given test files"
            }
            lines.append("split: \(how); \(s.trainInteractions) train / \(s.testInteractions) test interactions; "
                + "\(s.evaluatedUsers) evaluated users, \(s.coldUsers) cold"
                + (s.dropSeenInTrain ? "; seen-in-train videos dropped from the truth (\(s.truthSeenInTrain))"
                                     : "; \(s.truthSeenInTrain) truth videos seen in train"))
        }
        lines.append("users: \(testUsers) test, \(scoredUsers) with a list (\(fallbackUsers) by fallback, "
            + "\(Format.fixed(fallbackShare * 100, 2))%); coverage of \(catalogSize) videos")
        func num(_ v: Double?) -> String { pad(v.map { Format.fixed($0, 4) } ?? "-", 8) }
        lines.append(pad("k", 5) + ["P@k", "R@k", "MAP", "MAP@k", "nDCG@k", "HR@k", "ILS", "cover"].map { pad($0, 8) }.joined())
        for m in metrics {
            lines.append(pad("\(m.k)", 5) + [m.precision, m.recall, m.map, m.mapAtK, m.ndcg, m.hitRate].map(num).joined()
                + num(m.diversity) + num(m.coverage))
        }
        if scoredUsers < testUsers {
            lines.append("strict (all \(testUsers) test users in the denominator; \(testUsers - scoredUsers) without a list):")
            lines.append(pad("k", 5) + ["P@k", "R@k", "MAP", "nDCG@k"].map { pad($0, 8) }.joined())
            for m in metrics {
                lines.append(pad("\(m.k)", 5) + [m.precisionStrict, m.recallStrict, m.mapStrict, m.ndcg].map(num).joined())
            }
        }
        if let f = fresh {
            lines.append("fresh videos (\(f.videos)): \(f.reached) in some list (reach \(Format.fixed(f.reach, 4))), \(f.reachedInTop) in some top \(f.k); "
                + "held-out relevant pairs \(f.truthPairs): \(f.hits) hit in the top \(f.k) (recall \(Format.fixed(f.recall, 4))), \(f.hitsInList) in the list")
        }
        if usersWithDuplicateItems > 0 || seenInTrainRecommended > 0 {
            lines.append("warning: \(usersWithDuplicateItems) lists with duplicate videos, "
                + "\(seenInTrainRecommended) recommended videos already seen in train")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Right-aligns `s` in `width` characters (never truncates).
func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s
}
