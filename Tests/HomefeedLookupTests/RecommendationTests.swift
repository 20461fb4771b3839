import Foundation
import Testing
import HomefeedCore
@testable import HomefeedLookup
import HomefeedStore
import HomefeedTestSupport

/// GET /v1/users/{id}/recommendations: every filter, the top-up, and each fallback level, over both transports.
@Suite struct RecommendationTests {
    @Test func fixtureListsAreAsDocumented() throws {
        let h = try Harness(.inProcess); defer { h.close() }
        try StoreFacts.check(try #require(h.service.current).version)
    }

    @Test(arguments: Transport.allCases)
    func personalizedListHonoursLimitAndDefault(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        let version = try #require(try h.store.current())
        let r = try h.recommend("u1", "limit=3")
        #expect(r.user_id == "u1")
        #expect(r.source == "personalized")
        #expect(r.version == version)
        #expect(r.generated_at.hasSuffix("Z") && r.generated_at.count == 20)
        #expect(r.ids == ["v3", "v4", "v5"])
        // Scores are the stored ones (6 decimals), best first.
        let stored = try #require(try h.service.current!.version.userList("u1"))
        for (item, s) in zip(r.items, stored.scores) { #expect(abs(item.score - Double(s)) < 1e-6) }
        #expect(zip(r.items, r.items.dropFirst()).allSatisfy { $0.score >= $1.score })
        // Default limit from the config (5); the whole list fits in 6; never a seen video (v0 watched, v1 liked, v2 disliked).
        #expect(try h.ids("u1") == ["v3", "v4", "v5", "v6", "v7"])
        #expect(try h.ids("u1", "limit=6") == ["v3", "v4", "v5", "v6", "v7", "v8"])
        for q in ["", "limit=1", "limit=6"] {
            let ids = try h.ids("u1", q)
            #expect(!ids.contains("v0") && !ids.contains("v1") && !ids.contains("v2"))
        }
        #expect(try h.ids("u1", "limit=1") == ["v3"])
        // A percent-encoded user id is the same user; HEAD answers without a body.
        #expect(try h.ids("%75%31", "limit=2") == ["v3", "v4"])
        let head = try h.request("HEAD", "/v1/users/u1/recommendations")
        #expect(head.status == 200)
    }

    @Test(arguments: Transport.allCases)
    func regionFilter(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        // u1 asks from Germany: v4 (allow:US) and v5 (block:DE) are dropped.
        #expect(try h.ids("u1", "region=DE&limit=4") == ["v3", "v6", "v7", "v8"])
        #expect(try h.ids("u1", "region=de&limit=4") == ["v3", "v6", "v7", "v8"])   // case-folded
        // Top-up from the requested region's list (DE: v6 v7 v8 v0 v1 v3) adds nothing: v0 and v1 are seen.
        let de = try h.recommend("u1", "region=DE&limit=20")
        #expect(de.ids == ["v3", "v6", "v7", "v8"])
        #expect(de.source == "personalized")
        // Without region: the user's stored country (US) — v4 and v5 stay.
        #expect(try h.ids("u1", "limit=4") == ["v3", "v4", "v5", "v6"])
        #expect(try h.ids("u1", "region=US&limit=4") == ["v3", "v4", "v5", "v6"])
        // u3 is stored as DE: top-ups from the DE, de and global lists never bring v4 or v5, nor the watched v6, v7.
        #expect(try h.ids("u3", "limit=20") == ["v8", "v0", "v1", "v3"])
        // The same user asking from the US gets v4 and v5 from the fallback lists.
        #expect(try h.ids("u3", "region=US&limit=20") == ["v8", "v0", "v1", "v3", "v4", "v5"])
    }

    @Test(arguments: Transport.allCases)
    func maxAgeKeepsOnlyFreshVideos(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        // v3 is 2 h old at as_of; every other video 30 days. Measured against as_of (2024), not today's clock.
        let r = try h.recommend("u1", "max_age_hours=24&limit=5")
        #expect(r.ids == ["v3"])               // top-up found nothing else fresh enough
        #expect(r.source == "personalized")
        #expect(try h.ids("u1", "max_age_hours=2.5") == ["v3"])
        #expect(try h.ids("u1", "max_age_hours=1").isEmpty)
        #expect(try h.ids("u1", "max_age_hours=744&limit=6") == ["v3", "v4", "v5", "v6", "v7", "v8"])  // 31 days
        #expect(try h.ids("nobody", "region=US&max_age_hours=24") == ["v3"])
        #expect(try h.ids("nobody", "max_age_hours=24") == ["v3"])
        // Combined with region and exclude.
        #expect(try h.ids("u3", "max_age_hours=24") == ["v3"])
        #expect(try h.ids("u1", "max_age_hours=24&exclude=v3").isEmpty)
    }

    /// A version's clock is as_of plus the wall-clock time since the version was built, so replays of old data
    /// behave and ages still grow while a version is served.
    @Test(arguments: Transport.allCases)
    func ageIsMeasuredAgainstAsOfPlusTimeSinceBuild(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        // Built with --now t0, far in the past of today's clock: v3 (2 h before t0) is fresh, as in a replay.
        #expect(try h.ids("u1", "max_age_hours=24") == ["v3"])
        // Rebuilt with --now two days after t0: v3 is now 50 h old.
        let later = try h.publish(now: StandardFixture.t0 + 2 * 86400)
        h.reload()
        #expect(h.service.current?.version.name == later)
        #expect(try h.ids("u1", "max_age_hours=24").isEmpty)
        #expect(try h.ids("u1", "max_age_hours=49").isEmpty)
        #expect(try h.ids("u1", "max_age_hours=51") == ["v3"])
        // The same as_of (t0) but built a day ago: a day of serving has passed, v3 is 26 h old.
        let aged = try cloneVersion(h, createdAt: TimeFormat.now() - 86400, asOf: StandardFixture.t0)
        h.reload()
        #expect(h.service.current?.version.name == aged)
        #expect(try h.ids("u1", "max_age_hours=24").isEmpty)
        #expect(try h.ids("u1", "max_age_hours=27") == ["v3"])
    }

    @Test(arguments: Transport.allCases)
    func excludeDropsListedVideos(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        #expect(try h.ids("u1", "exclude=v3,v4&limit=4") == ["v5", "v6", "v7", "v8"])
        #expect(try h.ids("u1", "exclude=v3%2Cv4&limit=4") == ["v5", "v6", "v7", "v8"])           // encoded comma
        #expect(try h.ids("u1", "exclude=v3&exclude=v4&limit=4") == ["v5", "v6", "v7", "v8"])     // repeated
        #expect(try h.ids("u1", "exclude=nope,,v3&limit=2") == ["v4", "v5"])                      // unknown ids ignored
        #expect(try h.ids("nobody", "region=US&exclude=v0,v1&limit=3") == ["v3", "v4", "v5"])
    }

    @Test(arguments: Transport.allCases)
    func topUpWhenFilteringEmptiesThePersonalList(_ t: Transport) throws {
        // Personal lists of 2 entries (u1: v3, v4), so the fallback lists have something left to add.
        let h = try Harness(t) { $0.refresh.listSize = 2 }; defer { h.close() }
        let before = h.service.metrics.count(source: .personalized)
        // Short of the limit: the US list adds v5 (v0, v1 are skipped: u1 has seen them, per the seen filter
        // stored with the list), then the global list adds v6.
        let r = try h.recommend("u1", "limit=4")
        #expect(r.ids == ["v3", "v4", "v5", "v6"])
        #expect(r.source == "personalized")
        // A filtered personal list is topped up in the same order, without duplicates.
        #expect(try h.ids("u1", "exclude=v4&limit=3") == ["v3", "v5", "v6"])
        // Seen videos never come back through a top-up.
        #expect(try h.ids("u1", "limit=20") == ["v3", "v4", "v5", "v6", "v7", "v8"])
        // Fallback scores are the popular list's (v5 is 5th in the US list).
        let us = try #require(h.service.current?.version.popularList(.region, "US"))
        #expect(abs(r.items[2].score - Double(us.scores[4])) < 1e-6)
        // A full personal list is no top-up.
        #expect(try h.ids("u1", "limit=2") == ["v3", "v4"])
        // The filter left nothing anywhere: a fallback was tried but filled nothing, so it is no top-up either.
        #expect(try h.ids("u1", "max_age_hours=1").isEmpty)
        let m = try h.metricsText()
        #expect(metric(m, "homefeed_responses_topped_up_total") == 3)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="personalized"}"#) == 5)
        #expect(h.service.metrics.count(source: .personalized) - before == 5)
    }

    @Test(arguments: Transport.allCases)
    func fallbackLevelsForUnknownUsers(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        let us = try h.recommend("nobody", "region=US&limit=20")
        #expect(us.source == "popular_region")
        #expect(us.user_id == "nobody")
        #expect(us.ids == ["v0", "v1", "v3", "v4", "v5", "v6", "v7", "v8"])
        #expect(try h.ids("nobody", "region=US") == ["v0", "v1", "v3", "v4", "v5"])       // default limit 5
        let de = try h.recommend("nobody", "region=DE&limit=20")
        #expect(de.source == "popular_region")
        #expect(de.ids == ["v6", "v7", "v8", "v0", "v1", "v3"])   // top-ups never add v4/v5 in DE
        // No FR list: the language's list, filtered for FR (v4 is US-only).
        let fr = try h.recommend("nobody", "region=FR&lang=de&limit=20")
        #expect(fr.source == "popular_language")
        #expect(fr.ids == ["v6", "v7", "v8", "v5", "v0", "v1", "v3"])
        let fren = try h.recommend("nobody", "region=FR&lang=en&limit=20")
        #expect(fren.source == "popular_language")
        #expect(fren.ids == ["v0", "v1", "v3", "v5", "v6", "v7", "v8"])
        // No FR list, no language (or one without a list): global, filtered for FR.
        let global = try h.recommend("nobody", "region=FR&limit=20")
        #expect(global.source == "popular_global")
        #expect(global.ids == ["v0", "v6", "v1", "v7", "v3", "v8", "v5"])
        #expect(try h.recommend("nobody", "region=FR&lang=xx&limit=20").source == "popular_global")
        // No region at all and no stored profile (u9 has no history): global; the allow-listed v4 (US only) is
        // left out since the country is unknown, the block-listed v5 (not in DE) stays.
        let cold = try h.recommend("u9", "limit=20")
        #expect(cold.source == "popular_global")
        #expect(cold.ids == ["v0", "v6", "v1", "v7", "v3", "v8", "v5"])
        // A malformed region code is the client's error.
        for bad in ["USA", "U", "", "U1", "%55%53%41"] {
            let r = try h.get("/v1/users/nobody/recommendations?region=\(bad)")
            #expect(r.status == 400, "region=\(bad)")
            #expect(r.errorMessage?.contains("region") == true)
        }
        let m = try h.metricsText()
        #expect(metric(m, #"homefeed_responses_by_source_total{source="popular_region"}"#) == 3)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="popular_language"}"#) == 2)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="popular_global"}"#) == 3)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="personalized"}"#) == 0)
    }
}

/// Copies the served version's data into a new version with the given build time and as_of (and `configure`'s
/// metadata changes), and publishes it.
func cloneVersion(_ h: Harness, createdAt: Int64, asOf: Int64, configure: (inout RunMetadata) -> Void = { _ in }) throws -> String {
    let source = try #require(h.service.current).version
    let builder = try VersionBuilder(store: h.store, createdAt: createdAt)
    let v = source.videos
    try builder.writeVideos((0..<v.count).map {
        VideoRecord(id: v.ids[$0], availability: v.availability[$0], countries: v.countries[$0],
                    publishedAt: v.publishedAt[$0], language: v.language[$0])
    })
    try builder.writePopular(source.popularLists)
    let writer = try builder.userListWriter()
    var users: [String] = []
    try source.forEachUser { id, _ in users.append(id) }
    for id in users { try writer.add(userID: id, list: try #require(try source.userList(id))) }
    try writer.finish()
    var meta = source.metadata
    meta.createdAt = createdAt
    meta.asOf = asOf
    configure(&meta)
    try builder.finish(metadata: meta)
    try h.store.setCurrent(builder.name)
    return builder.name
}
