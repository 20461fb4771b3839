import Foundation
import HomefeedCore
import HomefeedData
import HomefeedSynthetic
import HomefeedTestSupport
import Testing
@testable import HomefeedEval

@Suite struct TimeSplitTests {
    /// Users a, b, c, d; videos v0…v5 (600 s). Interactions in file order (# = file position):
    ///
    ///     #0 a v0 watch 600 t100   #1 a v1 watch 100 t300 (short: not relevant)   #2 a v2 like t200
    ///     #3 a v3 watch 600 t400   #4 a v4 dislike t400 (same time as #3, later in the file)
    ///     #5 b v0 watch 600 t500   #6 b v5 like t50   #7 c v1 watch 600 t10   #8 a v0 like t450
    ///     #9 d v2 impression t1    #10 d v2 watch 600 t2
    ///
    /// testFraction 0.4, train = round(0.6 n) half to even:
    ///   a: n = 6 → 4 train. By (time, file): #0 t100, #2 t200, #1 t300, #3 t400, #4 t400, #8 t450
    ///      → train #0 #2 #1 #3, test #4 (dislike) #8 (like v0) → T_a = {v0}, which a watched in train (#0).
    ///   b: n = 2 → round(1.2) = 1 train: #6 (t50); test #5 → T_b = {v0}.
    ///   c: n = 1 → round(0.6) = 1 train, no test.
    ///   d: n = 2 → 1 train: the impression #9 (any interaction is history: d is warm); test #10 → T_d = {v2}.
    static func fixtureData() -> FixtureDataset {
        var f = fixture(users: ["a", "b", "c", "d"], videos: ["v0", "v1", "v2", "v3", "v4", "v5"])
        f.watch("a", "v0", at: 100); f.watch("a", "v1", at: 300, seconds: 100); f.event("a", "v2", "like", at: 200)
        f.watch("a", "v3", at: 400); f.event("a", "v4", "dislike", at: 400)
        f.watch("b", "v0", at: 500); f.event("b", "v5", "like", at: 50); f.watch("c", "v1", at: 10)
        f.event("a", "v0", "like", at: 450)
        f.event("d", "v2", "impression", at: 1); f.watch("d", "v2", at: 2)
        return f
    }

    @Test func lastFractionByTimeTiesByFileOrder() throws {
        let dir = TempDir(); defer { dir.remove() }
        let data = try load(Self.fixtureData(), dir)
        let s = try Holdout.timeSplit(data, testFraction: 0.4)
        // Train: the same tables, the kept interactions in file order (#0 #1 #2 #3 #6 #7 #9).
        #expect(s.train.users.count == 4 && s.train.videos.count == 6)
        #expect(s.train.interactions.timestamp == [100, 300, 200, 400, 50, 10, 1])
        #expect(s.train.interactions.event == [.watch, .watch, .like, .watch, .like, .watch, .impression])
        // Evaluated users a, b, d (indices 0, 1, 3) with their truths; nobody is cold.
        #expect(s.test.users.users == [0, 1, 3])
        #expect(s.test.users.map { videoIDs($0.truth, data) } == [["v0"], ["v0"], ["v2"]])
        #expect(s.test.coldUsers.isEmpty)
        // What each saw in train (watched, liked or disliked; d's impression is not "seen").
        #expect(videoIDs(s.test.users[0].seen, data) == ["v0", "v1", "v2", "v3"])
        #expect(videoIDs(s.test.users[1].seen, data) == ["v5"])
        #expect(s.test.users[2].seen.isEmpty)
        #expect(s.test.users.find(user: 1)?.truth.first == 0)
        #expect(s.test.users.find(user: 2) == nil)
        let st = s.test.stats
        #expect(st.method == "time" && st.testFraction == 0.4 && st.seed == nil)
        #expect(st.trainInteractions == 7 && st.testInteractions == 4 && st.relevantTestInteractions == 3)
        #expect(st.testUsers == 3 && st.usersWithRelevantTest == 3 && st.evaluatedUsers == 3 && st.coldUsers == 0)
        #expect(st.truthPairs == 3 && st.truthSeenInTrain == 1 && st.usersLeftWithoutTruth == 0)
    }

    @Test func droppingSeenVideosFromTheTruth() throws {
        let dir = TempDir(); defer { dir.remove() }
        let data = try load(Self.fixtureData(), dir)
        let s = try Holdout.timeSplit(data, testFraction: 0.4, options: TestSetOptions(dropSeenInTrain: true))
        // a's only test video (v0) was watched in train: a is left without truth and is not evaluated.
        #expect(s.test.users.users == [1, 3])
        #expect(s.test.stats.truthSeenInTrain == 1 && s.test.stats.usersLeftWithoutTruth == 1)
        #expect(s.test.stats.truthPairs == 2)
    }

    @Test func coldUsersAndHalfToEvenRounding() throws {
        // testFraction 0.5: n = 1 → round(0.5) = 0 train (cold); n = 3 → round(1.5) = 2; n = 5 → round(2.5) = 2.
        #expect(Holdout.trainCount(1, testFraction: 0.5) == 0)
        #expect(Holdout.trainCount(3, testFraction: 0.5) == 2)
        #expect(Holdout.trainCount(5, testFraction: 0.5) == 2)
        #expect((1...10).map { Holdout.trainCount($0, testFraction: 0.2) } == [1, 2, 2, 3, 4, 5, 6, 6, 7, 8])
        var f = fixture(users: ["x", "y"], videos: ["v0", "v1", "v2"])
        f.watch("x", "v0", at: 10)                                                  // x: n = 1 → cold
        f.watch("y", "v0", at: 1); f.watch("y", "v1", at: 2); f.watch("y", "v2", at: 3)   // y: train v0, v1; test v2
        let dir = TempDir(); defer { dir.remove() }
        let data = try load(f, dir)
        let s = try Holdout.timeSplit(data, testFraction: 0.5)
        #expect(s.test.coldUsers.users == [0] && videoIDs(s.test.coldUsers[0].truth, data) == ["v0"])
        #expect(s.test.users.users == [1] && videoIDs(s.test.users[0].truth, data) == ["v2"])
        #expect(s.test.stats.coldUsers == 1 && s.test.stats.evaluatedUsers == 1)
        #expect(throws: (any Error).self) { try Holdout.timeSplit(data, testFraction: 0) }
        #expect(throws: (any Error).self) { try Holdout.timeSplit(data, testFraction: 1) }
    }

    /// The shared evaluator's chrono split on the same rows, pinned: `rec_eval.py split --protocol chrono_user`
    /// (last 20% per user by timestamp, ties by file order) on this file (user item rating timestamp, file order):
    ///
    ///     1 10 5, 2 20 7, 3 30 2, 4 40 8, 5 50 4, 6 60 3, 1 11 3, 2 21 7, 3 31 1, 4 41 7, 6 61 1, 1 12 3, 2 22 7,
    ///     4 42 6, 6 62 3, 1 13 9, 4 43 5, 6 63 2, 1 14 1, 4 44 4, 6 64 2, 4 45 3, 6 65 5, 4 46 2, 6 66 1, 4 47 1,
    ///     6 67 4, 6 68 4, 6 69 4, 6 70 6, 6 71 6, 6 72 0        (as "user item timestamp"; rating 4)
    ///
    /// gave train 25 rows, test 7: (1, 13) (2, 22) (4, 40) (4, 41) (6, 65) (6, 70) (6, 71).
    @Test func matchesTheSharedChronoSplit() throws {
        let rows: [(Int, Int, Int64)] = [
            (1, 10, 5), (2, 20, 7), (3, 30, 2), (4, 40, 8), (5, 50, 4), (6, 60, 3), (1, 11, 3), (2, 21, 7), (3, 31, 1),
            (4, 41, 7), (6, 61, 1), (1, 12, 3), (2, 22, 7), (4, 42, 6), (6, 62, 3), (1, 13, 9), (4, 43, 5), (6, 63, 2),
            (1, 14, 1), (4, 44, 4), (6, 64, 2), (4, 45, 3), (6, 65, 5), (4, 46, 2), (6, 66, 1), (4, 47, 1), (6, 67, 4),
            (6, 68, 4), (6, 69, 4), (6, 70, 6), (6, 71, 6), (6, 72, 0)]
        var f = fixture(users: (1...6).map { "\($0)" }, videos: Array(Set(rows.map { "\($0.1)" })).sorted())
        for (u, i, t) in rows { f.watch("\(u)", "\(i)", at: t) }
        let dir = TempDir(); defer { dir.remove() }
        let data = try load(f, dir)
        let s = try Holdout.timeSplit(data, testFraction: 0.2)
        #expect(s.test.stats.trainInteractions == 25 && s.test.stats.testInteractions == 7)
        var pairs: [String] = []
        for u in s.test.users { for v in videoIDs(u.truth, data) { pairs.append("\(data.users.ids[u.user]) \(v)") } }
        #expect(pairs == ["1 13", "2 22", "4 40", "4 41", "6 65", "6 70", "6 71"])
    }
}

@Suite struct RandomSplitTests {
    @Test func seededPerUserAndIndependentOfOtherUsers() throws {
        // a: 10 full watches of v0…v9 at t = 1…10; testFraction 0.3 → 7 train, 3 test.
        var solo = fixture(users: ["a"], videos: (0..<10).map { "v\($0)" })
        for i in 0..<10 { solo.watch("a", "v\(i)", at: Int64(i + 1)) }
        // The same user between other users' rows (a's own rows keep their order).
        var mixed = fixture(users: ["b", "a", "c"], videos: (0..<10).map { "v\($0)" })
        for i in 0..<10 {
            mixed.watch("b", "v\(9 - i)", at: Int64(100 + i))
            mixed.watch("a", "v\(i)", at: Int64(i + 1))
            if i % 3 == 0 { mixed.watch("c", "v\(i)", at: Int64(50 + i)) }
        }
        let dir = TempDir(); defer { dir.remove() }
        let d1 = try load(solo, dir, "solo"), d2 = try load(mixed, dir, "mixed")
        let s1 = try Holdout.randomSplit(d1, testFraction: 0.3, seed: 42)
        let s2 = try Holdout.randomSplit(d2, testFraction: 0.3, seed: 42)
        let a1 = videoIDs(s1.test.users[0].truth, d1)
        let a2 = videoIDs(try #require(s2.test.users.find(user: 1)).truth, d2)
        #expect(a1.count == 3 && s1.train.interactions.count == 7)
        #expect(a1 == a2)
        // Pinned, and recomputed independently in Python from the documented recipe (docs/EVALUATION.md):
        // h = FNV-1a 64 of "a" from basis ⊕ mix64(42); SeededRandom(h) (xoshiro256**); Fisher–Yates over the file
        // positions 0…9 from the back, j = nextInt(i + 1); positions 7…9 are test → {0, 1, 4}.
        // A change here changes every random split ever made.
        #expect(a1 == ["v0", "v1", "v4"])
        // Same seed, same split; another seed, another draw.
        #expect(videoIDs(try Holdout.randomSplit(d1, testFraction: 0.3, seed: 42).test.users[0].truth, d1) == a1)
        let others = (1...5).map { seed in
            videoIDs((try? Holdout.randomSplit(d1, testFraction: 0.3, seed: UInt64(seed)))?.test.users[0].truth ?? [], d1)
        }
        #expect(others.contains { $0 != a1 })
        #expect(s2.test.stats.method == "random" && s2.test.stats.seed == 42)
    }

    @Test func generatedDatasetCountsAndDeterminism() throws {
        let dir = TempDir(); defer { dir.remove() }
        let path = dir.sub("gen")
        _ = try Generator.generate(GeneratorConfig(users: 300, videos: 120, seed: 7), out: path, progress: false)
        let data = try DatasetLoader.load(directory: path, config: HomefeedConfig().data, progress: false)
        let a = try Holdout.randomSplit(data, testFraction: 0.2, seed: 9)
        let b = try Holdout.randomSplit(data, testFraction: 0.2, seed: 9)
        #expect(a.train.interactions.timestamp == b.train.interactions.timestamp)
        #expect(a.train.interactions.video == b.train.interactions.video)
        #expect(a.test.users.users == b.test.users.users)
        // Per user: exactly n − trainCount(n) interactions left train.
        var n = [Int](repeating: 0, count: data.users.count), kept = n
        for u in data.interactions.user { n[Int(u)] += 1 }
        for u in a.train.interactions.user { kept[Int(u)] += 1 }
        for u in 0..<data.users.count { #expect(kept[u] == Holdout.trainCount(n[u], testFraction: 0.2)) }
        #expect(a.test.stats.trainInteractions + a.test.stats.testInteractions == data.interactions.count)
        // Every ground-truth video came from a relevant interaction of that user that is not in train.
        #expect(a.test.users.count > 0)
        #expect(a.test.stats.truthPairs == a.test.users.relevantPairs + a.test.coldUsers.relevantPairs)
        let t = try Holdout.timeSplit(data, testFraction: 0.2)
        #expect(t.train.interactions.count == a.train.interactions.count)   // same per-user counts, other rows
    }

    /// With `heldOutUsers` < 1 only a seeded share of the users hold interactions out — the same users in both splits
    /// (the ranker's fold samples them alike) — and the time split holds out exactly each such user's newest.
    @Test func heldOutUsersAreTheSameSeededShareInBothSplits() throws {
        let dir = TempDir(); defer { dir.remove() }
        let path = dir.sub("gen")
        _ = try Generator.generate(GeneratorConfig(users: 300, videos: 120, seed: 7), out: path, progress: false)
        let data = try DatasetLoader.load(directory: path, config: HomefeedConfig().data, progress: false)
        let r = try Holdout.randomSplit(data, testFraction: 0.3, seed: 5, heldOutUsers: 0.4)
        let t = try Holdout.timeSplit(data, testFraction: 0.3, seed: 5, heldOutUsers: 0.4)
        var n = [Int](repeating: 0, count: data.users.count), keptR = n, keptT = n
        for u in data.interactions.user { n[Int(u)] += 1 }
        for u in r.train.interactions.user { keptR[Int(u)] += 1 }
        for u in t.train.interactions.user { keptT[Int(u)] += 1 }
        let held = (0..<data.users.count).filter { keptR[$0] < n[$0] }
        #expect(held == (0..<data.users.count).filter { keptT[$0] < n[$0] })
        let active = (0..<data.users.count).filter { Holdout.trainCount(n[$0], testFraction: 0.3) < n[$0] }
        #expect(Double(held.count) > 0.25 * Double(active.count) && Double(held.count) < 0.55 * Double(active.count))
        for u in held { #expect(keptT[u] == Holdout.trainCount(n[u], testFraction: 0.3)) }
        // A held user's kept interactions are all at or before their held-out ones.
        var newestKept = [Int64](repeating: .min, count: data.users.count)
        for (u, ts) in zip(t.train.interactions.user, t.train.interactions.timestamp) { newestKept[Int(u)] = max(newestKept[Int(u)], ts) }
        let test = Set(t.test.users.users.map(Int.init))
        #expect(test.isSubset(of: Set(held)))
        var times = [[Int64]](repeating: [], count: data.users.count)
        for (u, ts) in zip(data.interactions.user, data.interactions.timestamp) { times[Int(u)].append(ts) }
        for u in held {
            let all = times[u].sorted()
            #expect(newestKept[u] == all[keptT[u] - 1] && newestKept[u] <= all[keptT[u]])
        }
    }
}

@Suite struct GivenTestFilesTests {
    /// Train folder: users a, b, c (c without interactions); videos v0, v1, v2.
    /// Test folder: users a, b, c, z (z unknown to train); videos v1 (1200 s here), v2, v9 (unknown to train).
    ///   a: watch v1 700 s (≥ 0.5 × 1200 of the test folder's duration: relevant), like v9 (outside the catalog)
    ///   b: watch v2 100 s (short: not relevant)        c: like v2 (no train history: cold)      z: like v1
    @Test func secondFolderIsTheTestSet() throws {
        var train = fixture(users: ["a", "b", "c"], videos: ["v0", "v1", "v2"])
        train.watch("a", "v0", at: 10); train.watch("b", "v1", at: 20)
        var test = fixture(users: ["z", "c", "b", "a"], videos: ["v9", "v2", "v1"])
        test.videos[2].duration = 1200
        test.watch("a", "v1", at: 30, seconds: 700); test.event("a", "v9", "like", at: 31)
        test.watch("b", "v2", at: 32, seconds: 100); test.event("c", "v2", "like", at: 33)
        test.event("z", "v1", "like", at: 34)
        let dir = TempDir(); defer { dir.remove() }
        let tr = try load(train, dir, "train"), te = try load(test, dir, "test")
        let s = try Holdout.givenTest(train: tr, test: te)
        #expect(s.train.interactions.count == 2)
        // a (index 0): T = {v1} plus v9 outside the catalog → |T| = 2.
        #expect(s.test.users.users == [0])
        #expect(videoIDs(s.test.users[0].truth, tr) == ["v1"] && s.test.users[0].unreachable == 1)
        #expect(s.test.users[0].relevantCount == 2)
        #expect(videoIDs(s.test.users[0].seen, tr) == ["v0"])
        // c (index 2) is cold.
        #expect(s.test.coldUsers.users == [2] && videoIDs(s.test.coldUsers[0].truth, tr) == ["v2"])
        let st = s.test.stats
        #expect(st.method == "files" && st.testFraction == nil)
        #expect(st.testInteractions == 5 && st.relevantTestInteractions == 3)   // z's like is not counted (unknown user)
        #expect(st.testUsers == 3 && st.unknownTestUsers == 1 && st.usersWithRelevantTest == 2)
        #expect(st.truthPairs == 3 && st.truthOutsideCatalog == 1)
        // The accumulator sees |T_a| = 2: a list [v1] scores recall 1/2.
        var acc = try MetricsAccumulator(ks: [1], catalogSize: tr.videos.count)
        acc.add(s.test.users[0], list: [tr.videos.ids.index(of: "v1")!])
        #expect(acc.report().at(1)?.recall == 0.5)
    }
}

@Suite struct HoldoutEndToEndTests {
    /// A generated dataset, time split, "most popular in train" lists through the accumulator: the invariants every
    /// report must satisfy.
    @Test func popularityBaselineOnAGeneratedDataset() throws {
        let dir = TempDir(); defer { dir.remove() }
        let path = dir.sub("gen")
        _ = try Generator.generate(GeneratorConfig(users: 400, videos: 150, seed: 11), out: path, progress: false)
        let data = try DatasetLoader.load(directory: path, config: HomefeedConfig().data, progress: false)
        let s = try Holdout.timeSplit(data, testFraction: 0.2)
        var count = [Int](repeating: 0, count: data.videos.count)
        for i in 0..<s.train.interactions.count where s.train.isRelevant(i, watchFraction: 0.5) {
            count[Int(s.train.interactions.video[i])] += 1
        }
        let popular = (0..<data.videos.count).sorted { count[$0] > count[$1] || (count[$0] == count[$1] && $0 < $1) }.map(Int32.init)
        var acc = try MetricsAccumulator(ks: [5, 20], catalogSize: data.videos.count, tags: TagVectors(data))
        for u in s.test.users {
            let seen = Set(u.seen)
            acc.add(u, list: popular.lazy.filter { !seen.contains($0) }.prefix(20))
        }
        let r = acc.report(label: "popularity", split: s.test.stats)
        #expect(r.testUsers == s.test.users.count && r.scoredUsers == r.testUsers && r.seenInTrainRecommended == 0)
        let m5 = try #require(r.at(5)), m20 = try #require(r.at(20))
        for m in [m5, m20] {
            for v in [m.precision, m.recall, m.map, m.mapAtK, m.ndcg, m.hitRate, m.coverage] { #expect(v >= 0 && v <= 1) }
            #expect(m.map <= m.mapAtK + 1e-12)                  // ÷ |T_u| ≤ ÷ min(|T_u|, k)
            #expect(m.diversity.map { $0 >= 0 && $0 <= 1 + 1e-12 } ?? false)
        }
        #expect(m5.recall <= m20.recall && m5.hitRate <= m20.hitRate && m5.distinctVideos <= m20.distinctVideos)
        #expect(m20.hitRate > 0)                                 // popularity finds something on planted data
        let table = r.table()
        #expect(table.hasPrefix("popularity\nsplit: time split, last 20.0% of each user's interactions; "
            + "\(s.test.stats.trainInteractions) train / \(s.test.stats.testInteractions) test interactions; "
            + "\(s.test.users.count) evaluated users, \(s.test.coldUsers.count) cold; "))
        #expect(try JSONDecoder().decode(EvalReport.self, from: r.json()).split == s.test.stats)
    }
}
