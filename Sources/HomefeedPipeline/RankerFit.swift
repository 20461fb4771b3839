import Foundation
import HomefeedCore
import HomefeedData
import HomefeedEval
import HomefeedModels
import HomefeedStore

/// How the learned ranker was fitted, recorded with the model.
public struct RankerFitInfo: Codable, Sendable, Equatable {
    /// Users whose held-out interactions labelled the candidates, and candidates (rows) / positives among them.
    public var users = 0
    public var candidates = 0
    public var positives = 0
    /// nDCG@10 within the candidates of held-back users (a fifth of them, not fitted on): the ranker, and each
    /// model's score alone, so the gain of combining them is on record.
    public var ndcgRanker = 0.0
    public var ndcgMF = 0.0
    public var ndcgTwoTower = 0.0
    public var weights: [String: Double] = [:]
    /// Share of the interactions held out to label the candidates, and which ones (`[rank] ranker_split`: "random"
    /// or "time"; nil in models fitted before the option, which held out at random).
    public var heldOutShare = 0.0
    public var split: String?
    /// What ranks: "learned" (the fitted combination), or "mf_ranking" / "two_tower" when one model's ranking alone
    /// is not clearly beaten on the held-back users ("mf_z" in rankers fitted before the item-item model).
    public var chosen = "learned"
}

/// Fits the ranking stage's `LinearRanker`: hold out `[rank] ranker_validation_fraction` of each user's
/// interactions (a seeded random share, or the newest with `ranker_split = "time"`), train MF and the two-tower
/// model on the rest, gather every sampled user's candidates exactly as the refresh does, label a candidate 1 when
/// the user engaged with it in the held-out part, and fit the listwise ranker on those groups.
enum RankerFit {
    /// The fitted ranker, and — when the held-out part is a negligible share of the data (≤ 2 %: a large dataset,
    /// where only `ranker_users` users hold interactions out) — the fold's two-tower model, which then serves as
    /// the final one (training it twice would double the daily train for no measurable gain).
    struct Result {
        var ranker: LinearRanker
        var info: RankerFitInfo
        var twoTower: (model: TwoTowerModel, info: TwoTowerInfo)?
    }

    static func fit(_ data: Dataset, history fullHistory: UserHistory, config: HomefeedConfig, quiet: Bool) throws -> Result? {
        let seed = UInt64(truncatingIfNeeded: config.mf.seed) &+ 7
        // 1. Split and fold models. Only about ranker_users users hold interactions out.
        let options = TestSetOptions(watchFraction: config.data.relevanceWatchFraction, dropSeenInTrain: true)
        let withHistory = (0..<data.users.count).reduce(0) { $0 + (fullHistory.hasHistory($1) ? 1 : 0) }
        let userShare = min(1, 1.2 * Double(config.rank.rankerUsers) / Double(max(1, withHistory)))
        let fraction = config.rank.rankerValidationFraction
        let split = config.rank.rankerSplit == "time"
            ? try Holdout.timeSplit(data, testFraction: fraction, seed: seed, heldOutUsers: userShare, options: options)
            : try Holdout.randomSplit(data, testFraction: fraction, seed: seed, heldOutUsers: userShare, options: options)
        let train = split.train
        guard !split.test.users.isEmpty else { return nil }
        let heldShare = Double(split.test.stats.testInteractions) / Double(max(1, data.interactions.count))
        let history = UserHistory(train)
        let asOf = train.newestInteraction ?? 0
        let threads = effectiveThreads(config.mf.threads)
        var c = config
        c.mf.tune = "off"
        let mfModel = try Train.fitMF(train, history: history, config: c, asOf: asOf, tune: "off", previous: nil, quiet: true)
        let (ttModel, ttInfo) = TwoTowerFit.fit(train, history: history, asOf: asOf, config: c, quiet: quiet)
        let mf = MFSource(model: mfModel, data: train, config: c, threads: threads)
        let tt = TwoTowerSource(model: ttModel, info: ttInfo, name: "", data: train, history: history, asOf: asOf, config: c, threads: threads)
        let popularity = Popularity(train, asOf: asOf, config: c, length: max(c.refresh.fallbackListSize, c.refresh.candidatesPerSource))
        let scorers = Scorers(data: train, asOf: asOf, config: c, mf: mf, twoTower: tt, ranker: nil, mode: .learned)
        // 2. Candidates and features of up to ranker_users users (evenly spread), labelled by the held-out truth.
        let all = split.test.users
        let step = max(1, all.count / max(1, config.rank.rankerUsers))
        let picked = stride(from: 0, to: all.count, by: step).prefix(config.rank.rankerUsers).map { all[$0] }
        let examples = collect(picked, train: train, history: history, popularity: popularity, scorers: scorers, config: c,
                               threads: threads, quiet: quiet)
        guard examples.groups > 0 else { return nil }
        // 3. Fit on four fifths of the groups, report nDCG@10 on the rest; then refit on all of them.
        let (fitPart, heldPart) = examples.split(every: 5)
        let (probe, _) = LinearRanker.fit(fitPart.examples, names: RankingFeatures.names, config: RankerConfig())
        var info = RankerFitInfo()
        info.users = examples.groups; info.candidates = examples.rows; info.positives = examples.positives
        info.ndcgRanker = probe.meanNDCG(heldPart.examples, k: 10)
        info.ndcgMF = single(RankingFeatures.mfRanking).meanNDCG(heldPart.examples, k: 10)
        info.ndcgTwoTower = single(RankingFeatures.twoTower).meanNDCG(heldPart.examples, k: 10)
        // 4. Model selection on the held-back users: the fitted combination only if it ranks them clearly better
        //    than the better model's ranking alone — its mean per-user nDCG@10 gain larger than the gain's
        //    standard error (a paired comparison: a difference within the noise of a few hundred users is not
        //    a gain) — else that ranking alone (a ranker is only worth what it adds).
        let mfBest = info.ndcgMF >= info.ndcgTwoTower
        let bestSingle = single(mfBest ? RankingFeatures.mfRanking : RankingFeatures.twoTower)
        let gain = PairedGain(probe.groupNDCG(heldPart.examples, k: 10), bestSingle.groupNDCG(heldPart.examples, k: 10))
        var ranker: LinearRanker
        if gain.mean > gain.standardError {
            ranker = LinearRanker.fit(examples.examples, names: RankingFeatures.names, config: RankerConfig()).0
            info.chosen = "learned"
        } else {
            ranker = bestSingle
            info.chosen = mfBest ? "mf_ranking" : "two_tower"
        }
        for (n, w) in zip(ranker.names, ranker.weights) { info.weights[n] = Double(w) }
        info.heldOutShare = heldShare
        info.split = config.rank.rankerSplit
        if !quiet {
            Log.info("ranker (\(info.split ?? "random") fold): \(info.users) users, \(info.candidates) candidates, \(info.positives) positives; held-back nDCG@10 ranker \(Format.fixed(info.ndcgRanker, 4)), MF ranking \(Format.fixed(info.ndcgMF, 4)), two-tower alone \(Format.fixed(info.ndcgTwoTower, 4)): ranking by \(info.chosen)")
        }
        return Result(ranker: ranker, info: info, twoTower: heldShare <= 0.02 ? (ttModel, ttInfo) : nil)
    }

    /// Mean and standard error of the per-user differences a − b.
    struct PairedGain {
        var mean = 0.0, standardError = 0.0
        init(_ a: [Double], _ b: [Double]) {
            precondition(a.count == b.count, "PairedGain: \(a.count) vs \(b.count) users")
            let n = Double(a.count)
            guard n > 1 else { return }
            let d = zip(a, b).map { $0 - $1 }
            mean = d.reduce(0, +) / n
            let variance = d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
            standardError = (variance / n).squareRoot()
        }
    }

    /// A ranker that orders by feature `k` alone (for the report, and as the choice when it wins on held-back users).
    static func single(_ k: Int) -> LinearRanker {
        var weights = [Float](repeating: 0, count: RankingFeatures.count)
        weights[k] = 1
        return LinearRanker(names: RankingFeatures.names, mean: [Float](repeating: 0, count: weights.count),
                            scale: [Float](repeating: 1, count: weights.count), weights: weights)
    }

    /// Candidate features and labels, grouped by user.
    struct Collected {
        var features: [Float] = []
        var offsets = [0]
        var labels: [Float] = []
        var groups: Int { offsets.count - 1 }
        var rows: Int { labels.count }
        var positives: Int { labels.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }
        var examples: RankingExamples {
            RankingExamples(features: features, dimension: RankingFeatures.count, offsets: offsets, labels: labels)
        }
        mutating func append(_ f: ArraySlice<Float>, _ l: [Float]) {
            features.append(contentsOf: f); labels.append(contentsOf: l); offsets.append(labels.count)
        }
        /// Every n-th group apart (the held-back part) from the others.
        func split(every n: Int) -> (Collected, Collected) {
            var a = Collected(), b = Collected()
            let d = RankingFeatures.count
            for g in 0..<groups {
                let rows = offsets[g]..<offsets[g + 1]
                let f = features[(rows.lowerBound * d)..<(rows.upperBound * d)], l = Array(labels[rows])
                if g % n == n - 1 { b.append(f, l) } else { a.append(f, l) }
            }
            return (a, b)
        }
    }

    /// Gathers each user's candidates and features through the refresh's own code, keeping the ranker's pool
    /// (`Refresh.rankerPool`); groups without a positive among them are dropped (they carry no signal for a listwise loss).
    static func collect(_ users: [TestUser], train: Dataset, history: UserHistory, popularity: Popularity, scorers: Scorers,
                        config: HomefeedConfig, threads: Int, quiet: Bool) -> Collected {
        var out = Collected()
        let progress = Progress("ranker examples", total: users.count, unit: "users", quiet: quiet)
        let scratch = SlotBuffer((0..<threads).map { _ in Refresh.makeScratch(train, scorers: scorers, config: config) })
        var mfTiming = MFTiming(), ttTiming = (embed: 0.0, retrieval: 0.0)
        for start in stride(from: 0, to: users.count, by: config.refresh.blockUsers) {
            let end = min(users.count, start + config.refresh.blockUsers)
            let ids = users[start..<end].map(\.user)
            let block = Refresh.retrieve(ids[...], data: train, history: history, scorers: scorers, config: config,
                                         threads: threads, mfTiming: &mfTiming, ttTiming: &ttTiming)
            let results = SlotBuffer<([Float], [Float])>(repeating: ([], []), count: end - start)
            parallelFor(end - start, threads: threads, chunk: 16) { worker, range in
                scratch.withSlot(worker) { s in
                    for k in range {
                        let c = block.candidates(k, user: ids[k], data: train)
                        Refresh.gather(c, data: train, history: history, popularity: popularity, scorers: scorers,
                                       perSource: config.refresh.candidatesPerSource, set: s.set)
                        Refresh.features(c, data: train, scorers: scorers, set: s.set, into: &s.features, headScores: &s.headScores)
                        let truth = users[start + k].truth, d = RankingFeatures.count
                        Refresh.rankerPool(s.features, count: s.set.count, pool: scorers.rankerPool, into: &s.pool, scratch: &s.select)
                        var features: [Float] = [], labels: [Float] = []
                        for i in 0..<s.set.count where s.pool[i] {
                            features.append(contentsOf: s.features[(i * d)..<((i + 1) * d)])
                            labels.append(binarySearch(truth, Int32(s.set.video(i))) ? 1 : 0)
                        }
                        results[k] = (features, labels)
                    }
                }
            }
            for k in 0..<(end - start) where results[k].1.contains(where: { $0 > 0 }) {
                out.append(results[k].0[...], results[k].1)
            }
            progress.add(end - start)
        }
        progress.finish()
        return out
    }
}
