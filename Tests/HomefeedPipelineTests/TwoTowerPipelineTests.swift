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

/// A small, quick configuration of the models (debug builds run these tests).
func smallModels() -> HomefeedConfig {
    var c = HomefeedConfig()
    c.mf.tune = "off"; c.mf.factors = 16; c.mf.iterations = 5
    c.twoTower.epochs = 4; c.twoTower.hidden = 32; c.twoTower.output = 16; c.twoTower.fieldDim = 16
    c.twoTower.idBuckets = 8192; c.twoTower.tokenBuckets = 4096
    c.rank.segmentMinUsers = 5
    return c
}

/// Generated data (`g`) in `dir`, loaded, with both models fitted on it by `Train.fit` (smallModels, no tuning).
func trainedSmallModels(_ g: GeneratorConfig, _ dir: TempDir) throws
    -> (config: HomefeedConfig, data: Dataset, history: UserHistory, asOf: Int64, model: MFModel) {
    _ = try Generator.generate(g, out: dir.sub("data"), progress: false)
    let config = smallModels()
    let data = try DatasetLoader.load(directory: dir.sub("data"), config: config.data, progress: false)
    let history = UserHistory(data)
    let asOf = try #require(data.newestInteraction)
    let model = try Train.fit(data, history: history, config: config, asOf: asOf, tune: "off", previous: nil, quiet: true)
    return (config, data, history, asOf, model)
}

@Suite struct TwoTowerPipelineTests {
    /// Rewrites a CSV file with its data rows in reverse order (so a reload interns ids at other indices).
    func reverseRows(_ path: String) throws {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true)
        try ([lines[0]] + lines.dropFirst().reversed()).joined(separator: "\n").appending("\n").write(toFile: path, atomically: false, encoding: .utf8)
    }

    func entries(_ rows: FeatureRows, _ r: Int) -> [String] {
        rows.entries(ofRow: r).map { "\($0.field):\($0.token):\($0.weight)" }.sorted()
    }

    /// The same user and video get the same feature rows whatever the dataset's internal indices (tokens hash the
    /// external ids): what training saw is what the refresh computes. A training example's user row holds only the
    /// history older than the example's own video (the newest one here: the refresh row minus it).
    @Test func featuresAreTheSameAtTrainingAndRefreshTime() throws {
        let dir = TempDir(); defer { dir.remove() }
        _ = try Generator.generate(GeneratorConfig(users: 300, videos: 200, seed: 5), out: dir.sub("a"), progress: false)
        _ = try Generator.generate(GeneratorConfig(users: 300, videos: 200, seed: 5), out: dir.sub("b"), progress: false)
        try reverseRows(dir.sub("b") + "/users.csv"); try reverseRows(dir.sub("b") + "/videos.csv")
        let config = smallModels()
        let a = try DatasetLoader.load(directory: dir.sub("a"), config: config.data, progress: false)
        let b = try DatasetLoader.load(directory: dir.sub("b"), config: config.data, progress: false)
        let asOf = try #require(a.newestInteraction)
        let ea = FeatureEncoder(a, history: UserHistory(a), asOf: asOf, config: config)
        let eb = FeatureEncoder(b, history: UserHistory(b), asOf: asOf, config: config)
        #expect(a.users.ids[0] != b.users.ids[0], "the reload must intern users in another order")
        var checked = 0, withHistory = 0
        for u in 0..<a.users.count {
            let ub = Int(try #require(b.users.ids.index(of: a.users.ids[u])))
            var ra = FeatureRows(fields: FeatureEncoder.UserField.allCases.count), rb = ra
            ea.userRow(u, into: &ra); eb.userRow(ub, into: &rb)
            #expect(entries(ra, 0) == entries(rb, 0), "user \(a.users.ids[u])")
            checked += 1
            // The example of the user's newest relevant video.
            guard ea.hasHistory(u) else { continue }
            withHistory += 1
            let v = ea.sequenceVideo[ea.sequenceOffsets[u]]
            var ex = FeatureRows(fields: FeatureEncoder.UserField.allCases.count)
            ea.userRow(u, before: 0, withID: true, into: &ex)
            let older = Set(ea.sequenceVideo[(ea.sequenceOffsets[u] + 1)..<ea.sequenceOffsets[u + 1]].prefix(ea.config.historyLength).map { ea.videoIDToken[Int($0)] })
            #expect(Set(ex.entries(ofRow: 0).filter { $0.field == FeatureEncoder.UserField.watched.rawValue }.map(\.token)) == older)
            let watched = FeatureEncoder.UserField.watched.rawValue
            let token = ea.videoIDToken[Int(v)]
            #expect(ra.entries(ofRow: 0).contains { $0.field == watched && $0.token == token })
            #expect(!ex.entries(ofRow: 0).contains { $0.field == watched && $0.token == token })
        }
        for v in 0..<a.videos.count {
            let vb = Int(try #require(b.videos.ids.index(of: a.videos.ids[v])))
            var ra = FeatureRows(fields: FeatureEncoder.VideoField.allCases.count), rb = ra
            ea.videoRow(v, into: &ra); eb.videoRow(vb, into: &rb)
            #expect(entries(ra, 0) == entries(rb, 0), "video \(a.videos.ids[v])")
        }
        #expect(checked == 300 && withHistory > 100)
    }

    /// A training example sees the user's searches and usual context only up to its own video's time (as the
    /// refresh, an hour later, sees everything up to as-of): no later search words, hours or devices leak in.
    @Test func trainingExamplesSeeOnlyEarlierSearchesAndContext() throws {
        let dir = TempDir(); defer { dir.remove() }
        var f = FixtureDataset()
        f.user("u", "US", "en"); f.video("a", "en", published: 0); f.video("b", "en", published: 0)
        try f.write(to: dir.sub("data"))
        // By hand (the fixture writes no queries): "cats" at 01:00 and a watch of a at 02:00 on a tablet; "dogs" at
        // 05:00 and a watch of b at 05:01 on a phone. Day 100 of 1970 (a Saturday).
        let day: Int64 = 86400 * 100
        let rows = ["u,,search,,\(day + 3600),tablet,cats", "u,a,watch,600,\(day + 7200),tablet,",
                    "u,,search,,\(day + 5 * 3600),phone,dogs", "u,b,watch,600,\(day + 5 * 3600 + 60),phone,"]
        try ("user_id,video_id,event,watch_seconds,timestamp,device,query\n" + rows.joined(separator: "\n") + "\n")
            .write(toFile: dir.sub("data") + "/interactions.csv", atomically: false, encoding: .utf8)
        let config = smallModels()
        let data = try DatasetLoader.load(directory: dir.sub("data"), config: config.data, progress: false)
        let e = FeatureEncoder(data, history: UserHistory(data), asOf: day + 86400, config: config)
        typealias F = FeatureEncoder.UserField
        func bag(_ r: FeatureRows, _ field: F) -> [UInt32: Float] {
            Dictionary(r.entries(ofRow: 0).filter { $0.field == field.rawValue }.map { ($0.token, $0.weight) }, uniquingKeysWith: +)
        }
        let cats = FeatureEncoder.token("word", "cats"), dogs = FeatureEncoder.token("word", "dogs")
        let tablet = UInt32(try #require(data.devices.index(of: "tablet"))), phone = UInt32(try #require(data.devices.index(of: "phone")))
        var refresh = FeatureRows(fields: F.allCases.count), ofB = refresh, ofA = refresh
        e.userRow(0, into: &refresh)
        e.userRow(0, before: 0, withID: true, into: &ofB)   // b, the newest
        e.userRow(0, before: 1, withID: true, into: &ofA)   // a
        // The refresh: every search (the newer one weighs 1 / (1 + 0.5^(1/h))), every hour and device.
        #expect(Set(bag(refresh, .queries).keys) == [cats, dogs] && bag(refresh, .queries)[dogs]! > bag(refresh, .queries)[cats]!)
        #expect(bag(refresh, .hour) == [1: 0.25, 2: 0.25, 5: 0.5] && bag(refresh, .device) == [tablet: 0.5, phone: 0.5])
        #expect(bag(refresh, .weekday) == [5: 1])
        // b's example: what came before 05:01 — both searches, a's watch; a's example: only "cats" at 01:00.
        #expect(bag(ofB, .queries).count == 2 && bag(ofB, .hour) == [1: 1.0 / 3, 2: 1.0 / 3, 5: 1.0 / 3])
        #expect(bag(ofA, .queries) == [cats: 1] && bag(ofA, .hour) == [1: 1] && bag(ofA, .device) == [tablet: 1])
        #expect(Set(bag(ofA, .watched).keys).isEmpty && bag(ofB, .watched).count == 1)
    }

    /// A refresh with both models: the learned ranker ranks, two-tower candidates reach the lists, every list
    /// honours the diversity caps, segment lists are published, and users without history who signed up in the
    /// window get lists from the user tower on features alone — lists that are not the popular list and that depend
    /// on the user's features.
    @Test func refreshWithBothModels() throws {
        let dir = TempDir(); defer { dir.remove() }
        _ = try Generator.generate(GeneratorConfig(users: 1500, videos: 400, seed: 9), out: dir.sub("data"), progress: false)
        var config = smallModels()
        config.refresh.activeDays = 3650   // everyone who signed up in the data's span counts as new
        config.refresh.threads = 2
        var opt = RefreshOptions(dataDir: dir.sub("data"), storeDir: dir.sub("store"))
        opt.quiet = true
        let summary = try Refresh.run(opt, config: config)
        let meta = summary.metadata
        #expect(meta.models["two_tower"] != nil && meta.models["two_tower"] == meta.models["mf"])
        #expect(meta.counts.segmentLists > 0)
        let store = VersionedStore(root: dir.sub("store"))
        let version = try StoreVersion(store: store, name: try #require(try store.current()))
        let data = try DatasetLoader.load(directory: dir.sub("data"), config: config.data, progress: false)
        let history = UserHistory(data)
        var sources: [CandidateSource: Int] = [:]
        var cold: [(user: Int, list: [UInt32])] = []
        for u in 0..<data.users.count {
            guard let list = try version.userList(data.users.ids[u]) else { continue }
            var perChannel: [Int32: Int] = [:]
            var run = 0, previous: Int32 = -2
            for (k, v) in list.videos.enumerated() {
                let c = data.videos.channel[Int(v)]
                sources[list.sources[k], default: 0] += 1
                guard c >= 0 else { previous = -2; run = 0; continue }
                perChannel[c, default: 0] += 1
                run = c == previous ? run + 1 : 1
                previous = c
                #expect(run <= config.rank.maxChannelRun, "user \(data.users.ids[u]): a run of \(run) videos of channel \(c)")
            }
            #expect(perChannel.values.allSatisfy { $0 <= config.rank.maxPerChannel })
            if !history.hasHistory(u) { cold.append((u, list.videos)) }
        }
        #expect((sources[.twoTower] ?? 0) > 0 && (sources[.mf] ?? 0) > 0, "\(sources)")
        // Cold users: lists differ from their region's popular list and from each other when features differ.
        #expect(cold.count >= 10, "generated users without history: \(cold.count)")
        let popular = version.popularLists.filter { $0.scope == .region }
        var differentFromPopular = 0
        for c in cold {
            let country = data.users.country[c.user].description
            if let p = popular.first(where: { $0.code == country }), Array(p.list.videos.prefix(20)) != Array(c.list.prefix(20)) {
                differentFromPopular += 1
            }
        }
        #expect(differentFromPopular == cold.count)
        func attributes(_ u: Int) -> String {
            "\(data.users.country[u]) \(data.users.language[u]) \(AgeBucket(age: Int(data.users.age[u]))) \(data.users.gender[u])"
        }
        let byAttributes = Dictionary(grouping: cold, by: { attributes($0.user) })
        #expect(byAttributes.count >= 2)
        let tops = Set(byAttributes.values.map { Array($0[0].list.prefix(10)) })
        #expect(tops.count >= 2, "users with different features got the same lists")
    }

    /// Cold-start users' two-tower lists follow their demographics: with the same saved model, the same country,
    /// language and catalog, changing only a user's age bucket and gender changes their retrieved top 10, while an
    /// unchanged copy of the data gives the same lists (so the change, not chance, moved them).
    @Test func coldStartListsFollowDemographics() throws {
        let dir = TempDir(); defer { dir.remove() }
        let (config, data, history, asOf, model) = try trainedSmallModels(GeneratorConfig(users: 1500, videos: 400, seed: 9), dir)
        let cold = (0..<Int32(data.users.count)).filter { !history.hasHistory(Int($0)) }
        #expect(cold.count >= 10, "generated users without history: \(cold.count)")
        var moved = data
        for u in cold.map(Int.init) {
            moved.users.age[u] = data.users.age[u] < 35 ? 60 : 20
            moved.users.gender[u] = data.users.gender[u] == .female ? .male : .female
        }
        func top10(_ d: Dataset) throws -> [[Int32]] {
            let tt = TwoTowerSource(model: try #require(model.twoTower), info: try #require(model.info.twoTower), name: "m",
                                    data: d, history: history, asOf: asOf, config: config, threads: 2)
            let scorers = Scorers(data: d, asOf: asOf, config: config, mf: nil, twoTower: tt, ranker: nil, mode: .twoTower)
            var mfTiming = MFTiming(), ttTiming = (embed: 0.0, retrieval: 0.0)
            let block = Refresh.retrieve(cold[...], data: d, history: history, scorers: scorers, config: config,
                                         threads: 2, mfTiming: &mfTiming, ttTiming: &ttTiming)
            return try cold.indices.map { k in
                let t = try #require(block.candidates(k, user: cold[k], data: d).twoTower)
                return Array(t.top.ids[(t.row * t.top.k)..<(t.row * t.top.k + min(10, Int(t.top.counts[t.row])))])
            }
        }
        let before = try top10(data), again = try top10(data), after = try top10(moved)
        #expect(before == again)
        #expect(before.allSatisfy { $0.count == 10 })
        let changed = zip(before, after).filter { $0 != $1 }.count
        #expect(changed * 10 >= cold.count * 8, "only \(changed) of \(cold.count) cold users' lists moved with their demographics")
    }

    /// The ranking features of a candidate are what they claim: the MF score x_u·y_v (z-scored over the user's
    /// candidates), the two-tower score e_u·e_v, the sources' scores, the video's prior and age.
    @Test func rankingFeaturesAreTheModelsScores() throws {
        let dir = TempDir(); defer { dir.remove() }
        let (config, data, history, asOf, model) = try trainedSmallModels(GeneratorConfig(users: 600, videos: 300, seed: 4), dir)
        let mf = MFSource(model: model, data: data, config: config, threads: 2)
        let tt = TwoTowerSource(model: try #require(model.twoTower), info: try #require(model.info.twoTower), name: "m",
                                data: data, history: history, asOf: asOf, config: config, threads: 2)
        let scorers = Scorers(data: data, asOf: asOf, config: config, mf: mf, twoTower: tt, ranker: model.info.ranker)
        #expect(scorers.mode == .learned)
        let popularity = Popularity(data, asOf: asOf, config: config, length: 500)
        let users = (0..<Int32(data.users.count)).filter { history.hasHistory(Int($0)) }.prefix(20)
        var mfTiming = MFTiming(), ttTiming = (embed: 0.0, retrieval: 0.0)
        let block = Refresh.retrieve(Array(users)[...], data: data, history: history, scorers: scorers, config: config,
                                     threads: 2, mfTiming: &mfTiming, ttTiming: &ttTiming)
        var scratch = Refresh.makeScratch(data, scorers: scorers, config: config)
        var checked = 0
        for (k, u) in users.enumerated() {
            let c = block.candidates(k, user: u, data: data)
            guard let cm = c.mf, let ct = c.twoTower else { continue }
            Refresh.gather(c, data: data, history: history, popularity: popularity, scorers: scorers,
                           perSource: config.refresh.candidatesPerSource, set: scratch.set)
            Refresh.features(c, data: data, scorers: scorers, set: scratch.set, into: &scratch.features,
                             headScores: &scratch.headScores)
            let n = scratch.set.count, dim = RankingFeatures.count
            // The item-to-item score from the model's weights: Σ over the user's engaged head videos.
            let ii = try #require(mf.itemItem)
            let engaged = (cm.block.rows.offsets[k]..<cm.block.rows.offsets[k + 1])
                .filter { cm.block.rows.values[$0] > 0 }.map { Int(mf.headPosition[Int(cm.block.rows.columns[$0])]) }
                .filter { $0 >= 0 }
            var mfScores: [Double] = [], iiScores: [Double] = []
            for i in 0..<n where mf.rowOfVideo[Int(scratch.set.video(i))] >= 0 {
                let r = Int(mf.rowOfVideo[Int(scratch.set.video(i))])
                mfScores.append((0..<mf.factors).reduce(0.0) { $0 + Double(cm.block.factors[k, $1]) * Double(mf.model.videos[r, $1]) })
                let h = Int(mf.headPosition[r])
                iiScores.append(h < 0 ? 0 : engaged.reduce(0.0) { $0 + Double(ii.weights[$1 * ii.count + h]) })
            }
            let iiMean = iiScores.reduce(0, +) / Double(max(1, iiScores.count))
            let iiSD = (iiScores.map { ($0 - iiMean) * ($0 - iiMean) }.reduce(0, +) / Double(max(1, iiScores.count))).squareRoot()
            let mean = mfScores.reduce(0, +) / Double(mfScores.count)
            let sd = (mfScores.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(mfScores.count)).squareRoot()
            var j = 0
            for i in 0..<n {
                let v = Int(scratch.set.video(i))
                let f = Array(scratch.features[(i * dim)..<((i + 1) * dim)])
                let eu = (0..<tt.dim).reduce(0.0) { $0 + Double(ct.embeddings[k, $1]) * Double(tt.videos[v, $1]) }
                #expect(abs(Double(f[2]) - eu) < 1e-4, "two-tower score of candidate \(i)")
                if mf.rowOfVideo[v] >= 0 {
                    let z = sd > 1e-9 ? (mfScores[j] - mean) / sd : 0   // a user whose only MF signal is a dislike: x_u = 0
                    #expect(f[1] == 1 && abs(Double(f[0]) - z) < 1e-3, "MF z-score of candidate \(i): \(f[0]) vs \(z)")
                    let zii = iiSD > 1e-9 ? (iiScores[j] - iiMean) / iiSD : 0
                    #expect(abs(Double(f[14]) - zii) < 1e-3, "item-item z-score of candidate \(i): \(f[14]) vs \(zii)")
                    j += 1
                } else {
                    #expect(f[1] == 0 && f[0] == 0)
                }
                #expect(f[5] == scratch.set.score(i, .twoTower) && f[6] == scratch.set.score(i, .popularRegion))
                #expect(f[10] == scorers.prior[v] && f[11] == scorers.age[v])
            }
            // mf_ranking is the MF ranking's own score: ordering by it gives rankByMF's order.
            var top = TopK(k: 50)
            Refresh.rankByMF(cm, set: scratch.set, prior: scorers.prior, top: &top, headScores: &scratch.headScores,
                             blend: { _ in 0 })
            let byFeature = (0..<n).sorted {
                let (a, b) = (scratch.features[$0 * dim + 15], scratch.features[$1 * dim + 15])
                return a != b ? a > b : scratch.set.video($0) < scratch.set.video($1)
            }
            let known = byFeature.filter { mf.rowOfVideo[Int(scratch.set.video($0))] >= 0 }.prefix(20).map { scratch.set.video($0) }
            #expect(top.sorted().prefix(known.count).map(\.video) == Array(known))
            checked += 1
        }
        #expect(checked >= 10)
    }
}
