import Foundation
import HomefeedCore
import HomefeedData
import HomefeedEval
import HomefeedStore

/// What `homefeed-batch eval` was asked to do.
public struct EvalOptions: Sendable {
    public var dataDir: String
    /// "random" or "time" per-user holdout of `dataDir`, or "files": `testDataDir` holds the test interactions.
    public var split = "random"
    public var testFraction = 0.2
    /// Share of users held out whole (random and time splits): cold-start users, scored apart.
    public var coldUsers = 0.0
    public var testDataDir: String?
    public var seed: UInt64 = 42
    public var ks = [5, 10, 20, 50]
    /// Overrides `[mf] tune` for the model trained on the train part.
    public var tune: String?
    public var quiet = false
    public init(dataDir: String) { self.dataDir = dataDir }
}

/// The result of `eval`: one report per model on the same test users, the cold users apart.
public struct EvalResult: Codable, Sendable {
    public var split: SplitStats
    public var reports: [EvalReport]
    public var mf: MFModelInfo
}

/// Offline evaluation: hold out part of the data, train on the rest exactly as `train` would, rank every test user's
/// list through the refresh's own ranking code, and score the lists against the held-out relevant interactions.
/// Models side by side: the popularity baseline (what users get without a model) and MF.
public enum Evaluate {
    public static func run(_ opt: EvalOptions, config: HomefeedConfig) throws -> EvalResult {
        let threads = effectiveThreads(config.refresh.threads)
        guard ["random", "time", "files"].contains(opt.split) else {
            throw HomefeedError("eval: --split must be random, time or files (got '\(opt.split)')")
        }
        if opt.split == "files" && opt.testDataDir == nil { throw HomefeedError("eval --split files needs --test-data DIR") }
        if opt.split == "files" && opt.coldUsers > 0 { throw HomefeedError("eval --cold-users goes with --split random or time (with files, the test folder decides who is cold)") }
        // 1. Load and split.
        let data = try DatasetLoader.load(directory: opt.dataDir, config: config.data, progress: !opt.quiet)
        let options = TestSetOptions(watchFraction: config.data.relevanceWatchFraction)
        let split: HoldoutSplit
        switch opt.split {
        case "random": split = try Holdout.randomSplit(data, testFraction: opt.testFraction, seed: opt.seed, coldUsers: opt.coldUsers, options: options)
        case "time": split = try Holdout.timeSplit(data, testFraction: opt.testFraction, coldUsers: opt.coldUsers, seed: opt.seed, options: options)
        case "files":
            guard let dir = opt.testDataDir else { throw HomefeedError("eval --split files needs --test-data DIR") }
            let test = try DatasetLoader.load(directory: dir, config: config.data, progress: !opt.quiet)
            split = try Holdout.givenTest(train: data, test: test, options: options)
        default: throw HomefeedError("eval: --split must be random, time or files (got '\(opt.split)')")
        }
        let train = split.train
        guard !split.test.users.isEmpty else {
            let cold = opt.coldUsers > 0
                ? "; --cold-users \(opt.coldUsers) held \(split.test.coldUsers.count) users out whole, leaving too few with a history: lower it"
                : ""
            throw HomefeedError("eval: no test user has a relevant held-out interaction and a training history (\(split.test.stats.testInteractions) test interactions\(cold))")
        }
        if !opt.quiet {
            Log.info("eval: \(opt.split) split: \(split.test.stats.trainInteractions) train / \(split.test.stats.testInteractions) test interactions, \(split.test.users.count) test users, \(split.test.coldUsers.count) cold")
        }
        // 2. Train the models on the train part, as `train` would.
        let history = UserHistory(train)
        let asOf = train.newestInteraction ?? TimeFormat.now()
        let model = try Train.fit(train, history: history, config: config, asOf: asOf, tune: opt.tune ?? config.mf.tune,
                                  previous: nil, quiet: opt.quiet)
        let mf = MFSource(model: model, data: train, config: config, threads: threads)
        var tt: TwoTowerSource?
        if let m = model.twoTower, let info = model.info.twoTower {
            tt = TwoTowerSource(model: m, info: info, name: "", data: train, history: history, asOf: asOf, config: config, threads: threads)
        }
        let popLength = max(config.refresh.fallbackListSize, config.refresh.candidatesPerSource)
        let popularity = Popularity(train, asOf: asOf, config: config, length: popLength)

        // 3. Rank every test user's list with each model, through the refresh's ranking code: popularity, MF alone,
        //    two-tower alone, and the hybrid (every source, the learned ranker); cold users apart.
        let tags = TagVectors(train)
        // One ranking state for every row; only the mode changes.
        let base = Scorers(data: train, asOf: asOf, config: config, mf: mf, twoTower: tt, ranker: model.info.ranker, mode: .popular)
        let published = train.videos.publishedAt
        let fresh = Set((0..<Int32(train.videos.count)).filter { base.isFresh(Int($0), published) })
        func report(_ label: String, _ users: TestUsers, _ mode: Scorers.Mode, fallbackUnlessMF: Bool) throws -> EvalReport {
            var scorers = base
            scorers.mode = mode
            return try score(users, train: train, history: history, popularity: popularity, scorers: scorers, config: config,
                             threads: threads, ks: opt.ks, tags: tags, fallbackUnlessMF: fallbackUnlessMF, fresh: fresh)
                .report(label: label, split: split.test.stats)
        }
        var reports = [
            try report("popular", split.test.users, .popular, fallbackUnlessMF: false),
            try report("mf", split.test.users, .mf, fallbackUnlessMF: true),
        ]
        if tt != nil {
            reports.append(try report("two-tower", split.test.users, .twoTower, fallbackUnlessMF: false))
            if model.info.ranker != nil {
                let chosen = model.info.rankerFit?.chosen ?? "learned"
                reports.append(try report(chosen == "learned" ? "hybrid" : "hybrid (ranked by \(chosen): train chose it over the fitted ranker)",
                                          split.test.users, .learned, fallbackUnlessMF: false))
            }
        }
        if !split.test.coldUsers.isEmpty {
            reports.append(try report("cold users: popular", split.test.coldUsers, .popular, fallbackUnlessMF: false))
            if tt != nil {
                reports.append(try report("cold users: two-tower", split.test.coldUsers, .twoTower, fallbackUnlessMF: false))
                if model.info.ranker != nil { reports.append(try report("cold users: hybrid", split.test.coldUsers, .learned, fallbackUnlessMF: false)) }
            }
        }
        return EvalResult(split: split.test.stats, reports: reports, mf: model.info)
    }

    /// Ranks every user of `users` through the refresh's code (MF when `mf` is given, else the popularity blend)
    /// and accumulates their metrics; a list ranked without MF counts as a fallback when `fallbackUnlessMF`.
    static func score(_ users: TestUsers, train: Dataset, history: UserHistory, popularity: Popularity, scorers: Scorers,
                      config: HomefeedConfig, threads: Int, ks: [Int], tags: TagVectors? = nil,
                      fallbackUnlessMF: Bool = false, fresh: Set<Int32> = []) throws -> EvalReportBuilder {
        var byUser: [Int32: (list: [Int32], mf: Bool)] = [:]
        _ = try Refresh.rankUsers(users.users.map { (hash: UInt64(0), user: $0) }, data: train, history: history,
                                  popularity: popularity, scorers: scorers, config: config, threads: threads, quiet: true) { u, list, byMF in
            byUser[u] = (list.videos.map { Int32($0) }, byMF)
        }
        var acc = try MetricsAccumulator(ks: ks, catalogSize: train.videos.count, tags: tags)
        let k = ks.contains(10) ? 10 : ks.max() ?? 10
        var reach = EvalReport.FreshReach(k: k, videos: fresh.count)
        var reachedTop = Set<Int32>(), reached = Set<Int32>()
        for u in users {
            let r = byUser[u.user]
            acc.add(u, list: r?.list ?? [], fallback: fallbackUnlessMF && !(r?.mf ?? false))
            guard !fresh.isEmpty, let list = r?.list else { continue }
            let top = Set(list.prefix(k)), all = Set(list)
            for v in list where fresh.contains(v) { reached.insert(v) }
            for v in top where fresh.contains(v) { reachedTop.insert(v) }
            for v in u.truth where fresh.contains(v) {
                reach.truthPairs += 1
                if top.contains(v) { reach.hits += 1 }
                if all.contains(v) { reach.hitsInList += 1 }
            }
        }
        reach.reachedInTop = reachedTop.count
        reach.reached = reached.count
        return EvalReportBuilder(accumulator: acc, fresh: fresh.isEmpty ? nil : reach)
    }
}

/// The metrics of one ranking and the fresh videos' reach, turned into one report.
struct EvalReportBuilder {
    var accumulator: MetricsAccumulator
    var fresh: EvalReport.FreshReach?
    func report(label: String = "", split: SplitStats? = nil) -> EvalReport {
        var r = accumulator.report(label: label, split: split)
        r.fresh = fresh
        return r
    }
}
