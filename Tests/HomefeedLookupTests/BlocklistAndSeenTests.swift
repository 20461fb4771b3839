import Foundation
import Testing
import HomefeedCore
@testable import HomefeedLookup
import HomefeedStore
import HomefeedTestSupport

/// The blocklist file and the already-seen memory (POST /v1/users/{id}/seen), over both transports.
@Suite struct BlocklistAndSeenTests {
    @Test(arguments: Transport.allCases)
    func blocklistAppliesToPersonalAndFallbackListsAndReloads(_ t: Transport) throws {
        let dir = TempDir("homefeed-blocklist"); defer { dir.remove() }
        let path = dir.sub("blocked.txt")
        try writeFile(path, "# videos taken down\nv3\n  v6  # inline comment\n\n")
        let h = try Harness(t) { $0.lookupd.blocklistPath = path }; defer { h.close() }
        #expect(h.service.current?.blockedCount == 2)
        #expect(try h.ids("u1", "limit=20") == ["v4", "v5", "v7", "v8"])
        #expect(try h.ids("nobody", "region=US&limit=20") == ["v0", "v1", "v4", "v5", "v7", "v8"])
        #expect(try h.ids("nobody", "region=FR&limit=20") == ["v0", "v1", "v7", "v8", "v5"])
        #expect(try h.ids("nobody", "region=FR&lang=de&limit=20") == ["v7", "v8", "v5", "v0", "v1"])
        #expect(metric(try h.metricsText(), "homefeed_blocked_videos") == 2)
        // Unchanged file: nothing to do.
        #expect(h.reload() == false)
        // v3 unblocked (file replaced), v6 still blocked.
        try writeFile(path, "v6\n")
        #expect(h.reload() == true)
        #expect(try h.ids("u1", "limit=3") == ["v3", "v4", "v5"])
        #expect(try h.ids("nobody", "region=US&limit=20") == ["v0", "v1", "v3", "v4", "v5", "v7", "v8"])
        // Edited in place (same inode) to block an id that the version does not know, and v8.
        let f = try #require(FileHandle(forWritingAtPath: path))
        try f.truncate(atOffset: 0)
        try f.write(contentsOf: Data("v8\nnot-a-video\n".utf8))
        try f.close()
        #expect(h.reload() == true)
        #expect(h.service.current?.blockedCount == 1)
        #expect(try h.ids("u1", "limit=20") == ["v3", "v4", "v5", "v6", "v7"])
        // File removed: nothing blocked.
        try FileManager.default.removeItem(atPath: path)
        #expect(h.reload() == true)
        #expect(h.service.current?.blockedCount == 0)
        #expect(try h.ids("u1", "limit=6") == ["v3", "v4", "v5", "v6", "v7", "v8"])
        // And back.
        try writeFile(path, "v4\n")
        #expect(h.reload() == true)
        #expect(try h.ids("u1", "limit=3") == ["v3", "v5", "v6"])
    }

    @Test(arguments: Transport.allCases)
    func watcherPicksUpBlocklistChangesWithinSeconds(_ t: Transport) throws {
        let dir = TempDir("homefeed-blocklist"); defer { dir.remove() }
        let path = dir.sub("blocked.txt")
        let h = try Harness(t, watch: true) {
            $0.lookupd.blocklistPath = path          // absent at start: nothing blocked
            $0.lookupd.reloadIntervalSeconds = 0.2
        }
        defer { h.close() }
        #expect(try h.ids("u1", "limit=2") == ["v3", "v4"])
        try writeFile(path, "v3\n")
        let started = TimeFormat.monotonic()
        #expect(try eventually { try h.ids("u1", "limit=2") == ["v4", "v5"] })
        #expect(TimeFormat.monotonic() - started < 10)   // typically ~0.2 s; bounded loosely for a loaded machine
        try writeFile(path, "v4\nv5\n")
        #expect(try eventually { try h.ids("u1", "limit=2") == ["v3", "v6"] })
        try FileManager.default.removeItem(atPath: path)
        #expect(try eventually { try h.ids("u1", "limit=2") == ["v3", "v4"] })
    }

    @Test(arguments: Transport.allCases)
    func seenVideosAreExcludedFromLaterResponses(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        #expect(try h.ids("u1", "limit=3") == ["v3", "v4", "v5"])
        let posted = try h.post("/v1/users/u1/seen", #"["v3"]"#)
        #expect(posted.status == 200)
        #expect(posted.json()["user_id"] as? String == "u1")
        #expect(posted.json()["recorded"] as? Int == 1)
        #expect(try h.ids("u1", "limit=3") == ["v4", "v5", "v6"])
        // The object form adds to what is remembered.
        #expect(try h.post("/v1/users/u1/seen", #"{"video_ids":["v4","v0"]}"#).status == 200)
        #expect(try h.ids("u1", "limit=3") == ["v5", "v6", "v7"])
        // Seen videos are not topped up from the fallbacks either (v0, v1, v2 by the stored seen filter).
        #expect(try h.ids("u1", "limit=20") == ["v5", "v6", "v7", "v8"])
        // Only that user: u2 and unknown users are untouched; an unknown user's seen videos are honoured too.
        #expect(try h.ids("u2", "limit=2") == ["v4", "v5"])
        #expect(try h.post("/v1/users/stranger/seen", #"["v0","v1","unknown-id"]"#).status == 200)
        #expect(try h.ids("stranger", "region=US&limit=3") == ["v3", "v4", "v5"])
        #expect(try h.ids("nobody", "region=US&limit=3") == ["v0", "v1", "v3"])
        #expect(h.service.seen.userCount == 2)
        #expect(metric(try h.metricsText(), "homefeed_seen_memory_users") == 2)
        #expect(h.service.metrics.count(route: .seen, status: 200) == 3)
    }

    @Test(arguments: Transport.allCases)
    func badSeenBodiesAre400(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        for body in ["", "not json", #"{"x":1}"#, "[1,2]", #"["v1",2]"#, #""v3""#, #"[""]"#, "{", #"{"video_ids":"v1"}"#,
                     "[" + String(repeating: #""v","#, count: 10_000) + #""v"]"#,
                     "[\"" + String(repeating: "x", count: 257) + "\"]",
                     String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000),   // deep nesting
                     String(repeating: "{\"a\":", count: 3000)] {
            let r = try h.post("/v1/users/u1/seen", body)
            #expect(r.status == 400, "body \(body.prefix(40))")
            #expect(r.errorMessage != nil)
        }
        #expect(h.service.seen.userCount == 0)
        // Wrong method on the seen route; an empty list is fine.
        #expect(try h.get("/v1/users/u1/seen").status == 405)
        #expect(try h.post("/v1/users/u1/seen", "[]").status == 200)
        #expect(try h.ids("u1", "limit=1") == ["v3"])
    }

    @Test(arguments: Transport.allCases)
    func seenEntriesExpire(_ t: Transport) throws {
        let h = try Harness(t) { $0.lookupd.seenTTLHours = 0.3 / 3600 }; defer { h.close() }   // 0.3 s
        #expect(try h.post("/v1/users/u1/seen", #"["v3"]"#).status == 200)
        #expect(try eventually { try h.ids("u1", "limit=1") == ["v3"] })
        #expect(h.service.seen.userCount == 0)   // the expired user was dropped when read
    }

    @Test(arguments: Transport.allCases)
    func seenMemoryStaysBounded(_ t: Transport) throws {
        let h = try Harness(t) {
            $0.lookupd.seenMaxUsers = 8
            $0.lookupd.seenMaxPerUser = 3
        }
        defer { h.close() }
        var most = 0
        for k in 0..<200 {
            #expect(try h.post("/v1/users/user\(k)/seen", #"["v0"]"#).status == 200)
            most = max(most, h.service.seen.userCount)
        }
        #expect(most <= 8)
        #expect(metric(try h.metricsText(), "homefeed_seen_memory_users") == Double(h.service.seen.userCount))
        // Per user: the newest 3 are kept.
        #expect(try h.post("/v1/users/u1/seen", #"["v3","v4","v5","v6","v7"]"#).status == 200)
        #expect(Set(h.service.seen.seen(user: "u1")) == ["v5", "v6", "v7"])
        #expect(try h.ids("u1", "limit=3") == ["v3", "v4", "v8"])
    }
}

/// SeenMemory on its own, with an injected clock.
@Suite struct SeenMemoryTests {
    @Test func expiresPerEntryAndKeepsTheNewest() {
        let m = SeenMemory(maxUsers: 100, maxPerUser: 3, ttlSeconds: 10)
        m.record(user: "a", videos: ["x", "y"], now: 100)
        m.record(user: "a", videos: ["z"], now: 105)
        #expect(m.seen(user: "a", now: 109) == ["x", "y", "z"])
        #expect(m.seen(user: "a", now: 110) == ["z"])          // x, y expired at 110
        m.record(user: "a", videos: ["w", "v", "u", "t"], now: 111)
        #expect(m.seen(user: "a", now: 111) == ["v", "u", "t"])
        // Re-posting a video refreshes its expiry instead of duplicating it.
        m.record(user: "a", videos: ["v"], now: 118)
        #expect(m.seen(user: "a", now: 125) == ["v"])
        #expect(m.seen(user: "a", now: 128.5) == [])
        #expect(m.userCount == 0)
        #expect(m.seen(user: "nobody") == [])
    }

    @Test func boundedInUsers() {
        for maxUsers in [1, 5, 64, 100, 1000] {
            let m = SeenMemory(maxUsers: maxUsers, maxPerUser: 2, ttlSeconds: 60)
            var most = 0
            for k in 0..<(maxUsers * 4 + 200) {
                m.record(user: "user\(k)", videos: ["v"], now: 0)
                most = max(most, m.userCount)
            }
            #expect(most <= maxUsers, "maxUsers \(maxUsers)")
            #expect(m.userCount > 0)
            // The most recent user is always remembered.
            #expect(m.seen(user: "user\(maxUsers * 4 + 199)", now: 1) == ["v"])
        }
        let none = SeenMemory(maxUsers: 0, maxPerUser: 10, ttlSeconds: 60)
        none.record(user: "a", videos: ["v"])
        #expect(none.userCount == 0 && none.seen(user: "a").isEmpty)
    }

    /// Users that expire and come back must not grow the memory's bookkeeping without bound.
    @Test func churnDoesNotGrowBookkeeping() {
        let m = SeenMemory(maxUsers: 10_000, maxPerUser: 2, ttlSeconds: 1)
        var now = 0.0
        for round in 0..<200 {
            for k in 0..<50 { m.record(user: "user\(k)", videos: ["v\(round)"], now: now) }
            now += 2
            for k in 0..<50 { _ = m.seen(user: "user\(k)", now: now) }   // all expired: dropped
        }
        #expect(m.userCount == 0)
        #expect(m.trackedEntries < 2000)   // 10,000 insertions happened
    }
}
