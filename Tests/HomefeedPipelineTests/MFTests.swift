import Foundation
import Testing
@testable import HomefeedCore
@testable import HomefeedData
@testable import HomefeedEval
@testable import HomefeedModels
@testable import HomefeedPipeline
@testable import HomefeedStore
import HomefeedSynthetic
import HomefeedTestSupport

/// Loads a fixture written to a temp dir, as the commands do.
func load(_ fixture: FixtureDataset, _ dir: TempDir) throws -> Dataset {
    try fixture.write(to: dir.sub("data"))
    return try DatasetLoader.load(directory: dir.sub("data"), config: HomefeedConfig().data, progress: false)
}

@Suite struct ConfidenceTests {
    /// One user, one video per kind of signal (videos last 600 s; relevance from 300 s):
    ///   v0 full watch                    → long 1                         × alpha 2 = 2
    ///   v1 100 s watch + like            → partial 0.25 + like 1 = 1.25   × 2 = 2.5
    ///   v2 share + comment               → 1 + 0.5 = 1.5                  × 2 = 3
    ///   v3 full watch + dislike          → explicit negative −alpha·1     = −2
    ///   v4 click only                    → no MF signal (no entry)
    func fixture() -> FixtureDataset {
        var d = FixtureDataset()
        d.user("u", "US", "en")
        for i in 0..<5 { d.video("v\(i)", "en", published: 0) }
        d.watch("u", "v0", at: 10)
        d.watch("u", "v1", at: 20, seconds: 100); d.event("u", "v1", "like", at: 21)
        d.event("u", "v2", "share", at: 30); d.event("u", "v2", "comment", at: 31)
        d.watch("u", "v3", at: 40); d.event("u", "v3", "dislike", at: 41)
        d.event("u", "v4", "click", at: 50)
        return d
    }

    func entries(_ rows: SparseRows, _ data: Dataset) -> [String: Float] {
        var out: [String: Float] = [:]
        for k in rows.offsets[0]..<rows.offsets[1] { out[data.videos.ids[Int(rows.columns[k])]] = rows.values[k] }
        return out
    }

    @Test func signalsSumPerVideoAndDislikesAreExplicitNegatives() throws {
        let dir = TempDir(); defer { dir.remove() }
        let data = try load(fixture(), dir)
        var config = HomefeedConfig()
        config.mf.alpha = 2
        let rows = ConfidenceBuilder(config).rows(users: [0], data: data, history: UserHistory(data), columns: 5, column: { $0 })
        #expect(entries(rows, data) == ["v0": 2, "v1": 2.5, "v2": 3, "v3": -2])
        // dislike_weight 0: dislikes are ignored, the full watch of v3 counts as a long watch.
        config.mf.dislikeWeight = 0
        let ignored = ConfidenceBuilder(config).rows(users: [0], data: data, history: UserHistory(data), columns: 5, column: { $0 })
        #expect(entries(ignored, data)["v3"] == 2)
    }

    /// recent_boost 4, recent_half_rank 1: the newest video ×(1 + 4) = 5, the next ×(1 + 2) = 3, then ×2, ×1.5.
    @Test func recentVideosWeighMore() throws {
        let dir = TempDir(); defer { dir.remove() }
        let data = try load(fixture(), dir)
        var config = HomefeedConfig()
        config.mf.recentBoost = 4; config.mf.recentHalfRank = 1; config.mf.dislikeWeight = 0
        let rows = ConfidenceBuilder(config).rows(users: [0], data: data, history: UserHistory(data), columns: 5, column: { $0 })
        // Newest first: v3 (t 41) rank 0, v2 (t 31) rank 1, v1 (t 21) rank 2, v0 (t 10) rank 3.
        #expect(entries(rows, data) == ["v3": 5, "v2": 1.5 * 3, "v1": 1.25 * 2, "v0": 1.5])
        // The same rows with each entry's newest interaction time beside it (the item-item model's time order).
        let (same, newest) = ConfidenceBuilder(config).rowsWithNewest(users: [0], data: data, history: UserHistory(data),
                                                                     columns: 5, column: { $0 })
        #expect(same.columns == rows.columns && same.values == rows.values)
        let byVideo = Dictionary(uniqueKeysWithValues: zip(same.columns.map { data.videos.ids[Int($0)] }, newest))
        #expect(byVideo == ["v3": 40, "v2": 31, "v1": 21, "v0": 10])   // v3's dislike (t 41) carries no signal here
    }

    /// Model columns: a video the model does not know (−1) is skipped; `include` leaves interactions out.
    @Test func columnsMapToTheModelAndIncludeFilters() throws {
        let dir = TempDir(); defer { dir.remove() }
        let data = try load(fixture(), dir)
        let rows = ConfidenceBuilder(HomefeedConfig()).rows(users: [0], data: data, history: UserHistory(data), columns: 2,
                                                           column: { $0 == 0 ? 1 : ($0 == 2 ? 0 : -1) },
                                                           include: { data.interactions.event[$0] != .comment })
        #expect(rows.cols == 2)
        #expect(Array(rows.columns) == [0, 1])       // v2 → column 0, v0 → column 1
        #expect(Array(rows.values) == [1, 1])        // v2: the share only; v0: the long watch
    }
}

@Suite struct ModelStoreTests {
    func model(users: Int, videos: Int, f: Int) -> MFModel {
        var info = MFModelInfo()
        info.mf.factors = f; info.users = users; info.videos = videos
        return MFModel(info: info, userIDs: (0..<users).map { "u\($0)" }, videoIDs: (0..<videos).map { "v\($0)" },
                       users: Matrix(rows: users, cols: f, values: (0..<(users * f)).map { Float($0) * 0.5 }),
                       videos: Matrix(rows: videos, cols: f, values: (0..<(videos * f)).map { -Float($0) }))
    }

    @Test func savesLoadsAndPrunesAllButTheModelsInUse() throws {
        let dir = TempDir(); defer { dir.remove() }
        let models = ModelStore(store: VersionedStore(root: dir.sub("store")))
        #expect(models.latest() == nil)
        let lock = try models.lock()
        var names: [String] = []
        for _ in 0..<3 {
            var m = model(users: 3, videos: 4, f: 2)
            names.append(try models.save(&m, createdAt: StandardFixture.t0))
        }
        #expect(names == ["model-000001-20240601T000000Z", "model-000002-20240601T000000Z", "model-000003-20240601T000000Z"])
        #expect(models.latest() == names[2])
        let back = try models.load(names[1])
        let original = model(users: 3, videos: 4, f: 2)
        #expect(back.users == original.users && back.videos == original.videos)
        #expect(back.userIDs == original.userIDs && back.videoIDs == original.videoIDs)
        #expect(back.info.name == names[1])
        // keep 1, but the first model is used by a kept version: only the second goes.
        #expect(try models.prune(keep: 1, protected: [names[0]]) == [names[1]])
        #expect(models.models() == [names[0], names[2]])
        lock.release()
    }

    /// The item-to-item model is saved beside the factors and read back equal; a damaged or truncated file is refused.
    @Test func savesAndLoadsTheItemItemModel() throws {
        let dir = TempDir(); defer { dir.remove() }
        let models = ModelStore(store: VersionedStore(root: dir.sub("store")))
        var m = model(users: 2, videos: 4, f: 2)
        let ii = ItemItemModel(videos: [3, 1], weights: [0, 0.5, -0.25, 0], lambda: 2)
        m.itemItem = ii
        m.info.itemItem = ItemItemInfo(settings: HomefeedConfig.ItemItem(), head: ii.videos, lambda: 2)
        let name = try models.save(&m, createdAt: StandardFixture.t0)
        let back = try models.load(name)
        #expect(back.itemItem == ii && back.info.itemItem == m.info.itemItem)
        let file = models.dir + "/" + name + "/item_item.f32"
        let bytes = try #require(FileManager.default.contents(atPath: file))
        try bytes.prefix(8).write(to: URL(fileURLWithPath: file))
        #expect { try models.load(name) } throws: { e in
            (e as? HomefeedError)?.message == "model \(name): missing item_item.f32, or not 2 × 2 float32 as model.json's head says"
        }
        try Data(repeating: 0x7F, count: bytes.count).write(to: URL(fileURLWithPath: file))
        #expect { try models.load(name) } throws: { e in
            (e as? HomefeedError)?.message.hasPrefix("model \(name): item_item.f32 is damaged (checksum ") == true
        }
    }

    @Test func aDamagedModelIsAClearError() throws {
        let dir = TempDir(); defer { dir.remove() }
        let models = ModelStore(store: VersionedStore(root: dir.sub("store")))
        var m = model(users: 2, videos: 3, f: 4)
        let name = try models.save(&m, createdAt: StandardFixture.t0)
        let file = models.dir + "/" + name + "/videos.f32"
        let bytes = try #require(FileManager.default.contents(atPath: file))
        try bytes.prefix(10).write(to: URL(fileURLWithPath: file))
        #expect { try models.load(name) } throws: { e in
            (e as? HomefeedError)?.message == "model \(name): videos.f32 has 10 bytes, expected 3 × 4 float32 = 48"
        }
        // Damaged but of the right size: refused by its checksum, not served as zeros.
        try Data(repeating: 0xFF, count: bytes.count).write(to: URL(fileURLWithPath: file))
        #expect { try models.load(name) } throws: { e in
            (e as? HomefeedError)?.message.hasPrefix("model \(name): videos.f32 is damaged (checksum ") == true
        }
        try bytes.write(to: URL(fileURLWithPath: file))
        #expect(try models.load(name).videos == m.videos)
    }

    /// A second train while one holds the lock is refused with the busy exit code (schedulers skip, not fail).
    @Test func oneTrainAtATime() throws {
        let dir = TempDir(); defer { dir.remove() }
        let models = ModelStore(store: VersionedStore(root: dir.sub("store")))
        let lock = try models.lock()
        #expect { try models.lock() } throws: { e in (e as? HomefeedError)?.exitCode == HomefeedError.busyExitCode }
        lock.release()
        _ = try models.lock()
    }
}

@Suite struct MFRefreshTests {
    /// The first run trains a model (none saved yet) and records it; the next run reuses it; `--train` makes a new one.
    @Test func runTrainsWhenNoModelThenReusesItAndRecordsIt() throws {
        let dir = TempDir(); defer { dir.remove() }
        let first = try refreshFixture(dir: dir)
        let models = ModelStore(store: VersionedStore(root: dir.sub("store")))
        let name = try #require(models.latest())
        #expect(first.metadata.models["mf"] == name)
        #expect(first.metadata.counts.mfUsers == 63)          // every user with history has MF signal here
        let second = try refreshFixture(dir: dir)
        #expect(second.metadata.models["mf"] == name)
        #expect(models.models() == [name])
        let third = try refreshFixture(dir: dir) { o in o.train = true }
        #expect(models.models().count == 2 && third.metadata.models["mf"] == models.latest())
        // The version's meta.json on disk says which model made it (a rollback serves lists of that model).
        let store = VersionedStore(root: dir.sub("store"))
        #expect(try store.metadata(of: store.versions()[0]).models["mf"] == name)
    }

    /// Fold-in: a user the model never saw (u9 had no history at training) gets an MF-ranked list from the
    /// interaction of the last hour, without retraining; the video they watched is not recommended back.
    @Test func foldInCountsTheLatestInteractions() throws {
        let dir = TempDir(); defer { dir.remove() }
        let config = mfAloneConfig()
        try trainFixture(dir: dir, config: config)
        var later = StandardFixture.make()
        later.watch("u9", "v0", at: StandardFixture.t0 - 60)
        try later.write(to: dir.sub("data"))
        let s = try refreshFixture(later, dir: dir, config: config)
        #expect(s.metadata.counts.mfUsers == 64)
        #expect(ModelStore(store: VersionedStore(root: dir.sub("store"))).models().count == 1)
        let store = VersionedStore(root: dir.sub("store"))
        let v = try StoreVersion(store: store, name: try #require(try store.current()))
        let u9 = ids(try v.userList("u9"), v)
        #expect(!u9.isEmpty && !u9.contains("v0"))
        // Like the crowd that watched v0, u9 is offered what that crowd watched next (v1), not German videos.
        #expect(u9.first == "v1", "\(u9)")
    }

    /// Retrieval through the IVF index with every cell probed gives the exact path's lists, and the run records the
    /// recall it measured on its own embeddings (1 here).
    @Test func ivfWithEveryCellProbedEqualsExactRetrieval() throws {
        let dir = TempDir(); defer { dir.remove() }
        _ = try Generator.generate(GeneratorConfig(users: 400, videos: 150, seed: 4), out: dir.sub("data"), progress: false)
        var exact = HomefeedConfig()
        exact.mf.retrieval = "exact"; exact.mf.tune = "off"; exact.mf.factors = 16
        var ivf = exact
        ivf.mf.retrieval = "ivf"; ivf.mf.ivfCells = 8; ivf.mf.ivfProbe = 8
        var runs: [RunMetadata] = []
        for (name, config) in [("a", exact), ("b", ivf)] {
            var opt = RefreshOptions(dataDir: dir.sub("data"), storeDir: dir.sub(name))
            opt.activeDays = 0; opt.quiet = true
            runs.append(try Refresh.run(opt, config: config).metadata)
            try Export.run(storeDir: dir.sub(name), out: dir.sub(name + ".tsv"))
        }
        #expect(runs[0].retrieval?.method == "exact" && runs[0].retrieval?.recall == nil)
        #expect(runs[1].retrieval?.method == "ivf" && runs[1].retrieval?.cells == 8 && runs[1].retrieval?.recall == 1)
        #expect(runs[1].counts.mfUsers > 300)
        #expect(FileManager.default.contents(atPath: dir.sub("a.tsv")) == FileManager.default.contents(atPath: dir.sub("b.tsv")))
    }

    /// The run after a published version replays it: its lists against what users did after its as-of time.
    @Test func eachRunReplaysTheServedVersion() throws {
        let dir = TempDir(); defer { dir.remove() }
        let first = try refreshFixture(dir: dir)
        #expect(first.metadata.replay == nil)
        let store = VersionedStore(root: dir.sub("store"))
        let v = try StoreVersion(store: store, name: try #require(try store.current()))
        let u1Top = try #require(try v.userList("u1")?.videos.first)
        var later = StandardFixture.make()
        later.watch("u1", v.videos.ids[Int(u1Top)], at: StandardFixture.t0 + 600)   // u1 watches their first suggestion
        try later.write(to: dir.sub("data"))
        let second = try refreshFixture(later, dir: dir, now: StandardFixture.t0 + 3600)
        let replay = try #require(second.metadata.replay)
        #expect(replay.version == first.metadata.version)
        #expect(replay.relevantInteractions == 1)
        #expect(replay.personalized.first { $0.k == 10 }?.hitRate == 1)
    }
}

@Suite struct EvaluateTests {
    /// End to end on a generated dataset: hold out 20 % per user, train (tuned on validation), rank, score.
    /// MF (with its tuned popularity terms) beats the popularity baseline on the same users.
    @Test func mfBeatsThePopularityBaselineOnGeneratedData() throws {
        let dir = TempDir(); defer { dir.remove() }
        _ = try Generator.generate(GeneratorConfig(users: 2000, videos: 500, seed: 3), out: dir.sub("data"), progress: false)
        var opt = EvalOptions(dataDir: dir.sub("data"))
        opt.ks = [10, 50]
        opt.quiet = true
        let result = try Evaluate.run(opt, config: HomefeedConfig())
        let popular = try #require(result.reports.first { $0.label == "popular" }?.at(10))
        let mf = try #require(result.reports.first { $0.label == "mf" }?.at(10))
        #expect(mf.ndcg > popular.ndcg, "mf \(mf.ndcg) vs popular \(popular.ndcg)")
        #expect(mf.precision > popular.precision)
        #expect(result.reports[0].testUsers == result.reports[1].testUsers && result.reports[0].testUsers > 500)
        // Tuning keeps its best point, and steps past a grid edge the grid's best sits on (regularization 10 → 20).
        let tuning = try #require(result.mf.tuning)
        let chosen = try #require(tuning.chosen)
        #expect(tuning.points.allSatisfy { $0.ndcg <= chosen.ndcg })
        let grid = Tuning.factorGrid.count * Tuning.regularizationGrid.count * Tuning.alphaGrid.count
        var gridBest = tuning.points[0]
        for p in tuning.points.prefix(grid) where p.ndcg > gridBest.ndcg { gridBest = p }
        if gridBest.regularization == Tuning.regularizationGrid.last! {
            #expect(tuning.points[grid].regularization == 2 * gridBest.regularization
                    && tuning.points[grid].factors == gridBest.factors && tuning.points[grid].alpha == gridBest.alpha)
        }
        // The item-item pass: every (window, regularization, weight) of its grid at one MF setting; before it, MF alone.
        let itemItemPoints = tuning.points.filter { $0.itemItemWeight != nil && $0.popularityWeight == 0 && $0.trendingWeight == 0 && $0.recentBoost == 0 }
        let tried = Set(itemItemPoints.map { "\($0.itemItemWindow!) \($0.itemItemRegularization!) \($0.itemItemWeight!)" })
        for h in Tuning.itemItemWindowGrid { for r in Tuning.itemItemRegularizationGrid { for w in Tuning.itemItemWeightGrid {
            #expect(tried.contains("\(h) \(r) \(w)"))
        } } }
        #expect(tuning.points.prefix(grid).allSatisfy { $0.itemItemWeight == nil })
        // The model records the item-item model with the settings tuning chose.
        let ii = try #require(result.mf.itemItem)
        #expect(ii.settings.weight == (chosen.itemItemWeight ?? 0) && ii.head.count > 100 && ii.lambda > 0)
        #expect(ii.settings.window == (chosen.itemItemWindow ?? 0))
    }
}
