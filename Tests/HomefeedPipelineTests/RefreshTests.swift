import Foundation
import Testing
@testable import HomefeedCore
@testable import HomefeedData
@testable import HomefeedPipeline
@testable import HomefeedStore
import HomefeedTestSupport

/// Runs the refresh on the standard fixture (docs in HomefeedTestSupport/Fixtures.swift) into a fresh store.
func refreshFixture(_ fixture: FixtureDataset = StandardFixture.make(), dir: TempDir, config: HomefeedConfig = HomefeedConfig(),
                    now: Int64 = StandardFixture.t0, configure: (inout RefreshOptions) -> Void = { _ in }) throws -> RefreshSummary {
    let data = dir.sub("data")
    if !FileManager.default.fileExists(atPath: data + "/users.csv") { try fixture.write(to: data) }
    var opt = RefreshOptions(dataDir: data, storeDir: dir.sub("store"))
    opt.now = now
    opt.activeDays = 0
    opt.quiet = true
    configure(&opt)
    return try Refresh.run(opt, config: config)
}

/// `homefeed-batch train` on the fixture into `store` (shard jobs need a model to share).
@discardableResult
func trainFixture(_ fixture: FixtureDataset = StandardFixture.make(), dir: TempDir, store: String = "store",
                  config: HomefeedConfig = HomefeedConfig()) throws -> MFModelInfo {
    let data = dir.sub("data")
    if !FileManager.default.fileExists(atPath: data + "/users.csv") { try fixture.write(to: data) }
    var opt = TrainOptions(dataDir: data, storeDir: dir.sub(store))
    opt.quiet = true
    return try Train.run(opt, config: config).info
}

func ids(_ list: RecommendationList?, _ version: StoreVersion) -> [String] {
    (list?.videos ?? []).map { version.videos.ids[Int($0)] }
}

/// The MF ranking alone (no item-to-item model, no learned ranker): what tests asserting an MF-specific order use —
/// on the fixture's ten videos the held-back choice between the models is a coin toss.
func mfAloneConfig() -> HomefeedConfig {
    var c = HomefeedConfig()
    c.itemItem.videos = 0
    c.rank.ranker = "mf"
    return c
}

@Suite struct RefreshTests {
    @Test func personalizedListsExcludeSeenAndUnavailable() throws {
        let dir = TempDir(); defer { dir.remove() }
        let summary = try refreshFixture(dir: dir, config: mfAloneConfig())
        #expect(summary.outcome == .published(pruned: []))
        let store = VersionedStore(root: dir.sub("store"))
        let v = try StoreVersion(store: store, name: try #require(try store.current()))
        // u1 watched v0, liked v1, disliked v2: none of them comes back; DE-only... v6-v9 are German but allowed.
        let u1 = try #require(try v.userList("u1"))
        let u1ids = ids(u1, v)
        #expect(!u1ids.contains("v0") && !u1ids.contains("v1") && !u1ids.contains("v2"))
        #expect(u1ids.first == "v3")                     // the most popular unseen English video in the US
        #expect(u1.country == CountryCode("US"))
        #expect(u1.language == "en")
        #expect(Set(u1ids).count == u1ids.count)
        #expect(zip(u1.scores, u1.scores.dropFirst()).allSatisfy { $0 >= $1 })   // best first
        // u3 (DE) never gets v4 (allow-listed to US) or v5 (blocked in DE), nor what they watched.
        let u3ids = ids(try v.userList("u3"), v)
        #expect(!u3ids.isEmpty)
        for banned in ["v4", "v5", "v6", "v7"] { #expect(!u3ids.contains(banned)) }
        #expect(u3ids.first == "v8")
        // u9 has no history: no personalized list (the daemon serves fallbacks).
        #expect(try v.userList("u9") == nil)
        #expect(v.metadata.counts.personalizedUsers == 63)  // u1, u2, u3 and 60 crowd users
        #expect(v.metadata.counts.activeUsers == 63)
        #expect(v.metadata.asOf == StandardFixture.t0)
        #expect(v.metadata.stages.map(\.name).contains("rank"))
    }

    @Test func popularListsPerRegionLanguageAndGlobal() throws {
        let dir = TempDir(); defer { dir.remove() }
        _ = try refreshFixture(dir: dir)
        let store = VersionedStore(root: dir.sub("store"))
        let v = try StoreVersion(store: store, name: try #require(try store.current()))
        #expect(Array(ids(v.popularList(.region, "US"), v).prefix(5)) == ["v0", "v1", "v3", "v4", "v5"])
        let de = ids(v.popularList(.region, "DE"), v)
        #expect(Array(de.prefix(3)) == ["v6", "v7", "v8"])
        #expect(!de.contains("v4") && !de.contains("v5"))    // unavailable in DE, even though DE users watched v5
        #expect(Array(ids(v.popularList(.language, "de"), v).prefix(3)) == ["v6", "v7", "v8"])
        #expect(ids(v.popularList(.global), v).first == "v0")
        #expect(v.popularList(.region, "FR") == nil)
    }

    @Test func activeWindowSelectsRecentUsers() throws {
        var f = StandardFixture.make()
        f.user("old", "US", "en")
        f.watch("old", "v0", at: StandardFixture.t0 - 40 * 86400)
        let dir = TempDir(); defer { dir.remove() }
        let s = try refreshFixture(f, dir: dir) { $0.activeDays = 30 }
        #expect(s.metadata.counts.activeUsers == 63)          // "old" was last active 40 days ago
        let dir2 = TempDir(); defer { dir2.remove() }
        let s2 = try refreshFixture(f, dir: dir2) { $0.activeDays = 0 }
        #expect(s2.metadata.counts.activeUsers == 64)
    }

    @Test func deterministicAcrossThreadCounts() throws {
        let d1 = TempDir(), d2 = TempDir(); defer { d1.remove(); d2.remove() }
        var c1 = HomefeedConfig(); c1.refresh.threads = 1; c1.refresh.blockUsers = 7
        var c2 = HomefeedConfig(); c2.refresh.threads = 4; c2.refresh.blockUsers = 4096
        _ = try refreshFixture(dir: d1, config: c1)
        _ = try refreshFixture(dir: d2, config: c2)
        let o1 = d1.sub("out.tsv"), o2 = d2.sub("out.tsv")
        #expect(try Export.run(storeDir: d1.sub("store"), out: o1) == 63)
        #expect(try Export.run(storeDir: d2.sub("store"), out: o2) == 63)
        #expect(FileManager.default.contents(atPath: o1) == FileManager.default.contents(atPath: o2))
    }

    @Test func exportWritesOneLinePerUserBestFirst() throws {
        let dir = TempDir(); defer { dir.remove() }
        _ = try refreshFixture(dir: dir, config: mfAloneConfig())
        let out = dir.sub("recs.tsv")
        try Export.run(storeDir: dir.sub("store"), out: out)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 63)
        let u1 = try #require(lines.first { $0.hasPrefix("u1\t") })
        #expect(u1.split(separator: "\t")[1].split(separator: ",").first == "v3")
    }

    /// `export --sources`: the same lists, each entry as video:source:score, scores falling down the list; the
    /// sources add up to the version's source counts, and the version records what ranked.
    @Test func exportWithSourcesNamesWhoProposedEachEntry() throws {
        let dir = TempDir(); defer { dir.remove() }
        let summary = try refreshFixture(dir: dir, config: mfAloneConfig())
        #expect(summary.metadata.ranking == "mf")
        let plain = dir.sub("recs.tsv"), detailed = dir.sub("detailed.tsv")
        try Export.run(storeDir: dir.sub("store"), out: plain)
        #expect(try Export.run(storeDir: dir.sub("store"), out: detailed, sources: true) == 63)
        let plainLines = try String(contentsOfFile: plain, encoding: .utf8).split(separator: "\n")
        let lines = try String(contentsOfFile: detailed, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == plainLines.count)
        var counted: [String: Int] = [:]
        for (line, p) in zip(lines, plainLines) {
            let parts = line.split(separator: "\t"), entries = parts[1].split(separator: ",")
            #expect(parts[0] == p.split(separator: "\t")[0])
            #expect(entries.map { $0.split(separator: ":")[0] } == p.split(separator: "\t")[1].split(separator: ","))
            var previous = Float.infinity
            for e in entries {
                let f = e.split(separator: ":")
                #expect(f.count == 3 && CandidateSource.allCases.contains { $0.name == f[1] }, "\(e)")
                counted[String(f[1]), default: 0] += 1
                let score = try #require(Float(String(f[2])))
                #expect(score <= previous); previous = score
            }
        }
        #expect(counted == summary.metadata.counts.sources && counted["mf", default: 0] > 0)
    }

    @Test func sourceMixListsSharesLargestFirst() {
        #expect(Refresh.sourceMix(["fresh": 1, "mf": 1998, "two_tower": 1]) == "mf 99.9 %, fresh 0.050 %, two_tower 0.050 %")
        #expect(Refresh.sourceMix(["mf": 199_999, "fresh": 1]) == "mf 100.0 %, fresh 1 of 200000")
        #expect(Refresh.sourceMix([:]) == "")
    }

    @Test func shardedRunsServeTheSameListsAsUnsharded() throws {
        let dir = TempDir(); defer { dir.remove() }
        _ = try refreshFixture(dir: dir)
        try trainFixture(dir: dir, store: "sharded")   // the same data and seed: the same model as the unsharded run
        let n = 3
        for i in 0..<n {
            let s = try refreshFixture(dir: dir) { o in
                o.storeDir = dir.sub("sharded"); o.shard = try? ShardSpec(index: i, count: n); o.shardOut = dir.sub("shards")
            }
            #expect(s.outcome == nil)
        }
        // No version exists until the ingest step.
        #expect(VersionedStore(root: dir.sub("sharded")).versions().isEmpty)
        let merged = try refreshFixture(dir: dir) { o in o.storeDir = dir.sub("sharded"); o.ingestShards = dir.sub("shards") }
        #expect(merged.metadata.counts.personalizedUsers == 63)
        #expect(merged.metadata.shards == n)
        let wholeStore = VersionedStore(root: dir.sub("store"))
        let served = try #require(try wholeStore.current())
        let whole = try StoreVersion(store: wholeStore, name: served)
        #expect(merged.metadata.counts.sources == whole.metadata.counts.sources && !merged.metadata.counts.sources.isEmpty)
        #expect(merged.metadata.ranking == whole.metadata.ranking && merged.metadata.ranking != nil)
        let a = dir.sub("a.tsv"), b = dir.sub("b.tsv")
        try Export.run(storeDir: dir.sub("store"), out: a)
        try Export.run(storeDir: dir.sub("sharded"), out: b)
        #expect(FileManager.default.contents(atPath: a) == FileManager.default.contents(atPath: b))
    }

    /// `[rank] ranker_split` picks the fold the ranking is fitted and chosen on; the model records which.
    @Test func rankerFoldIsRecordedWithTheModel() throws {
        for split in ["random", "time"] {
            let dir = TempDir(); defer { dir.remove() }
            var c = HomefeedConfig(); c.rank.rankerSplit = split
            let fit = try #require(try trainFixture(dir: dir, config: c).rankerFit)
            #expect(fit.split == split)
            #expect(fit.users > 0 && fit.positives > 0 && fit.heldOutShare > 0 && fit.heldOutShare < 0.2)
        }
    }

    @Test func ingestRefusesShardsOfAnotherRunAndKeepsTheFiles() throws {
        let dir = TempDir(); defer { dir.remove() }
        try trainFixture(dir: dir)
        for i in 0..<2 {
            _ = try refreshFixture(dir: dir) { o in o.shard = try? ShardSpec(index: i, count: 2); o.shardOut = dir.sub("shards") }
        }
        // Another --now than the shard jobs: refused, naming the shard and both times.
        do {
            _ = try refreshFixture(dir: dir, now: StandardFixture.t0 + 3600) { o in o.ingestShards = dir.sub("shards") }
            Issue.record("expected an error")
        } catch let e as HomefeedError {
            #expect(e.message.contains("shard 0/2") && e.message.contains("--now"))
        }
        // Another configuration: refused too.
        var other = HomefeedConfig(); other.refresh.listSize = 50
        #expect(throws: HomefeedError.self) {
            _ = try refreshFixture(dir: dir, config: other) { o in o.ingestShards = dir.sub("shards") }
        }
        // A manifest from before store format 2 (no storeFormat): its keys hash differently, so it is refused.
        let manifest = dir.sub("shards") + "/users-1-of-2.sst.json"
        let saved = try #require(FileManager.default.contents(atPath: manifest))
        var json = try #require(try JSONSerialization.jsonObject(with: saved) as? [String: Any])
        #expect(json["storeFormat"] as? Int == 2)
        json.removeValue(forKey: "storeFormat")
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: manifest))
        do {
            _ = try refreshFixture(dir: dir) { o in o.ingestShards = dir.sub("shards") }
            Issue.record("expected an error")
        } catch let e as HomefeedError {
            #expect(e.message.contains("shard 1/2 has store format 1, this build writes format 2"), "\(e.message)")
        }
        try saved.write(to: URL(fileURLWithPath: manifest))
        // The matching ingest works, and the shard files stay for a retry.
        let ok = try refreshFixture(dir: dir) { o in o.ingestShards = dir.sub("shards") }
        #expect(ok.metadata.counts.personalizedUsers == 63)
        #expect(FileManager.default.fileExists(atPath: dir.sub("shards") + "/users-0-of-2.sst"))
        let again = try refreshFixture(dir: dir) { o in o.ingestShards = dir.sub("shards") }
        #expect(again.metadata.counts.personalizedUsers == 63)
    }

    @Test func ingestRefusesAnIncompleteShardSet() throws {
        let dir = TempDir(); defer { dir.remove() }
        try trainFixture(dir: dir)
        _ = try refreshFixture(dir: dir) { o in o.shard = try? ShardSpec(index: 0, count: 2); o.shardOut = dir.sub("shards") }
        do {
            _ = try refreshFixture(dir: dir) { o in o.ingestShards = dir.sub("shards") }
            Issue.record("expected an error")
        } catch let e as HomefeedError {
            #expect(e.message.contains("missing 1"))
        }
        #expect(try VersionedStore(root: dir.sub("store")).current() == nil)
    }

    @Test func publishGuardRefusesASharpDrop() throws {
        let dir = TempDir(); defer { dir.remove() }
        let first = try refreshFixture(dir: dir)
        let store = VersionedStore(root: dir.sub("store"))
        let served = try store.current()
        // The same data seen from 60 days later with a 1-day window: nobody is active.
        do {
            _ = try refreshFixture(dir: dir, now: StandardFixture.t0 + 60 * 86400) { $0.activeDays = 1 }
            Issue.record("expected the publish guard to refuse")
        } catch let e as HomefeedError {
            #expect(e.message.contains("publish guard"))
            #expect(e.message.contains("63"))
        }
        #expect(try store.current() == served)
        #expect(first.metadata.counts.personalizedUsers == 63)
        // --force publishes it anyway.
        let forced = try refreshFixture(dir: dir, now: StandardFixture.t0 + 60 * 86400) { $0.activeDays = 1; $0.force = true }
        #expect(forced.outcome != nil)
        #expect(try store.current() != served)
        // The rollback target is the version served before, never the refused one (built, kept, never served).
        let versions = store.versions()
        #expect(versions.count == 3)
        #expect(try store.previousServed() == served)
        #expect(store.servedHistory() == [served!, versions[2]])
        // Pruning to one version keeps the served one and the rollback target.
        let pruned = try store.prune(keep: 1)
        #expect(pruned == [versions[1]])
    }

    @Test func pinnedStoreBuildsButDoesNotPublish() throws {
        let dir = TempDir(); defer { dir.remove() }
        _ = try refreshFixture(dir: dir)
        let store = VersionedStore(root: dir.sub("store"))
        let v1 = try #require(try store.current())
        try store.pin(v1)
        let s = try refreshFixture(dir: dir)
        #expect(s.outcome == .pinned(v1))
        #expect(try store.current() == v1)
        #expect(store.versions().count == 2)
        try store.unpin()
        _ = try refreshFixture(dir: dir)
        #expect(try store.current() == store.versions().last)
    }

    @Test func badRowsAreCountedAndRecorded() throws {
        let dir = TempDir(); defer { dir.remove() }
        try StandardFixture.make().write(to: dir.sub("data"))
        let path = dir.sub("data") + "/interactions.csv"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text += "u1,nope,watch,10,\(StandardFixture.t0),mobile,\n"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        var config = HomefeedConfig(); config.data.maxBadRowFraction = 0.5
        let s = try refreshFixture(dir: dir, config: config)
        #expect(s.metadata.counts.badRows == 1)
    }
}

@Suite struct CandidateTests {
    @Test func topKKeepsBestWithDeterministicTies() {
        var t = TopK(k: 3)
        for (s, v) in [(0.5, 9), (0.9, 1), (0.5, 2), (0.1, 3), (0.9, 0), (0.7, 5)] as [(Float, UInt32)] {
            t.offer(score: s, video: v, candidate: Int32(v))
        }
        #expect(t.sorted().map(\.video) == [0, 1, 5])
        var u = TopK(k: 2)
        for v: UInt32 in [7, 3, 5] { u.offer(score: 1, video: v, candidate: 0) }
        #expect(u.sorted().map(\.video) == [3, 5])
    }

    @Test func candidateSetMergesSourcesAndResetsInO1() {
        let set = CandidateSet(videoCount: 10, capacity: 3)
        set.reset()
        set.exclude(4)
        set.add(2, source: .popularRegion, score: 0.5)
        set.add(2, source: .popularGlobal, score: 0.25)
        set.add(7, source: .popularGlobal, score: 1)
        #expect(set.count == 2)
        #expect(set.isExcluded(4))
        #expect(set.score(0, .popularRegion) == 0.5 && set.score(0, .popularGlobal) == 0.25)
        #expect(set.score(1, .popularRegion) == 0)
        #expect([set.firstSource(0), set.firstSource(1)] == [.popularRegion, .popularGlobal])
        set.add(8, source: .popularGlobal, score: 1)
        set.add(9, source: .popularGlobal, score: 1)      // beyond capacity: ignored
        #expect(set.count == 3 && set.video(2) == 8)
        set.reset()
        #expect(set.count == 0 && !set.isExcluded(4))
        set.add(7, source: .popularLanguage, score: 0.5)  // a new user: slot reused, old scores cleared
        #expect(set.score(0, .popularGlobal) == 0 && set.score(0, .popularLanguage) == 0.5)
    }
}
