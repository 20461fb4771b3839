import Foundation
import Testing
import HomefeedCore
@testable import HomefeedLookup
import HomefeedStore
import HomefeedTestSupport

/// Cold-start segment lists (`PS` + `UserSegment.code`): unknown users who give `region`, `lang`, `age` and
/// `gender` get their segment's list, filtered and topped up like a popular one. The fixture version (see
/// Support.swift) is rebuilt with VersionBuilder with two segment lists added:
///
///     US.en.25-34.f   v9 v2 v4 v5 v3         (v9 and v2 are in no other list; v4 allow:US, v5 block:DE, v3 fresh)
///     DE.de.65+.m     v5 v4 v2 v9            (in DE only v2 and v9 pass)
@Suite struct SegmentTests {
    static let us = UserSegment(country: CountryCode("US")!, language: "en", age: .from25to34, gender: .female)
    static let de = UserSegment(country: CountryCode("DE")!, language: "de", age: .from65, gender: .male)
    static let lists: [(UserSegment, [String])] = [(us, ["v9", "v2", "v4", "v5", "v3"]), (de, ["v5", "v4", "v2", "v9"])]
    static let usQuery = "region=US&lang=en&age=30&gender=f"

    /// A harness whose served version is the fixture's plus the two segment lists.
    static func harness(_ t: Transport, configure: (inout HomefeedConfig) -> Void = { _ in }) throws -> Harness {
        let h = try Harness(t, configure: configure)
        do {
            try publishWithSegments(h, lists)
            #expect(h.reload())
        } catch {
            h.close()
            throw error
        }
        return h
    }

    @Test(arguments: Transport.allCases)
    func unknownUserWithAttributesGetsTheSegmentList(_ t: Transport) throws {
        let h = try Self.harness(t); defer { h.close() }
        let version = try #require(h.service.current).version
        #expect(version.segmentLists.map(\.segment) == [Self.de, Self.us])
        #expect(version.metadata.counts.segmentLists == 2)
        let r = try h.recommend("nobody", Self.usQuery)
        #expect(r.source == "segment")
        #expect(r.user_id == "nobody")
        #expect(r.version == version.name)
        #expect(r.ids == ["v9", "v2", "v4", "v5", "v3"])
        // Scores are the segment list's.
        let stored = try #require(version.segmentList(Self.us))
        for (item, s) in zip(r.items, stored.scores) { #expect(abs(item.score - Double(s)) < 1e-6) }
        // The same segment however the attributes are spelled: gender in any case or in full, any age of the bucket.
        for q in ["region=us&lang=en&age=25&gender=F", "gender=female&age=34&lang=en&region=US",
                  "region=US&lang=en&age=30&gender=FEMALE&limit=5", "region=%55%53&lang=en&age=3%30&gender=%66"] {
            let x = try h.recommend("nobody", q)
            #expect(x.source == "segment", "\(q)")
            #expect(x.ids == ["v9", "v2", "v4", "v5", "v3"], "\(q)")
        }
        #expect(try h.ids("nobody", Self.usQuery + "&limit=2") == ["v9", "v2"])
        // The DE segment: v5 (block:DE) and v4 (allow:US) filtered out, topped up from the DE list.
        let d = try h.recommend("new-user", "region=DE&lang=de&age=65&gender=m&limit=20")
        #expect(d.source == "segment")
        #expect(d.ids == ["v2", "v9", "v6", "v7", "v8", "v0", "v1", "v3"])
    }

    @Test(arguments: Transport.allCases)
    func withoutAllFourAttributesOrASegmentThePopularChainServes(_ t: Transport) throws {
        let h = try Self.harness(t); defer { h.close() }
        let usList = ["v0", "v1", "v3", "v4", "v5"]
        // An attribute missing.
        for q in ["region=US&lang=en&age=30", "region=US&lang=en&gender=f", "region=US&age=30&gender=f", "region=US"] {
            let r = try h.recommend("nobody", q)
            #expect(r.source == "popular_region", "\(q)")
            #expect(r.ids == usList, "\(q)")
        }
        // No region: the language's list (the segment needs the region named).
        let noRegion = try h.recommend("nobody", "lang=en&age=30&gender=f")
        #expect(noRegion.source == "popular_language")
        // No segment for these attributes: age buckets at the edges, other genders, languages, regions.
        for q in ["region=US&lang=en&age=24&gender=f", "region=US&lang=en&age=35&gender=f", "region=US&lang=en&age=0&gender=f",
                  "region=US&lang=en&age=30&gender=m", "region=US&lang=en&age=30&gender=u", "region=US&lang=EN&age=30&gender=f",
                  "region=US&lang=de&age=30&gender=f", "region=DE&lang=de&age=64&gender=m"] {
            let r = try h.recommend("nobody", q)
            #expect(r.source == "popular_region", "\(q)")
        }
        #expect(try h.ids("nobody", "region=US&lang=en&age=24&gender=f") == usList)
        let fr = try h.recommend("nobody", "region=FR&lang=en&age=30&gender=f&limit=20")
        #expect(fr.source == "popular_language")
        #expect(fr.ids == ["v0", "v1", "v3", "v5", "v6", "v7", "v8"])
        let frx = try h.recommend("nobody", "region=FR&lang=xx&age=30&gender=f")
        #expect(frx.source == "popular_global")
        // The DE segment is 65+: 65 and 130 are in it, 64 is not.
        #expect(try h.recommend("nobody", "region=DE&lang=de&age=65&gender=m").source == "segment")
        #expect(try h.recommend("nobody", "region=DE&lang=de&age=130&gender=male").source == "segment")
    }

    @Test(arguments: Transport.allCases)
    func knownUsersIgnoreTheAttributes(_ t: Transport) throws {
        // Personal lists of 2 entries, so the top-up shows that it never draws from the segment list either.
        let h = try Self.harness(t) { $0.refresh.listSize = 2 }; defer { h.close() }
        let plain = try h.recommend("u1", "region=US&lang=en&limit=20")
        let told = try h.recommend("u1", Self.usQuery + "&limit=20")
        #expect(told.source == "personalized")
        #expect(told.ids == plain.ids)
        #expect(told.ids == ["v3", "v4", "v5", "v6", "v7", "v8"])
        #expect(!told.ids.contains("v9") && !told.ids.contains("v2"))
        #expect(try h.recommend("u3", "region=DE&lang=de&age=70&gender=m&limit=20").source == "personalized")
    }

    @Test(arguments: Transport.allCases)
    func filtersApplyAndAShortSegmentListIsToppedUp(_ t: Transport) throws {
        let dir = TempDir("homefeed-segment-blocklist"); defer { dir.remove() }
        let path = dir.sub("blocked.txt")
        let h = try Self.harness(t) { $0.lookupd.blocklistPath = path }; defer { h.close() }
        // Top-up: the 5 segment entries, then the US list without duplicates (v3 v4 v5 already taken), then global.
        let full = try h.recommend("nobody", Self.usQuery + "&limit=20")
        #expect(full.source == "segment")
        #expect(full.ids == ["v9", "v2", "v4", "v5", "v3", "v0", "v1", "v6", "v7", "v8"])
        let us = try #require(h.service.current?.version.popularList(.region, "US"))
        #expect(abs(full.items[5].score - Double(us.scores[0])) < 1e-6)   // v0 comes with the US list's score
        // The segment is the one of the region asked: there is no DE.en one, so DE's popular list serves.
        let inDE = try h.recommend("nobody", "region=DE&lang=en&age=30&gender=f")
        #expect(inDE.source == "popular_region")   // no DE.en segment
        // max_age_hours: only v3 is fresh; the segment still is the source, the top-up finds nothing fresh.
        let fresh = try h.recommend("nobody", Self.usQuery + "&max_age_hours=24")
        #expect(fresh.source == "segment")
        #expect(fresh.ids == ["v3"])
        #expect(try h.ids("nobody", Self.usQuery + "&max_age_hours=1").isEmpty)
        // exclude.
        #expect(try h.ids("nobody", Self.usQuery + "&exclude=v9,v4&limit=3") == ["v2", "v5", "v3"])
        #expect(try h.ids("nobody", Self.usQuery + "&exclude=v9,v2,v4,v5,v3&limit=3") == ["v0", "v1", "v6"])
        // Recently seen (POST /seen) by this unknown user.
        #expect(try h.post("/v1/users/newbie/seen", #"["v9","v3"]"#).status == 200)
        #expect(try h.ids("newbie", Self.usQuery + "&limit=4") == ["v2", "v4", "v5", "v0"])
        // Blocked.
        try writeFile(path, "v2\nv0\n")
        #expect(h.reload())
        #expect(try h.ids("nobody", Self.usQuery + "&limit=7") == ["v9", "v4", "v5", "v3", "v1", "v6", "v7"])
        #expect(try h.ids("nobody", "region=DE&lang=de&age=80&gender=m&limit=3") == ["v9", "v6", "v7"])
    }

    @Test(arguments: Transport.allCases)
    func badAgeOrGenderIsA400(_ t: Transport) throws {
        let h = try Self.harness(t); defer { h.close() }
        for (q, name) in [("age=-1", "age"), ("age=131", "age"), ("age=abc", "age"), ("age=", "age"), ("age=1.5", "age"),
                          ("age=99999999999", "age"), ("age=%2B30", "age"), ("age=3%", "age"),
                          ("gender=x", "gender"), ("gender=", "gender"), ("gender=fem", "gender"),
                          ("gender=females", "gender"), ("gender=f%20", "gender"), ("gender=%zz", "gender")] {
            let r = try h.get("/v1/users/nobody/recommendations?region=US&lang=en&" + q)
            #expect(r.status == 400, "?\(q) → \(r.status) \(r.text)")
            #expect(r.contentType == "application/json")
            #expect(r.errorMessage?.contains(name) == true, "?\(q): \(r.text)")
            // Known users are validated the same way.
            #expect(try h.get("/v1/users/u1/recommendations?" + q).status == 400, "u1 ?\(q)")
        }
        // The edges that are valid.
        #expect(try h.recommend("nobody", "region=US&lang=en&age=0&gender=u").source == "popular_region")
        #expect(try h.recommend("nobody", "region=US&lang=en&age=130&gender=o").source == "popular_region")
        #expect(try h.recommend("nobody", "region=US&lang=en&age=030&gender=F").source == "segment")
    }

    @Test(arguments: Transport.allCases)
    func metricsCountSegmentResponses(_ t: Transport) throws {
        let h = try Self.harness(t); defer { h.close() }
        _ = try h.recommend("nobody", Self.usQuery)
        _ = try h.recommend("nobody", Self.usQuery + "&limit=20")                     // segment, topped up
        _ = try h.recommend("nobody", "region=DE&lang=de&age=66&gender=m")
        _ = try h.recommend("nobody", "region=US&lang=en&age=20&gender=f")            // no such segment
        _ = try h.recommend("u1", Self.usQuery)                                        // known user
        #expect(h.service.metrics.count(source: .segment) == 3)
        let m = try h.metricsText()
        #expect(metric(m, #"homefeed_responses_by_source_total{source="segment"}"#) == 3)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="popular_region"}"#) == 1)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="personalized"}"#) == 1)
        #expect(metric(m, "homefeed_responses_topped_up_total") == 0)   // as for popular lists: personal lists only
        #expect(metric(m, "homefeed_served_segment_lists") == 2)
    }

    /// A new version without segment lists (the batch's fixture run) replaces one with them: the same requests
    /// fall back to the popular chain; and back again.
    @Test(arguments: Transport.allCases)
    func hotSwapToAVersionWithoutSegments(_ t: Transport) throws {
        let h = try Self.harness(t); defer { h.close() }
        #expect(try h.recommend("nobody", Self.usQuery).source == "segment")
        let plain = try h.publish(now: StandardFixture.t0 + 3600)
        #expect(h.reload())
        #expect(h.service.current?.version.name == plain)
        let r = try h.recommend("nobody", Self.usQuery)
        #expect(r.source == "popular_region")
        #expect(r.ids == ["v0", "v1", "v3", "v4", "v5"])
        #expect(r.version == plain)
        #expect(try h.recommend("nobody", "region=DE&lang=de&age=65&gender=m").source == "popular_region")
        #expect(metric(try h.metricsText(), "homefeed_served_segment_lists") == 0)
        // And back to a version with segments.
        let again = try publishWithSegments(h, [(Self.us, ["v2"])])
        #expect(h.reload())
        let back = try h.recommend("nobody", Self.usQuery + "&limit=3")
        #expect(back.version == again)
        #expect(back.source == "segment")
        #expect(back.ids == ["v2", "v0", "v1"])
        #expect(try h.recommend("nobody", "region=DE&lang=de&age=65&gender=m").source == "popular_region")
    }

    /// The daemon picks the segment version up by itself (watcher) while serving.
    @Test func watcherServesSegmentsOfANewVersion() throws {
        let h = try Harness(.live, watch: true) { $0.lookupd.reloadIntervalSeconds = 0.1 }; defer { h.close() }
        #expect(try h.recommend("nobody", Self.usQuery).source == "popular_region")
        let name = try publishWithSegments(h, Self.lists)
        #expect(try eventually { try h.recommend("nobody", Self.usQuery).version == name })
        #expect(try h.recommend("nobody", Self.usQuery).source == "segment")
    }
}

/// Rebuilds the served version with VersionBuilder — its videos, region/language/global lists and user lists —
/// plus the given segment lists (video ids with falling scores), and makes it CURRENT.
@discardableResult
func publishWithSegments(_ h: Harness, _ segments: [(UserSegment, [String])], createdAt: Int64? = nil) throws -> String {
    let source = try #require(h.service.current).version
    let created = createdAt ?? source.metadata.createdAt + 1
    let builder = try VersionBuilder(store: h.store, createdAt: created)
    let v = source.videos
    try builder.writeVideos((0..<v.count).map {
        VideoRecord(id: v.ids[$0], availability: v.availability[$0], countries: v.countries[$0],
                    publishedAt: v.publishedAt[$0], language: v.language[$0])
    })
    var popular = source.popularLists.filter { $0.scope != .segment }
    for (segment, ids) in segments {
        var list = RecommendationList()
        for (i, id) in ids.enumerated() {
            list.videos.append(try #require(v.index(of: id), "no video \(id)"))
            list.scores.append(Float(0.9) - Float(i) * 0.1)
            list.sources.append(.segment)
        }
        list.country = segment.country
        list.language = segment.language
        popular.append((.segment, segment.code, list))
    }
    try builder.writePopular(popular)
    let writer = try builder.userListWriter()
    var users: [String] = []
    try source.forEachUser { id, _ in users.append(id) }
    for id in users { try writer.add(userID: id, list: try #require(try source.userList(id))) }
    try writer.finish()
    var meta = source.metadata
    meta.createdAt = created
    meta.counts.popularLists = builder.popularListsWritten
    meta.counts.segmentLists = builder.segmentListsWritten
    try builder.finish(metadata: meta)
    try h.store.setCurrent(builder.name)
    return builder.name
}
