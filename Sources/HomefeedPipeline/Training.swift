import Foundation
import HomefeedCore
import HomefeedData
import HomefeedEval
import HomefeedModels
import HomefeedStore

/// What `train --tune` tried and chose, recorded with the model.
public struct TuningReport: Codable, Sendable, Equatable {
    public struct Point: Codable, Sendable, Equatable {
        public var factors: Int
        public var regularization: Double
        public var alpha: Double
        public var recentBoost: Double
        public var popularityWeight: Double
        public var trendingWeight: Double
        /// `[item_item]` regularization and weight (nil in reports from before the item-item model), and window
        /// (nil in reports from before the co-watch window).
        public var itemItemRegularization: Double?
        public var itemItemWeight: Double?
        public var itemItemWindow: Double?
        /// nDCG@10 on the validation split.
        public var ndcg: Double
    }
    public var split = "time"
    public var validationFraction = 0.1
    public var validationUsers = 0
    public var points: [Point] = []
    public var chosen: Point?
    public var seconds = 0.0
}

/// What `homefeed-batch train` was asked to do.
public struct TrainOptions: Sendable {
    public var dataDir: String
    public var storeDir: String
    public var now: Int64?
    /// Overrides `[mf] tune` ("on", "off", "auto").
    public var tune: String?
    public var quiet = false
    public init(dataDir: String, storeDir: String) { self.dataDir = dataDir; self.storeDir = storeDir }
}

/// The daily job: fit weighted ALS on every user's history and save the model into the store.
public enum Train {
    public static func run(_ opt: TrainOptions, config: HomefeedConfig) throws -> (info: MFModelInfo, line: String) {
        let started = TimeFormat.monotonic()
        let models = ModelStore(store: VersionedStore(root: opt.storeDir))
        let lock = try models.lock()
        defer { lock.release() }
        let loadStart = TimeFormat.monotonic()
        let data = try DatasetLoader.load(directory: opt.dataDir, config: config.data, progress: !opt.quiet)
        let loadSeconds = TimeFormat.monotonic() - loadStart
        let history = UserHistory(data)
        var model = try fit(data, history: history, config: config, asOf: opt.now ?? data.newestInteraction ?? TimeFormat.now(),
                            tune: opt.tune ?? config.mf.tune, previous: models.latest().flatMap { try? models.info($0) },
                            quiet: opt.quiet)
        model.info.stages.insert(.init(name: "load", seconds: loadSeconds), at: 0)
        model.info.dataDirectory = opt.dataDir
        let name = try models.save(&model, createdAt: TimeFormat.now())
        try models.prune(keep: config.mf.keepModels, protected: models.inUse())
        let i = model.info
        let tuned = i.tuning.map { t in
            " (tuned on \(t.validationUsers) validation users: nDCG@10 \(Format.fixed(t.chosen?.ndcg ?? 0, 4)) over \(t.points.count) settings)"
        } ?? ""
        let line = "train: model \(name): \(i.users) users × \(i.videos) videos, \(i.pairs) pairs, factors \(i.mf.factors), "
            + "regularization \(i.mf.regularization), alpha \(i.mf.alpha), recent boost \(i.mf.recentBoost), popularity weight \(i.mf.popularityWeight), trending weight \(i.mf.trendingWeight)\(tuned); "
            + (i.itemItem.map { ii in
                "item-item: head \(ii.head.count), regularization \(ii.settings.regularization), weight \(ii.settings.weight), co-watch window \(ii.settings.window); " } ?? "")
            + (i.twoTower.map { t in
                "two-tower: \(t.examples) examples, best epoch \((t.report?.bestEpoch ?? -1) + 1) of \(t.report?.epochs.count ?? 0), \(Int(t.report?.examplesPerSecond ?? 0)) examples/s; " } ?? "")
            + (i.rankerFit.map { r in
                "ranker: \(r.users) users, held-back nDCG@10 \(Format.fixed(r.ndcgRanker, 4)) (MF \(Format.fixed(r.ndcgMF, 4)), two-tower \(Format.fixed(r.ndcgTwoTower, 4))), ranking by \(r.chosen); " } ?? "")
            + i.stages.map { "\($0.name) \(Format.seconds($0.seconds))" }.joined(separator: ", ")
            + "; \(Format.seconds(TimeFormat.monotonic() - started))"
        return (i, line)
    }

    /// Fits every model on `data`: MF (tuned per `tune`), then, when enabled, the two-tower model and the learned
    /// ranker (fitted on interactions held out from models trained on the rest).
    public static func fit(_ data: Dataset, history: UserHistory, config: HomefeedConfig, asOf: Int64, tune: String,
                           previous: MFModelInfo?, quiet: Bool) throws -> MFModel {
        // 1. MF.
        var model = try fitMF(data, history: history, config: config, asOf: asOf, tune: tune, previous: previous, quiet: quiet)
        var c = config
        c.mf = model.info.mf   // as tuned
        if let ii = model.info.itemItem { c.itemItem = ii.settings }
        // 2. The learned ranker over both models' scores, fitted on interactions held out from fold models; on
        //    large data the fold's two-tower model is the final one (RankerFit.Result).
        var fold: (model: TwoTowerModel, info: TwoTowerInfo)?
        if config.twoTower.enabled && config.rank.ranker == "learned" {
            let t0 = TimeFormat.monotonic()
            if let r = try RankerFit.fit(data, history: history, config: c, quiet: quiet) {
                model.info.ranker = r.ranker
                model.info.rankerFit = r.info
                fold = r.twoTower
            }
            model.info.stages.append(.init(name: "ranker", seconds: TimeFormat.monotonic() - t0))
        }
        // 3. The two-tower model.
        if config.twoTower.enabled {
            let t0 = TimeFormat.monotonic()
            let (tt, info) = fold ?? TwoTowerFit.fit(data, history: history, asOf: asOf, config: c, quiet: quiet)
            model.twoTower = tt
            model.info.twoTower = info
            if fold == nil { model.info.stages.append(.init(name: "two-tower", seconds: TimeFormat.monotonic() - t0)) }
        }
        return model
    }

    /// Fits MF on `data` (every user, every video). `tune`: "on" searches the grid on a validation split
    /// carved from `data`; "auto" does so when the data has at most `tune_max_pairs` pairs and otherwise reuses the
    /// settings `previous` was tuned to; "off" uses `config.mf` as is.
    /// With `itemItem` the item-to-item model is fitted too (`[item_item]`, as tuned); tuning attaches its own.
    static func fitMF(_ data: Dataset, history: UserHistory, config: HomefeedConfig, asOf: Int64, tune: String,
                      previous: MFModelInfo?, itemItem: Bool = true, quiet: Bool) throws -> MFModel {
        guard ["on", "off", "auto"].contains(tune) else { throw HomefeedError("tune must be on, off or auto (got '\(tune)')") }
        var info = MFModelInfo()
        info.asOf = asOf
        var mf = config.mf
        var ii = config.itemItem
        let allUsers = (0..<Int32(data.users.count))
        let rowsStart = TimeFormat.monotonic()
        var (rows, newest) = ConfidenceBuilder(config).rowsWithNewest(users: allUsers, data: data, history: history,
                                                                      columns: data.videos.count, column: { $0 })
        info.stages.append(.init(name: "confidence", seconds: TimeFormat.monotonic() - rowsStart))
        // 1. Settings: tuned on validation, reused from the previous model, or as configured.
        if tune == "on" || (tune == "auto" && rows.nnz <= mf.tuneMaxPairs) {
            let t0 = TimeFormat.monotonic()
            var report = try Tuning.search(data, config: config, quiet: quiet)
            report.seconds = TimeFormat.monotonic() - t0
            if let c = report.chosen { Tuning.apply(c, to: &mf, &ii) }
            info.tuning = report
            info.stages.append(.init(name: "tune", seconds: report.seconds))
        } else if tune == "auto", let p = previous, p.tuning != nil {
            mf.factors = p.mf.factors; mf.regularization = p.mf.regularization
            mf.alpha = p.mf.alpha; mf.recentBoost = p.mf.recentBoost
            mf.popularityWeight = p.mf.popularityWeight; mf.trendingWeight = p.mf.trendingWeight
            if let p = p.itemItem?.settings { ii.regularization = p.regularization; ii.weight = p.weight; ii.window = p.window }
            if !quiet { Log.info("train: \(rows.nnz) pairs > mf.tune_max_pairs \(mf.tuneMaxPairs): reusing the settings model \(p.name) was tuned to") }
        }
        info.mf = mf
        if mf != config.mf {  // confidences depend on alpha and the recency boost
            var c = config; c.mf = mf
            (rows, newest) = ConfidenceBuilder(c).rowsWithNewest(users: allUsers, data: data, history: history,
                                                                 columns: data.videos.count, column: { $0 })
        }
        // 2. Fit.
        let t0 = TimeFormat.monotonic()
        let fitted = ALS.fit(rows, config: alsConfig(mf))
        info.stages.append(.init(name: "fit", seconds: TimeFormat.monotonic() - t0))
        info.users = rows.rows; info.videos = rows.cols; info.pairs = rows.nnz
        var model = MFModel(info: info, userIDs: (0..<data.users.count).map { data.users.ids[$0] },
                            videoIDs: (0..<data.videos.count).map { data.videos.ids[$0] }, users: fitted.users, videos: fitted.videos)
        // 3. The item-to-item model on the same rows (their positive entries).
        if itemItem {
            let t1 = TimeFormat.monotonic()
            model.setItemItem(fitItemItem(rows, newest: newest, ii, threads: effectiveThreads(mf.threads)), settings: ii)
            if model.itemItem != nil { model.info.stages.append(.init(name: "item-item", seconds: TimeFormat.monotonic() - t1)) }
        }
        return model
    }

    static func fitItemItem(_ rows: SparseRows, newest: [Int64], _ settings: HomefeedConfig.ItemItem, threads: Int) -> ItemItemModel? {
        guard settings.videos > 0 else { return nil }
        return ItemItemModel.fit(rows, newest: newest, window: settings.window, farWeight: settings.farWeight,
                                 maxVideos: settings.videos, relativeLambda: settings.regularization, threads: threads)
    }

    public static func alsConfig(_ mf: HomefeedConfig.MF) -> ALSConfig {
        var c = ALSConfig()
        c.factors = mf.factors; c.iterations = mf.iterations
        c.regularization = Float(mf.regularization); c.unobservedWeight = Float(mf.unobservedWeight)
        c.cgSteps = mf.cgSteps; c.threads = mf.threads; c.seed = UInt64(truncatingIfNeeded: mf.seed)
        return c
    }
}

/// `train --tune`: a small grid searched on a validation split carved from the training data (never a test file),
/// scored exactly as `eval` scores: the refresh's own ranking of each validation user's list, nDCG@10.
///
/// Validation: the seeded random (tune_split "random", default; two draws, scores averaged) or newest ("time")
/// validation_fraction of each user's interactions (HomefeedEval's holdout splits; truth = held-out relevant videos
/// unseen in the rest). Grid, in passes, each at the best point so far:
/// factors {24, 64} × regularization {0.05, 0.5, 2, 5, 10} × alpha {1, 2, 5}, stepping past an edge the best point
/// sits on (regularization ×2, factors ×2/3, alpha ×2, while it improves); then `[item_item]` window {0, 16, 32} ×
/// regularization {4, 8, 16} × weight {0.5, 1, 2, 4} (weight 0 until then: MF alone; each item-item model fitted
/// once per fold, regularization and window), stepping past its edges the same way (regularization ÷2, weight ×2);
/// then the ranking's popularity_weight × trending_weight, each in {0, 0.25, 0.5, 1} (ranking only, no refit); then
/// recent_boost {2, 8, 32}. Other settings come from `[mf]`.
/// Ties keep the earlier setting.
public enum Tuning {
    /// What an item-to-item model of a tuning fold depends on.
    struct ItemItemKey: Hashable { var regularization: Double; var window: Double }

    public static let factorGrid = [24, 64]
    public static let regularizationGrid = [0.05, 0.5, 2.0, 5.0, 10.0]
    public static let alphaGrid = [1.0, 2.0, 5.0]
    public static let rankingWeightGrid = [0.0, 0.25, 0.5, 1.0]
    public static let recentBoostGrid = [2.0, 8.0, 32.0]
    public static let itemItemRegularizationGrid = [4.0, 8.0, 16.0]
    public static let itemItemWeightGrid = [0.5, 1.0, 2.0, 4.0]
    /// Co-watch windows tried (0 = plain co-occurrence), each with the whole regularization × weight grid.
    public static let itemItemWindowGrid = [0.0, 16.0, 32.0]
    /// Steps past a grid edge, per parameter (regularization, factors, alpha).
    static let edgeSteps = 3

    static func apply(_ p: TuningReport.Point, to mf: inout HomefeedConfig.MF, _ ii: inout HomefeedConfig.ItemItem) {
        mf.factors = p.factors; mf.regularization = p.regularization; mf.alpha = p.alpha
        mf.recentBoost = p.recentBoost; mf.popularityWeight = p.popularityWeight; mf.trendingWeight = p.trendingWeight
        ii.regularization = p.itemItemRegularization ?? ii.regularization; ii.weight = p.itemItemWeight ?? 0
        ii.window = p.itemItemWindow ?? ii.window
    }

    public static func search(_ data: Dataset, config: HomefeedConfig, quiet: Bool) throws -> TuningReport {
        let mf = config.mf
        var report = TuningReport()
        report.split = mf.tuneSplit
        report.validationFraction = mf.validationFraction
        // 1. Hold out validation interactions; the rest is what each setting trains on. A held-out video the user
        //    also has in the rest (a watch kept, its like held out) is no ground truth: lists never repeat seen videos.
        //    The random split is drawn twice (two seeds) and scores are averaged: the choice then rests less on
        //    which videos one draw happened to hold out.
        let options = TestSetOptions(watchFraction: config.data.relevanceWatchFraction, dropSeenInTrain: true)
        let seed = UInt64(truncatingIfNeeded: mf.seed)
        let seeds: [UInt64] = mf.tuneSplit == "time" ? [seed] : [seed, seed &+ 1]
        // Each fold's ranking state (popularity, per-video priors, fresh uploads, title keys) is built once; only its
        // MF source changes from one setting to the next.
        struct Fold {
            var split: HoldoutSplit; var history: UserHistory; var popularity: Popularity; var asOf: Int64; var scorers: Scorers
            /// Item-to-item models by regularization and window, fitted once each (they do not depend on the MF
            /// settings), from the fold's engagement rows and their times (built once).
            var itemItem: [ItemItemKey: ItemItemModel] = [:]
            var engagements: (rows: SparseRows, newest: [Int64])?
        }
        var folds = try seeds.map { s -> Fold in
            let split = mf.tuneSplit == "time"
                ? try Holdout.timeSplit(data, testFraction: mf.validationFraction, options: options)
                : try Holdout.randomSplit(data, testFraction: mf.validationFraction, seed: s, options: options)
            let asOf = split.train.newestInteraction ?? 0
            let length = max(config.refresh.fallbackListSize, config.refresh.candidatesPerSource)
            let popularity = Popularity(split.train, asOf: asOf, config: config, length: length)
            let scorers = Scorers(data: split.train, asOf: asOf, config: config, mf: nil, twoTower: nil, ranker: nil, mode: .mf)
            return Fold(split: split, history: UserHistory(split.train), popularity: popularity, asOf: asOf, scorers: scorers)
        }
        report.validationUsers = folds[0].split.test.users.count
        guard folds.allSatisfy({ !$0.split.test.users.isEmpty }) else { return report }
        let threads = effectiveThreads(mf.threads)
        let grid = factorGrid.count * regularizationGrid.count * alphaGrid.count
        let weights = rankingWeightGrid.count * rankingWeightGrid.count - 1
        let itemItemPoints = config.itemItem.videos > 0
            ? itemItemWindowGrid.count * itemItemRegularizationGrid.count * itemItemWeightGrid.count : 0
        let itemItemEdges = itemItemPoints > 0 ? 2 * edgeSteps : 0
        let total = (grid + 3 * edgeSteps + itemItemPoints + itemItemEdges + weights + recentBoostGrid.count) * folds.count
        let progress = Progress("tune mf", total: total, unit: "fits", quiet: quiet)

        // 2. Score one setting: mean over folds of the nDCG@10 of the validation users' ranked lists (the fitted
        //    models are reused when only the ranking weights change).
        var fitted: (point: TuningReport.Point, models: [MFModel])?
        func score(_ p: TuningReport.Point) throws -> Double {
            var c = config
            apply(p, to: &c.mf, &c.itemItem)
            var models: [MFModel]
            if let f = fitted, f.point.factors == p.factors, f.point.regularization == p.regularization,
               f.point.alpha == p.alpha, f.point.recentBoost == p.recentBoost {
                models = f.models
                for k in models.indices { models[k].info.mf = c.mf }
            } else {
                models = try folds.map { fold in
                    try Train.fitMF(fold.split.train, history: fold.history, config: c, asOf: fold.asOf, tune: "off",
                                    previous: nil, itemItem: false, quiet: true)
                }
                fitted = (p, models)
            }
            // The item-to-item model of this regularization and window, fitted once per fold.
            for k in models.indices {
                guard let rho = p.itemItemRegularization, c.itemItem.weight > 0 else {
                    models[k].setItemItem(nil, settings: c.itemItem); continue
                }
                let key = ItemItemKey(regularization: rho, window: c.itemItem.window)
                if folds[k].itemItem[key] == nil {
                    let train = folds[k].split.train
                    let e = folds[k].engagements ?? ConfidenceBuilder(config).rowsWithNewest(
                        users: 0..<Int32(train.users.count), data: train, history: folds[k].history,
                        columns: train.videos.count, column: { $0 })
                    folds[k].engagements = e
                    folds[k].itemItem[key] = Train.fitItemItem(e.rows, newest: e.newest, c.itemItem, threads: threads)
                }
                models[k].setItemItem(folds[k].itemItem[key], settings: c.itemItem)
            }
            var sum = 0.0
            for (fold, model) in zip(folds, models) {
                let source = MFSource(model: model, data: fold.split.train, config: c, threads: threads)
                var scorers = fold.scorers
                scorers.mf = source
                let acc = try Evaluate.score(fold.split.test.users, train: fold.split.train, history: fold.history,
                                             popularity: fold.popularity, scorers: scorers, config: c, threads: threads, ks: [10])
                sum += acc.accumulator.report().at(10)?.ndcg ?? 0
                progress.add(1)
            }
            return sum / Double(folds.count)
        }
        var best: TuningReport.Point?
        func consider(_ p0: TuningReport.Point) throws {
            var p = p0
            p.ndcg = try score(p)
            report.points.append(p)
            if best == nil || p.ndcg > best!.ndcg { best = p }
        }
        // 3. The three passes.
        for f in factorGrid { for r in regularizationGrid { for a in alphaGrid {
            try consider(.init(factors: f, regularization: r, alpha: a, recentBoost: 0, popularityWeight: 0, trendingWeight: 0, ndcg: 0))
        } } }
        // A best value on the edge of its grid may stop short of the optimum: step past the edge (regularization
        // ×2, factors ×2/3, alpha ×2) while the score improves, at most `edgeSteps` each, at the best point so far.
        var stepsTaken = 0
        func extend(_ atEdge: (TuningReport.Point) -> Bool, _ step: (inout TuningReport.Point) -> Bool) throws {
            var steps = 0
            while steps < edgeSteps, let b = best, atEdge(b) {
                var p = b
                guard step(&p) else { return }
                let before = b.ndcg
                try consider(p)
                steps += 1; stepsTaken += 1
                if best!.ndcg <= before { return }
            }
        }
        try extend({ $0.regularization >= regularizationGrid.last! }) { $0.regularization *= 2; return true }
        try extend({ $0.factors <= factorGrid.first! }) { p in
            let f = p.factors * 2 / 3
            guard f >= 4 else { return false }
            p.factors = f; return true
        }
        try extend({ $0.alpha >= alphaGrid.last! }) { $0.alpha *= 2; return true }
        progress.add((3 * edgeSteps - stepsTaken) * folds.count)   // the steps not taken count as done
        var base = best!
        if itemItemPoints > 0 {
            for h in itemItemWindowGrid { for r in itemItemRegularizationGrid { for w in itemItemWeightGrid {
                var p = base; p.itemItemWindow = h; p.itemItemRegularization = r; p.itemItemWeight = w; try consider(p)
            } } }
            // Past the item-item grid's edges too (regularization ÷2, weight ×2), when an item-item point won.
            stepsTaken = 0
            try extend({ $0.itemItemRegularization.map { $0 <= itemItemRegularizationGrid.first! } ?? false }) {
                $0.itemItemRegularization! /= 2; return true
            }
            try extend({ $0.itemItemWeight.map { $0 >= itemItemWeightGrid.last! } ?? false }) { $0.itemItemWeight! *= 2; return true }
            progress.add((itemItemEdges - stepsTaken) * folds.count)
            base = best!
        }
        for w in rankingWeightGrid { for t in rankingWeightGrid where w != 0 || t != 0 {
            var p = base; p.popularityWeight = w; p.trendingWeight = t; try consider(p)
        } }
        base = best!
        for b in recentBoostGrid { var p = base; p.recentBoost = b; try consider(p) }
        progress.finish()
        report.chosen = best
        return report
    }
}
