import Foundation
import HomefeedCore
import HomefeedData
import HomefeedModels
import HomefeedStore

/// The popularity blend: how users without any model signal are ranked, and one of the ranking's features.
///
///     blend = (0.5·region + 0.3·language + 0.2·global popularity) × (1.2 if the video is in the user's language)
///
/// each popularity scaled to [0, 1] by its list's top.
enum PopularityBlend {
    @inline(__always)
    static func score(_ set: CandidateSet, _ c: Int, sameLanguage: Bool) -> Float {
        let s = 0.5 * set.score(c, .popularRegion) + 0.3 * set.score(c, .popularLanguage) + 0.2 * set.score(c, .popularGlobal)
        return sameLanguage ? s * 1.2 : s
    }
}

/// The learned ranker's inputs for one (user, candidate), in this order (the saved ranker records the names and
/// the refresh checks them). Model scores are z-scored over the user's candidates (their scale differs per user);
/// `src_*` is the candidate's normalized score from each source (0 when the source did not propose it);
/// `mf_ranking` is the score MF ranking gives (`Refresh.rankByMF`: the MF score with its tuned weights).
enum RankingFeatures {
    static let names = ["mf_z", "mf_known", "two_tower", "two_tower_z", "src_mf", "src_two_tower", "src_region",
                        "src_language", "src_global", "src_fresh", "prior", "age", "same_language", "blend", "item_item_z", "mf_ranking"]
    static let count = names.count
    /// Indices read by name elsewhere (the ranker's pool, the held-back comparison); pinned by a test.
    static let twoTower = 2, mfRanking = 15
}

/// The models of one refresh (or evaluation) and how the ranking stage uses them.
struct Scorers: Sendable {
    enum Mode: String, Sendable {
        /// The popularity blend alone.
        case popular
        /// MF score (+ its tuned popularity terms): `[rank] ranker = "mf"`, or no two-tower model.
        case mf
        /// The two-tower score alone (evaluation's "two-tower" row).
        case twoTower = "two_tower"
        /// The learned ranker over every feature.
        case learned
    }
    var mode: Mode
    var mf: MFSource?
    var twoTower: TwoTowerSource?
    var ranker: LinearRanker?
    /// Fresh uploads: published within `[rank] fresh_hours` of as-of, newest first, at most `fresh_candidates`.
    let fresh: [UInt32]
    /// Per dataset video: log(1 + engagements), log2(1 + hours since published), near-duplicate title key.
    let prior: [Float]
    let age: [Float]
    let duplicateKey: [UInt64]
    let caps: DiversityCaps
    let twoTowerK: Int
    /// Videos published at or after this time are fresh; `fresh_slots` of them go into the first `fresh_slot_depth`
    /// entries (two-tower and learned ranking).
    let freshSince: Int64
    let asOf: Int64
    let freshSlots: Int
    let freshSlotDepth: Int
    /// `[rank] ranker_pool`: how many of the best by each model the learned ranker re-scores (0 = all).
    let rankerPool: Int

    init(data: Dataset, asOf: Int64, config: HomefeedConfig, mf: MFSource?, twoTower: TwoTowerSource?,
         ranker: LinearRanker?, mode: Mode? = nil) {
        self.mf = mf; self.twoTower = twoTower
        self.ranker = ranker.flatMap { $0.mismatch(with: RankingFeatures.names) == nil ? $0 : nil }
        if let mode {   // explicit (eval's rows, the ranker's feature collection)
            self.mode = mode
        } else if self.ranker != nil && config.rank.ranker == "learned" && mf != nil && twoTower != nil {
            self.mode = .learned
        } else if mf != nil {
            self.mode = .mf
        } else {
            self.mode = twoTower != nil ? .twoTower : .popular
        }
        var engagements = [Float](repeating: 0, count: data.videos.count)
        for i in 0..<data.interactions.count where data.interactions.video[i] >= 0 {
            switch data.interactions.event[i] {
            case .watch, .like, .share, .comment: engagements[Int(data.interactions.video[i])] += 1
            default: break
            }
        }
        prior = engagements.map { log1p($0) }
        let videos = data.videos
        age = videos.publishedAt.map { (p: Int64) -> Float in
            guard p != Int64.min else { return 20 }
            let hours = max(0, Double(asOf - p)) / 3600
            return Float(log2(1 + hours))
        }
        duplicateKey = NearDuplicate.keys(videos)
        let since = asOf - Int64(config.rank.freshHours * 3600)
        freshSince = since
        self.asOf = asOf
        freshSlots = config.rank.freshSlots
        freshSlotDepth = config.rank.freshSlotDepth
        rankerPool = config.rank.rankerPool
        let published = videos.publishedAt
        var recent: [Int] = (0..<videos.count).filter { (v: Int) -> Bool in published[v] >= since && published[v] <= asOf }
        recent.sort { (a: Int, b: Int) -> Bool in published[a] != published[b] ? published[a] > published[b] : a < b }
        fresh = recent.prefix(config.rank.freshCandidates).map { UInt32($0) }
        caps = DiversityCaps(maxPerChannel: config.rank.maxPerChannel, maxChannelRun: config.rank.maxChannelRun,
                             dropNearDuplicates: config.rank.dropNearDuplicates)
        twoTowerK = config.rank.twoTowerCandidates > 0 ? config.rank.twoTowerCandidates : config.refresh.candidatesPerSource
    }

    /// Whether lists are ranked with the two-tower model (which can embed users without history and segments).
    var usesTwoTower: Bool { twoTower != nil && (mode == .learned || mode == .twoTower) }

    /// Whether video v is a fresh upload (published within `[rank] fresh_hours` of as-of, not after it).
    @inline(__always) func isFresh(_ v: Int, _ published: [Int64]) -> Bool { published[v] >= freshSince && published[v] <= asOf }

    /// The saved model the lists come from ("" without models).
    var modelName: String { mf?.name ?? twoTower?.name ?? "" }

    /// Whether a user with (or without) MF signal gets a model-ranked list (else the popularity blend).
    func personalizes(mfSignal: Bool) -> Bool {
        switch mode {
        case .popular: false
        case .mf: mfSignal
        case .twoTower, .learned: true
        }
    }
}

/// Scratch of one ranking worker, reused for every user.
struct RankScratch {
    let set: CandidateSet
    var top: TopK
    var features: [Float] = []
    var ranked: [RankedCandidate] = []
    var diversity = DiversityScratch()
    /// The user's item-to-item score of every head video.
    var headScores: [Float] = []
    /// The learned ranker's pool (`Refresh.rankerPool`) and its selection scratch.
    var pool: [Bool] = []
    var select: [Float] = []
}

extension Refresh {
    /// Candidates and ranking for every user, in blocks: MF fold-in and retrieval, two-tower embedding and retrieval
    /// for the block, then each user's candidates ranked in parallel, then the lists handed to `sink` in order
    /// (user, list, ranked by a model). Returns (users with a list, users ranked by a model) and the entries written.
    static func rankUsers(_ users: [(hash: UInt64, user: Int32)], data: Dataset, history: UserHistory,
                          popularity: Popularity, scorers: Scorers, config: HomefeedConfig, threads: Int, quiet: Bool,
                          delay: Double = 0,
                          timing: UnsafeMutablePointer<[RunMetadata.Stage]>? = nil,
                          sink: (Int32, RecommendationList, Bool) throws -> Void) throws -> (users: (personalized: Int, mf: Int), entries: Int) {
        let progress = Progress("rank users", total: users.count, unit: "users", quiet: quiet)
        let listSize = config.refresh.listSize
        let scratch = SlotBuffer((0..<threads).map { _ in makeScratch(data, scorers: scorers, config: config) })
        var written = 0, byModel = 0, entries = 0
        var mfTiming = MFTiming(), ttTiming = (embed: 0.0, retrieval: 0.0), rankSeconds = 0.0
        for start in stride(from: 0, to: users.count, by: config.refresh.blockUsers) {
            let end = min(users.count, start + config.refresh.blockUsers)
            let ids = users[start..<end].map(\.user)
            let block = retrieve(ids[...], data: data, history: history, scorers: scorers, config: config, threads: threads,
                                 mfTiming: &mfTiming, ttTiming: &ttTiming)
            let rankStart = TimeFormat.monotonic()
            let results = SlotBuffer<RecommendationList?>(repeating: nil, count: end - start)
            let personalized = SlotBuffer<Bool>(repeating: false, count: end - start)
            parallelFor(end - start, threads: threads, chunk: 32) { worker, range in
                scratch.withSlot(worker) { s in
                    for k in range {
                        let c = block.candidates(k, user: ids[k], data: data)
                        personalized[k] = scorers.personalizes(mfSignal: c.mf != nil)
                        results[k] = rankOne(c, data: data, history: history, popularity: popularity, scorers: scorers,
                                             perSource: config.refresh.candidatesPerSource, listSize: listSize, scratch: &s)
                    }
                }
            }
            for k in 0..<(end - start) {
                guard let list = results[k], list.count > 0 else { continue }
                try sink(ids[k], list, personalized[k])
                written += 1; entries += list.count
                if personalized[k] { byModel += 1 }
            }
            rankSeconds += TimeFormat.monotonic() - rankStart
            progress.add(end - start)
            if delay > 0 { usleep(UInt32(delay * 1e6)) }
        }
        progress.finish()
        if let timing {
            if scorers.mf != nil { timing.pointee += [.init(name: "  mf fold-in", seconds: mfTiming.foldIn), .init(name: "  mf retrieval", seconds: mfTiming.retrieval)] }
            if scorers.twoTower != nil { timing.pointee += [.init(name: "  two-tower users", seconds: ttTiming.embed), .init(name: "  two-tower retrieval", seconds: ttTiming.retrieval)] }
            timing.pointee.append(.init(name: "  candidates + ranking + write", seconds: rankSeconds))
        }
        return ((written, byModel), entries)
    }

    static func makeScratch(_ data: Dataset, scorers: Scorers, config: HomefeedConfig) -> RankScratch {
        let perSource = config.refresh.candidatesPerSource
        let capacity = 4 * perSource + scorers.twoTowerK + scorers.fresh.count   // MF, 3 popular, two-tower, fresh
        let pool = scorers.caps.isActive ? 3 * config.refresh.listSize : config.refresh.listSize
        return RankScratch(set: CandidateSet(videoCount: data.videos.count, capacity: capacity), top: TopK(k: pool))
    }

    /// The models' part of a block of users: MF factors and top K (users with MF signal), two-tower embeddings and
    /// top K (every user: the user tower needs only features).
    struct BlockRetrieval {
        var mf: MFBlock?
        var twoTower: (embeddings: Matrix, top: TopKResults)?
        let scorers: Scorers

        func candidates(_ k: Int, user: Int32, data: Dataset) -> UserCandidates {
            var c = UserCandidates(user: Int(user), data: data)
            if let mf = scorers.mf, let r = self.mf, r.hasSignal[k] { c.mf = (mf, r, k) }
            if let tt = scorers.twoTower, let r = twoTower { c.twoTower = (tt, r.embeddings, k, r.top) }
            return c
        }
    }

    static func retrieve(_ ids: ArraySlice<Int32>, data: Dataset, history: UserHistory, scorers: Scorers, config: HomefeedConfig,
                         threads: Int, mfTiming: inout MFTiming, ttTiming: inout (embed: Double, retrieval: Double)) -> BlockRetrieval {
        var b = BlockRetrieval(scorers: scorers)
        let mfUsed = scorers.mode == .mf || scorers.mode == .learned
        let ttUsed = scorers.mode == .twoTower || scorers.mode == .learned
        if mfUsed, let mf = scorers.mf {
            b.mf = mf.block(ids, data: data, history: history, k: config.refresh.candidatesPerSource, threads: threads, timing: &mfTiming)
        }
        if ttUsed, let tt = scorers.twoTower {
            b.twoTower = tt.block(ids, data: data, history: history, k: scorers.twoTowerK, threads: threads, timing: &ttTiming)
        }
        return b
    }

    /// One user's inputs to ranking: the MF source with the block's factors and retrieval results (row `row`), if the
    /// user has MF signal; the two-tower source with the block's user embeddings and retrieval results.
    struct UserCandidates {
        /// The dataset user, or −1 for someone known by attributes alone (a cold-start segment).
        var user: Int
        var country: CountryCode
        var language: Int32
        var mf: (source: MFSource, block: MFBlock, row: Int)?
        var twoTower: (source: TwoTowerSource, embeddings: Matrix, row: Int, top: TopKResults)?

        init(user: Int, data: Dataset) {
            self.user = user; country = data.users.country[user]; language = data.users.language[user]
        }
        init(country: CountryCode, language: Int32) { user = -1; self.country = country; self.language = language }
        var seen: (UserHistory) -> ArraySlice<Int32> { { user >= 0 ? $0.seen(of: user) : [] } }
    }

    /// One user's candidates, merged into `set`: MF and two-tower retrieval (already filtered: seen, availability),
    /// regional / language / global popular and fresh uploads (filtered here).
    static func gather(_ c: UserCandidates, data: Dataset, history: UserHistory, popularity: Popularity, scorers: Scorers,
                       perSource: Int, set: CandidateSet) {
        set.reset()
        for v in c.seen(history) { set.exclude(Int(v)) }
        let country = c.country
        let language = data.languages[c.language]
        let videos = data.videos
        // 1. MF candidates, scaled by the best score.
        if let mf = c.mf {
            let top = mf.block.top
            let k = top.k, n = Int(top.counts[mf.row])
            let best = n > 0 ? top.scores[mf.row * k] : 0
            for j in 0..<n {
                let v = mf.source.videoOfRow[Int(top.ids[mf.row * k + j])]
                set.add(UInt32(v), source: .mf, score: best > 0 ? max(0, top.scores[mf.row * k + j] / best) : 0)
            }
        }
        // 2. Two-tower candidates, scaled by rank (cosines have no natural top).
        if let tt = c.twoTower {
            let k = tt.top.k, n = Int(tt.top.counts[tt.row])
            for j in 0..<n {
                set.add(UInt32(tt.top.ids[tt.row * k + j]), source: .twoTower, score: 1 - Float(j) / Float(n))
            }
        }
        // 3. Popular candidates.
        func gather(_ r: Popularity.Ranked?, _ source: CandidateSource) {
            guard let r, let best = r.scores.first, best > 0 else { return }
            r.videos.withUnsafeBufferPointer { vs in
                r.scores.withUnsafeBufferPointer { ss in
                    for k in 0..<min(perSource, vs.count) {
                        let v = vs[k]
                        if set.isExcluded(Int(v)) || !videos.isAvailable(Int(v), in: country) { continue }
                        set.add(v, source: source, score: max(0, ss[k] / best))
                    }
                }
            }
        }
        gather(popularity.regions[country], .popularRegion)
        gather(popularity.languages[language], .popularLanguage)
        gather(popularity.global, .popularGlobal)
        // 4. Fresh uploads, scaled by recency rank.
        let n = scorers.fresh.count
        for (j, v) in scorers.fresh.enumerated() where !set.isExcluded(Int(v)) && videos.isAvailable(Int(v), in: country) {
            set.add(v, source: .fresh, score: 1 - Float(j) / Float(n))
        }
    }

    /// One user's list: gather candidates, score them (per `scorers.mode`), re-rank the best for diversity, keep
    /// the top `listSize`.
    static func rankOne(_ c: UserCandidates, data: Dataset, history: UserHistory, popularity: Popularity, scorers: Scorers,
                        perSource: Int, listSize: Int, scratch s: inout RankScratch) -> RecommendationList {
        let set = s.set
        gather(c, data: data, history: history, popularity: popularity, scorers: scorers, perSource: perSource, set: set)
        s.top.reset()
        let published = data.videos.publishedAt
        let userLanguage = c.language
        data.videos.language.withUnsafeBufferPointer { videoLanguage in
            func blend(_ i: Int) -> Float {
                PopularityBlend.score(set, i, sameLanguage: videoLanguage[Int(set.video(i))] == userLanguage)
            }
            switch scorers.mode {
            case .mf where c.mf != nil:
                rankByMF(c.mf!, set: set, prior: scorers.prior, top: &s.top, headScores: &s.headScores, blend: blend)
            case .twoTower where c.twoTower != nil:
                let tt = c.twoTower!
                tt.source.videos.values.withUnsafeBufferPointer { y in
                    tt.embeddings.values.withUnsafeBufferPointer { x in
                        let d = tt.source.dim, eu = x.baseAddress! + tt.row * d
                        for i in 0..<set.count {
                            let score = Kernels.dot(eu, y.baseAddress! + Int(set.video(i)) * d, d)
                            s.top.offer(score: score, video: set.video(i), candidate: Int32(i))
                        }
                    }
                }
            case .learned where c.twoTower != nil && scorers.ranker != nil:
                features(c, data: data, scorers: scorers, set: set, into: &s.features, headScores: &s.headScores)
                let ranker = scorers.ranker!, dim = RankingFeatures.count
                rankerPool(s.features, count: set.count, pool: scorers.rankerPool, into: &s.pool, scratch: &s.select)
                s.features.withUnsafeBufferPointer { f in
                    for i in 0..<set.count {
                        let score = ranker.score(f.baseAddress! + i * dim) - (s.pool[i] ? 0 : 1e4)
                        s.top.offer(score: score, video: set.video(i), candidate: Int32(i))
                    }
                }
            default:
                for i in 0..<set.count { s.top.offer(score: blend(i), video: set.video(i), candidate: Int32(i)) }
            }
        }
        // Diversity re-rank of the best (pool = 3 × list size when a cap is active), then the list.
        s.ranked.removeAll(keepingCapacity: true)
        for item in s.top.sorted() { s.ranked.append((item.video, item.score, set.firstSource(Int(item.candidate)))) }
        if scorers.freshSlots > 0 && (scorers.mode == .learned || scorers.mode == .twoTower) {
            let isFresh = { (v: UInt32) in scorers.isFresh(Int(v), published) }
            reserveFreshSlots(&s.ranked, fresh: s.ranked.filter { isFresh($0.video) }, isFresh: isFresh,
                              slots: scorers.freshSlots, depth: scorers.freshSlotDepth)
        }
        let channels = data.videos.channel, keys = scorers.duplicateKey
        let kept = scorers.caps.isActive
            ? diversify(s.ranked, channel: { channels[Int($0)] }, duplicateKey: { keys[Int($0)] }, caps: scorers.caps,
                        listSize: listSize, scratch: &s.diversity)
            : Array(s.ranked.prefix(listSize))
        var list = RecommendationList()
        list.country = c.country
        list.language = data.languages[c.language]
        if c.user >= 0 { list.seenFilter = SeenFilter.build(history.seen(of: c.user)) }
        for e in kept { list.videos.append(e.video); list.scores.append(e.score); list.sources.append(e.source) }
        return list
    }

    /// The candidates the learned ranker re-scores: the best `pool` by the MF ranking (feature `mf_ranking`) and the
    /// best `pool` by the two-tower score — those that compete for the top of the list. Fitting and scoring the
    /// ranker on them keeps its listwise loss on the order that decides the first entries, not on telling apart
    /// hundreds of candidates no list shows. Ties at the cut are all in; every candidate when `pool` is 0 or ≥ n.
    static func rankerPool(_ features: [Float], count n: Int, pool: Int, into mask: inout [Bool], scratch: inout [Float]) {
        mask.removeAll(keepingCapacity: true)
        guard pool > 0 && pool < n else { mask.append(contentsOf: repeatElement(true, count: n)); return }
        mask.append(contentsOf: repeatElement(false, count: n))
        let dim = RankingFeatures.count
        for feature in [RankingFeatures.mfRanking, RankingFeatures.twoTower] {
            scratch.removeAll(keepingCapacity: true)
            for i in 0..<n { scratch.append(features[i * dim + feature]) }
            let cut = kthLargest(&scratch, pool)
            for i in 0..<n where features[i * dim + feature] >= cut { mask[i] = true }
        }
    }

    /// The k-th largest value of `v` (1-based; v is reordered): quickselect, average O(n).
    static func kthLargest(_ v: inout [Float], _ k: Int) -> Float {
        precondition(k >= 1 && k <= v.count, "kthLargest: k = \(k) of \(v.count)")
        var lo = 0, hi = v.count - 1, target = k - 1
        while lo < hi {
            let pivot = v[(lo + hi) / 2]
            var i = lo, j = hi
            while i <= j {
                while v[i] > pivot { i += 1 }
                while v[j] < pivot { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { break }
        }
        return v[target]
    }

    /// Exploration for fresh uploads, on the best-first pool (3 × list size) before the diversity re-rank (whose caps
    /// still apply): when its first `fresh_slot_depth` entries hold fewer than `fresh_slots` fresh videos, the
    /// best-scored fresh candidates of the pool (`fresh`) move to the end of that window, pushing the entries there
    /// down by one. Only candidates the model already ranks in the pool are promoted, so a fresh video the user is
    /// unlikely to want is not forced on everyone.
    static func reserveFreshSlots(_ pool: inout [RankedCandidate], fresh: [RankedCandidate], isFresh: (UInt32) -> Bool,
                                  slots: Int, depth window: Int) {
        let depth = min(window, pool.count)
        var missing = slots - pool.prefix(depth).reduce(0) { $0 + (isFresh($1.video) ? 1 : 0) }
        guard missing > 0, depth > 0 else { return }
        let inWindow = Set(pool.prefix(depth).map(\.video))
        var promoted: [RankedCandidate] = []
        for e in fresh.sorted(by: { $0.score != $1.score ? $0.score > $1.score : $0.video < $1.video })
            where missing > 0 && !inWindow.contains(e.video) {
            promoted.append(e); missing -= 1
        }
        guard !promoted.isEmpty else { return }
        let moved = Set(promoted.map(\.video))
        pool.removeAll { moved.contains($0.video) }
        pool.insert(contentsOf: promoted, at: max(0, min(depth, pool.count) - promoted.count))
    }

    /// MF ranking: x_u·y_v, or with ranking weights (a, b, c) ≠ 0
    ///     z(x_u·y_v) + a · z(log(1 + engagements of v)) + b · z(popularity blend) + c · z(item-item score of v)
    /// (z-scores over the user's candidates the model knows; the item-item score is 0 outside the model's head); a
    /// candidate the model does not know (a video newer than the model) ranks below every known one, in
    /// popularity-blend order.
    static func rankByMF(_ mf: (source: MFSource, block: MFBlock, row: Int), set: CandidateSet,
                         prior: [Float], top: inout TopK, headScores: inout [Float], blend: (Int) -> Float) {
        let a = mf.source.popularityWeight, b = mf.source.trendingWeight, c = mf.source.itemItemWeight
        if c != 0 { mf.source.itemItemScores(mf.block, row: mf.row, into: &headScores) }
        let head = headScores
        mf.source.withFactors { y, f, rowOfVideo in
            mf.block.factors.values.withUnsafeBufferPointer { x in
                let xu = x.baseAddress! + mf.row * f
                var lowest = Float.greatestFiniteMagnitude
                if a == 0 && b == 0 && c == 0 {
                    for i in 0..<set.count {
                        let r = Int(rowOfVideo[Int(set.video(i))])
                        guard r >= 0 else { continue }
                        let s = Kernels.dot(xu, y + r * f, f)
                        lowest = min(lowest, s)
                        top.offer(score: s, video: set.video(i), candidate: Int32(i))
                    }
                } else {
                    var moments = (Moments(), Moments(), Moments(), Moments())   // MF score, prior, blend, item-item
                    var features = [Float](repeating: 0, count: 4 * set.count)
                    let position = mf.source.headPosition
                    for i in 0..<set.count {
                        let v = Int(set.video(i))
                        let r = Int(rowOfVideo[v])
                        guard r >= 0 else { features[4 * i] = .nan; continue }
                        let h = c != 0 ? Int(position[r]) : -1
                        let (s, p, q, w) = (Kernels.dot(xu, y + r * f, f), prior[v], blend(i), h >= 0 ? head[h] : 0)
                        features[4 * i] = s; features[4 * i + 1] = p; features[4 * i + 2] = q; features[4 * i + 3] = w
                        moments.0.add(s); moments.1.add(p); moments.2.add(q); moments.3.add(w)
                    }
                    let z0 = moments.0.standardizer(), z1 = moments.1.standardizer(), z2 = moments.2.standardizer()
                    let z3 = moments.3.standardizer()
                    for i in 0..<set.count where !features[4 * i].isNaN {
                        let s = mfRankingScore(z0(features[4 * i]), z1(features[4 * i + 1]), z2(features[4 * i + 2]),
                                               z3(features[4 * i + 3]), weights: (a, b, c))
                        lowest = min(lowest, s)
                        top.offer(score: s, video: set.video(i), candidate: Int32(i))
                    }
                }
                for i in 0..<set.count where rowOfVideo[Int(set.video(i))] < 0 {
                    top.offer(score: unknownVideoScore(lowest: lowest, blend: blend(i)), video: set.video(i), candidate: Int32(i))
                }
            }
        }
    }

    /// The MF ranking's score of a candidate the model knows, from its z-scored terms (MF score, prior, popularity
    /// blend, item-item score) and the tuned weights (popularity, trending, item-item).
    @inline(__always)
    static func mfRankingScore(_ zmf: Float, _ zprior: Float, _ zblend: Float, _ zItemItem: Float,
                               weights w: (Float, Float, Float)) -> Float {
        zmf + w.0 * zprior + w.1 * zblend + w.2 * zItemItem
    }

    /// A candidate the MF model does not know (a video newer than the model) ranks below every known one (`lowest`:
    /// the lowest known score, .greatestFiniteMagnitude when none), in popularity-blend order.
    @inline(__always)
    static func unknownVideoScore(lowest: Float, blend: Float) -> Float {
        (lowest == .greatestFiniteMagnitude ? 0 : lowest) - 2 + blend / 2
    }

    /// The ranking features (RankingFeatures.names) of every candidate in `set`, row-major into `out`.
    static func features(_ c: UserCandidates, data: Dataset, scorers: Scorers, set: CandidateSet, into out: inout [Float],
                         headScores: inout [Float]) {
        let dim = RankingFeatures.count, n = set.count
        if out.count < n * dim { out = [Float](repeating: 0, count: n * dim) }
        let userLanguage = c.language
        var mfMoments = Moments(), ttMoments = Moments(), iiMoments = Moments(), priorMoments = Moments(), blendMoments = Moments()
        if let mf = c.mf { mf.source.itemItemScores(mf.block, row: mf.row, into: &headScores) } else { headScores.removeAll() }
        let head = headScores, position = c.mf?.source.headPosition ?? []
        // Arrays and raw pointers taken once: this runs for every candidate of every user.
        let mfRows = c.mf?.source.rowOfVideo ?? [], mfX = c.mf?.block.factors.values ?? [], mfY = c.mf?.source.model.videos.values ?? []
        let ttX = c.twoTower?.embeddings.values ?? [], ttY = c.twoTower?.source.videos.values ?? []
        let fdim = c.mf?.source.factors ?? 0, d = c.twoTower?.source.dim ?? 0
        let xu = (c.mf?.row ?? 0) * fdim, eu = (c.twoTower?.row ?? 0) * d
        let videoLanguage = data.videos.language
        // 1. Raw features; model scores collected for their z-scores.
        out.withUnsafeMutableBufferPointer { o in
            mfRows.withUnsafeBufferPointer { rowOfVideo in
            mfX.withUnsafeBufferPointer { x in
            mfY.withUnsafeBufferPointer { y in
            ttX.withUnsafeBufferPointer { ex in
            ttY.withUnsafeBufferPointer { ey in
                for i in 0..<n {
                    let f = o.baseAddress! + i * dim
                    let v = Int(set.video(i))
                    f[0] = 0; f[1] = 0; f[2] = 0; f[14] = 0
                    if fdim > 0, rowOfVideo[v] >= 0 {
                        let r = Int(rowOfVideo[v])
                        let s = Kernels.dot(x.baseAddress! + xu, y.baseAddress! + r * fdim, fdim)
                        f[0] = s; f[1] = 1
                        mfMoments.add(s)
                        if !head.isEmpty { let h = Int(position[r]); f[14] = h >= 0 ? head[h] : 0; iiMoments.add(f[14]) }
                    }
                    if d > 0 {
                        let s = Kernels.dot(ex.baseAddress! + eu, ey.baseAddress! + v * d, d)
                        f[2] = s
                        ttMoments.add(s)
                    }
                    f[4] = set.score(i, .mf); f[5] = set.score(i, .twoTower); f[6] = set.score(i, .popularRegion)
                    f[7] = set.score(i, .popularLanguage); f[8] = set.score(i, .popularGlobal); f[9] = set.score(i, .fresh)
                    f[10] = scorers.prior[v]; f[11] = scorers.age[v]
                    let same = videoLanguage[v] == userLanguage
                    f[12] = same ? 1 : 0
                    f[13] = PopularityBlend.score(set, i, sameLanguage: same)
                    if f[1] > 0 { priorMoments.add(f[10]); blendMoments.add(f[13]) }
                }
            } } } } }
            // 2. z-scores of the model scores over this user's candidates.
            let zmf = mfMoments.standardizer(), ztt = ttMoments.standardizer(), zii = iiMoments.standardizer()
            let zprior = priorMoments.standardizer(), zblend = blendMoments.standardizer()
            let a = c.mf?.source.popularityWeight ?? 0, b = c.mf?.source.trendingWeight ?? 0, w = c.mf?.source.itemItemWeight ?? 0
            var lowest = Float.greatestFiniteMagnitude
            for i in 0..<n {
                let f = o.baseAddress! + i * dim
                f[0] = f[1] > 0 ? zmf(f[0]) : 0
                f[3] = ztt(f[2])
                f[14] = f[1] > 0 && !head.isEmpty ? zii(f[14]) : 0
                // 3. The MF ranking's score (as rankByMF: unknown videos below every known one, in blend order).
                if f[1] > 0 {
                    f[15] = mfRankingScore(f[0], zprior(f[10]), zblend(f[13]), f[14], weights: (a, b, w))
                    lowest = min(lowest, f[15])
                }
            }
            for i in 0..<n where o[i * dim + 1] == 0 { o[i * dim + 15] = unknownVideoScore(lowest: lowest, blend: o[i * dim + 13]) }
        }
    }
}

/// Running mean and variance of one ranking feature over a user's candidates, for z-scores.
struct Moments {
    var n = 0.0, sum = 0.0, sq = 0.0
    mutating func add(_ x: Float) { n += 1; sum += Double(x); sq += Double(x) * Double(x) }
    /// x ↦ (x − mean) / sd; a constant feature maps to 0.
    func standardizer() -> (Float) -> Float {
        let mean = sum / max(n, 1), sd = max(0, sq / max(n, 1) - mean * mean).squareRoot()
        let m = Float(mean), scale = sd > 1e-9 ? Float(1 / sd) : 0
        return { ($0 - m) * scale }
    }
}
