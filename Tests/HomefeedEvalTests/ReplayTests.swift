import Foundation
import HomefeedCore
import HomefeedData
import HomefeedStore
import HomefeedTestSupport
import Testing
@testable import HomefeedEval

/// A real RocksDB version built in a temp store (as the store tests do), replayed against a newer dataset.
///
/// Version (as of T): video table [v3, v0, vX, v1, v2, v5, v6] (vX, v5, v6 are unknown to the dataset; the order
/// differs from the dataset's, so ids must be matched as strings). User lists:
///     a: [v0, v1, v2]   b: [vX, v3]   c: [v1]   ghost: [v0] (not in the dataset)
/// Popular lists: region DE [v2, v0], language en [v1, v0], global [v3, v1].
///
/// Dataset: videos v0…v4 (600 s; v4 is newer than the version); users a, b, c, e (US/en), d (DE/de), f (FR/fr).
///     a watch v1 600 T−100 (before: seen)   e like v2 at T (not after T: outside the window)
///     a watch v1 600 T+10   a like v2 T+20   a watch v3 100 T+30 (short)   b watch v4 600 T+5   b like v3 T+6
///     c dislike v2 T+1      d watch v0 600 T+50   e like v1 T+60   f watch v1 600 T+70
/// Ground truth: a {v1, v2}, b {v3, v4}, d {v0}, e {v1}, f {v1}; c has no relevant interaction (not scored).
@Suite struct ReplayTests {
    static let t: Int64 = 1_717_200_000

    static func buildVersion(_ root: String) throws -> StoreVersion {
        let store = VersionedStore(root: root)
        let table = ["v3", "v0", "vX", "v1", "v2", "v5", "v6"]
        func idx(_ id: String) -> UInt32 { UInt32(table.firstIndex(of: id)!) }
        func list(_ ids: [String]) -> RecommendationList {
            RecommendationList(videos: ids.map(idx), scores: ids.indices.map { Float(10 - $0) },
                               sources: ids.map { _ in .popularRegion }, country: CountryCode("US")!, language: "en")
        }
        let b = try VersionBuilder(store: store, createdAt: t + 600)
        try b.writePopular([(.region, "DE", list(["v2", "v0"])), (.language, "en", list(["v1", "v0"])),
                            (.global, "", list(["v3", "v1"]))])
        let w = try b.userListWriter()
        let users = [("a", ["v0", "v1", "v2"]), ("b", ["vX", "v3"]), ("c", ["v1"]), ("ghost", ["v0"])]
            .sorted { StoreKey.user($0.0).lexicographicallyPrecedes(StoreKey.user($1.0)) }
        for (u, l) in users { try w.add(userID: u, list: list(l)) }
        try w.finish()
        try b.writeVideos(table.map { VideoRecord(id: $0, availability: 0, countries: [], publishedAt: 0, language: "en") })
        var meta = RunMetadata()
        meta.createdAt = t + 600
        meta.asOf = t
        try b.finish(metadata: meta)
        return try StoreVersion(store: store, name: b.name)
    }

    static func newerData() -> FixtureDataset {
        var f = FixtureDataset()
        for u in ["a", "b", "c"] { f.user(u, "US", "en") }
        f.user("d", "DE", "de"); f.user("e", "US", "en"); f.user("f", "FR", "fr")
        for v in ["v0", "v1", "v2", "v3", "v4"] { f.video(v, "en", published: 0) }
        f.watch("a", "v1", at: t - 100); f.event("e", "v2", "like", at: t)
        f.watch("a", "v1", at: t + 10); f.event("a", "v2", "like", at: t + 20); f.watch("a", "v3", at: t + 30, seconds: 100)
        f.watch("b", "v4", at: t + 5); f.event("b", "v3", "like", at: t + 6)
        f.event("c", "v2", "dislike", at: t + 1)
        f.watch("d", "v0", at: t + 50); f.event("e", "v1", "like", at: t + 60); f.watch("f", "v1", at: t + 70)
        return f
    }

    private func close(_ a: Double, _ b: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(abs(a - b) <= 1e-12, "\(a) != \(b)", sourceLocation: sourceLocation)
    }

    @Test func scoresServedListsAgainstWhatUsersDidNext() throws {
        let dir = TempDir(); defer { dir.remove() }
        let version = try Self.buildVersion(dir.sub("store"))
        let data = try load(Self.newerData(), dir)
        let r = try Replay.run(version: version, data: data, ks: [2, 10])
        #expect(r.version == version.name && r.asOf == Self.t && r.windowEnd == Self.t + 70 && r.watchFraction == 0.5)
        #expect(r.relevantInteractions == 7)           // a v1, a v2, b v4, b v3, d v0, e v1, f v1
        #expect(r.activeUsers == 5 && r.truthPairs == 7)
        #expect(r.truthSeenBefore == 1)                // a had watched v1 before T
        #expect(r.truthNotInVersion == 1)              // v4
        #expect(r.listUsers == 4 && r.personalizedUsers == 2 && r.fallbackUsers == 3)

        // Personalized (a, b), k = 2:  a [v0, v1] hit at rank 2: P 1/2, R 1/2, nDCG (1/ln3)/(1/ln2 + 1/ln3) = 0.386853
        //                              b [vX, v3] hit at rank 2: the same values.
        let inv2 = 1 / log(2.0), inv3 = 1 / log(3.0), inv4 = 1 / log(4.0)
        let p2 = r.personalized[0]
        #expect(p2.k == 2); close(p2.precision, 0.5); close(p2.recall, 0.5); close(p2.hitRate, 1)
        close(p2.ndcg, inv3 / (inv2 + inv3))
        // k = 10: a hits at 2 and 3: P 2/10, R 1, nDCG (1/ln3 + 1/ln4)/(1/ln2 + 1/ln3) = 0.693426;
        //         b as at k = 2 but P 1/10 → P 0.15, R 0.75, nDCG (0.693426 + 0.386853)/2 = 0.540140.
        let p10 = r.personalized[1]
        close(p10.precision, 0.15); close(p10.recall, 0.75)
        close(p10.ndcg, ((inv3 + inv4) / (inv2 + inv3) + inv3 / (inv2 + inv3)) / 2)

        // Fallback: d (DE) gets region DE [v2, v0], hit at 2; e (US, no US list) language en [v1, v0], hit at 1;
        // f (FR/fr) global [v3, v1], hit at 2. k = 2: P 1/2, R 1, nDCG (ln2/ln3 + 1 + ln2/ln3)/3 = 0.753953.
        let f2 = r.fallback[0], f10 = r.fallback[1]
        close(f2.precision, 0.5); close(f2.recall, 1); close(f2.hitRate, 1)
        close(f2.ndcg, (2 * log(2.0) / log(3.0) + 1) / 3)
        close(f10.precision, 0.1); close(f10.ndcg, f2.ndcg)

        // Coverage over all 4 lists: top 2 {v0, v1, vX, v3} = 4 of 7; top 10 adds v2 → 5 of 7.
        #expect(r.coverage.map(\.videos) == [4, 5])
        close(r.coverage[0].share, 4.0 / 7); close(r.coverage[1].share, 5.0 / 7)

        // Stored in run metadata as JSON: round-trips.
        let json = try JSONEncoder().encode(r)
        #expect(try JSONDecoder().decode(ReplayReport.self, from: json) == r)
    }

    @Test func emptyWindow() throws {
        let dir = TempDir(); defer { dir.remove() }
        let version = try Self.buildVersion(dir.sub("store"))
        var f = Self.newerData()
        f.events = f.events.filter { $0.time <= Self.t }
        let data = try load(f, dir)
        let r = try Replay.run(version: version, data: data)
        #expect(r.activeUsers == 0 && r.relevantInteractions == 0 && r.windowEnd == Self.t)
        #expect(r.personalized.map(\.k) == [10, 100] && r.personalized.allSatisfy { $0.precision == 0 && $0.hitRate == 0 })
        #expect(r.listUsers == 4 && r.coverage[0].videos == 5)
    }
}
