import Foundation
import HomefeedCore
import HomefeedData
import Testing

@Suite struct DatasetLoaderTests {
    static let users = #"""
        user_id,country,language,age,gender,signup_time,unused
        u1,US,en,34,f,2024-01-02T03:04:05Z,x
        u2,de,de,,M,1700000000,x
        u3,,pt,0,,,x

        """#
    // Columns reordered on purpose.
    static let videos = #"""
        availability,video_id,duration_seconds,language,published_time,title,tags,channel_id
        *,v1,100,en,2024-11-22T18:26:40Z,"Jazz, live",music|live|jazz|live,c1
        allow:US|ca,v2,60.5,en,1732300000,"She said ""hi""",,
        block:DE,v3,30,pt,2024-11-22,"Two
        lines", news ,c1
        ,v4,10,en,1732300000,,,c2

        """#
    static let interactions = #"""
        user_id,video_id,event,watch_seconds,timestamp,device,query
        u1,v1,impression,,1732300000,mobile,
        u1,v1,watch,60,1732300001,mobile,
        u1,v2,watch,12.5,2024-11-22T18:26:42.250Z,tv,
        u2,v3,like,,1732300003,,
        u2,,search,,1732300004,desktop,"cats, funny"
        u3,v4,DISLIKE,,1732300005,tv,
        u3,v4,click,,2024,,

        """#

    func writeDataset(_ dir: TempDir, users: String = users, videos: String = videos,
                      interactions: String = interactions) {
        dir.write("users.csv", users)
        dir.write("videos.csv", videos)
        dir.write("interactions.csv", interactions)
    }

    @Test func loadsExactColumns() throws {
        let dir = TempDir()
        writeDataset(dir)
        let ds = try DatasetLoader.load(directory: dir.path, config: config(), progress: false)
        #expect(ds.report.badRows == 0)
        #expect(ds.report.files.map(\.file) == ["users.csv", "videos.csv", "interactions.csv"])
        #expect(ds.report.files.map(\.rows) == [3, 4, 7])

        let u = ds.users
        #expect(u.count == 3)
        #expect((0..<3).map { u.ids[$0] } == ["u1", "u2", "u3"])
        #expect(u.country == [CountryCode("US")!, CountryCode("DE")!, .unknown])
        #expect(u.language.map { ds.languages[$0] } == ["en", "de", "pt"])
        #expect(u.age == [34, 0, 0])
        #expect(u.gender == [.female, .male, .unknown])
        #expect(u.signupTime == [TimeFormat.parse("2024-01-02T03:04:05Z")!, 1_700_000_000, Int64.min])

        let v = ds.videos
        #expect(v.count == 4)
        #expect((0..<4).map { v.ids[$0] } == ["v1", "v2", "v3", "v4"])
        #expect(v.durationSeconds == [100, 60.5, 30, 10])
        #expect(v.publishedAt == [1_732_300_000, 1_732_300_000, 1_732_233_600, 1_732_300_000])
        #expect((0..<4).map { v.titles[$0] } == ["Jazz, live", "She said \"hi\"", "Two\nlines", ""])
        #expect(v.tags(of: 0).map { ds.tags[$0] } == ["music", "live", "jazz"])   // deduplicated
        #expect(v.tags(of: 1).isEmpty)
        #expect(v.tags(of: 2).map { ds.tags[$0] } == ["news"])
        #expect(v.channel == [0, -1, 0, 1])
        #expect(ds.channels[0] == "c1" && ds.channels[1] == "c2")
        #expect(v.language.map { ds.languages[$0] } == ["en", "en", "pt", "en"])

        // Availability.
        let us = CountryCode("US")!, ca = CountryCode("CA")!, de = CountryCode("DE")!, fr = CountryCode("FR")!
        #expect(v.availability == [.everywhere, .allowList, .blockList, .everywhere])
        #expect(Array(v.countryList(of: 1)) == [us, ca])
        #expect(Array(v.countryList(of: 2)) == [de])
        #expect(v.isAvailable(0, in: de))
        #expect(v.isAvailable(1, in: us) && v.isAvailable(1, in: ca) && !v.isAvailable(1, in: de))
        #expect(!v.isAvailable(2, in: de) && v.isAvailable(2, in: fr))
        #expect(v.isAvailable(3, in: .unknown))

        let i = ds.interactions
        #expect(i.count == 7)
        #expect(i.user == [0, 0, 0, 1, 1, 2, 2])
        #expect(i.video == [0, 0, 1, 2, -1, 3, 3])
        #expect(i.event == [.impression, .watch, .watch, .like, .search, .dislike, .click])
        #expect(i.watchSeconds == [0, 60, 12.5, 0, 0, 0, 0])
        #expect(i.timestamp == [1_732_300_000, 1_732_300_001, 1_732_300_002, 1_732_300_003, 1_732_300_004,
                                1_732_300_005, 2024])
        #expect(i.device.map { ds.devices[Int($0)] } == ["mobile", "mobile", "tv", "", "desktop", "tv", ""])
        #expect(i.query == [-1, -1, -1, -1, 0, -1, -1])
        #expect(ds.queries[0] == "cats, funny")
        #expect(ds.newestInteraction == 1_732_300_005)

        // Relevance: like; watch ≥ fraction × duration (60 of 100 yes at 0.5, not at 0.7; 12.5 of 60.5 no).
        #expect((0..<7).map { ds.isRelevant($0, watchFraction: 0.5) } == [false, true, false, true, false, false, false])
        #expect(!ds.isRelevant(1, watchFraction: 0.7))
    }

    @Test func badRowsAreSkippedCountedAndReported() throws {
        let dir = TempDir()
        let users = Self.users + #"""
            u1,US,en,,,,x
            u4,USA,en,,,,x
            u5,US,en,200,,,x
            u6,US,en,,x,,x
            u7,US,en,,,yesterday,x
            u8,US,en,,,
            u9,US,a-very-long-language-tag,,,,x

            """#
        let videos = Self.videos + #"""
            *,v1,10,en,1,,,
            *,v5,-3,en,1,,,
            *,v6,abc,en,1,,,
            *,v7,10,en,,,,
            maybe,v8,10,en,1,,,
            allow:USA,v9,10,en,1,,,

            """#
        let interactions = Self.interactions + #"""
            u1,v999,watch,10,1732300000,,
            u404,v1,watch,10,1732300000,,
            u1,v1,watched,10,1732300000,,
            u1,,watch,10,1732300000,,
            u1,v1,watch,ten,1732300000,,
            u1,v1,watch,-1,1732300000,,
            u1,v1,watch,10,not-a-time,,
            u1,v1,watch,10,1732300000
            u1,v1,"watch"x,10,1732300000,,

            """#
        writeDataset(dir, users: users, videos: videos, interactions: interactions)
        let ds = try DatasetLoader.load(directory: dir.path, config: config(maxBad: 1), progress: false)
        #expect(ds.users.count == 3 && ds.videos.count == 4 && ds.interactions.count == 7)
        let f = ds.report.files
        #expect(f[0].rows == 10 && f[0].badRows == 7)
        #expect(f[0].badByReason == ["duplicate user_id": 1, "bad country": 1, "bad age": 1, "bad gender": 1,
                                     "bad signup_time": 1, "wrong field count": 1, "bad language": 1])
        #expect(f[1].rows == 10 && f[1].badRows == 6)
        #expect(f[1].badByReason == ["duplicate video_id": 1, "bad duration_seconds": 2, "bad published_time": 1,
                                     "bad availability": 2])
        #expect(f[2].rows == 16 && f[2].badRows == 9)
        #expect(f[2].badByReason == ["unknown video_id": 1, "unknown user_id": 1, "unknown event": 1,
                                     "missing video_id": 1, "bad watch_seconds": 2, "bad timestamp": 1,
                                     "wrong field count": 1, "bad quoting": 1])
        // The first 20 examples (of 22), as file:line: reason.
        #expect(ds.report.examples.count == 20)
        #expect(ds.report.examples.first == "users.csv:5: duplicate user_id 'u1'")
        #expect(ds.report.examples.contains("users.csv:10: wrong field count (6 fields, expected 7)"))
        #expect(ds.report.examples.contains("videos.csv:7: duplicate video_id 'v1'"))
        #expect(ds.report.examples.contains("videos.csv:12: bad availability 'allow:USA'"))
        #expect(ds.report.examples.contains("interactions.csv:9: unknown video_id 'v999'"))
        #expect(ds.report.examples.contains("interactions.csv:10: unknown user_id 'u404'"))
        #expect(ds.report.examples.contains("interactions.csv:11: unknown event 'watched'"))
        #expect(ds.report.summaryLines().first == "users.csv: 10 rows, 7 bad (bad age: 1, bad country: 1, "
                + "bad gender: 1, bad language: 1, bad signup_time: 1, duplicate user_id: 1, wrong field count: 1)")
    }

    @Test func failsAboveTheBadFractionNamingTheFile() throws {
        let dir = TempDir()
        writeDataset(dir, interactions: Self.interactions + "u1,v999,watch,10,1732300000,,\n")
        // 1 bad of 8 = 12.5%: fine at 0.2, fails at the default 0.01.
        let ds = try DatasetLoader.load(directory: dir.path, config: config(maxBad: 0.2), progress: false)
        #expect(ds.interactions.count == 7)
        let err = #expect(throws: HomefeedError.self) {
            try DatasetLoader.load(directory: dir.path, config: config(), progress: false)
        }
        let m = err?.message ?? ""
        #expect(m.hasPrefix("interactions.csv: 1 of 8 rows are bad"))
        #expect(m.contains("unknown video_id: 1"))
        #expect(m.contains("interactions.csv:9: unknown video_id 'v999'"))
    }

    @Test func missingFileAndColumnErrors() throws {
        let dir = TempDir()
        dir.write("users.csv", Self.users)
        dir.write("interactions.csv", Self.interactions)
        let e1 = #expect(throws: HomefeedError.self) {
            try DatasetLoader.load(directory: dir.path, config: config(), progress: false)
        }
        #expect(e1?.message.contains("videos.csv") == true)

        dir.write("videos.csv", Self.videos)
        dir.write("users.csv", "user_id,language\nu1,en\n")
        let e2 = #expect(throws: HomefeedError.self) {
            try DatasetLoader.load(directory: dir.path, config: config(), progress: false)
        }
        #expect(e2?.message.contains("users.csv: missing required column 'country'") == true)

        dir.write("users.csv", "")
        let e3 = #expect(throws: HomefeedError.self) {
            try DatasetLoader.load(directory: dir.path, config: config(), progress: false)
        }
        #expect(e3?.message.contains("users.csv: empty file") == true)
    }

    @Test func crlfBomAndHeaderOnlyFiles() throws {
        let dir = TempDir()
        func crlf(_ s: String) -> String { s.replacingOccurrences(of: "\n", with: "\r\n") }
        dir.write("users.csv", "\u{FEFF}" + crlf(Self.users))
        dir.write("videos.csv", crlf("video_id,language,duration_seconds,published_time\nv1,en,5,0\n"))
        dir.write("interactions.csv", "user_id,video_id,event,timestamp")
        let ds = try DatasetLoader.load(directory: dir.path, config: config(), progress: false)
        #expect(ds.users.count == 3 && ds.users.ids[2] == "u3" && ds.users.signupTime[2] == Int64.min)
        #expect(ds.videos.count == 1 && ds.videos.titles[0] == "" && ds.videos.availability == [.everywhere])
        #expect(ds.interactions.count == 0)
        #expect(ds.newestInteraction == nil)
    }

    @Test func manyDevicesFoldIntoOther() throws {
        let dir = TempDir()
        var inter = "user_id,video_id,event,timestamp,device\n"
        for k in 0..<300 { inter += "u1,v1,click,\(k),dev\(k)\n" }
        writeDataset(dir, interactions: inter)
        let ds = try DatasetLoader.load(directory: dir.path, config: config(), progress: false)
        #expect(ds.interactions.count == 300)
        #expect(ds.devices.count == 256)
        #expect(ds.devices[255] == "other")
        #expect(ds.devices[Int(ds.interactions.device[253])] == "dev253")
        #expect(ds.interactions.device[254...].allSatisfy { $0 == 255 })
    }

    @Test func garbageInteractionsNeverTrap() throws {
        let dir = TempDir()
        var rng = SeededRandom(seed: 7)
        let pieces = ["u1", "u2", "v1", "v4", "watch", "like", "search", ",", ",", ",", "\"", "\n", "\r\n", "12.5",
                      "-", "2024", "2024-11-22T", "1732300000", "", "é", "\u{0}", "allow:", "|"]
        for round in 0..<5 {
            var s = "user_id,video_id,event,watch_seconds,timestamp,device,query\n"
            for _ in 0..<300 { s += pieces[rng.nextInt(pieces.count)] }
            writeDataset(dir, interactions: s)
            let ds = try DatasetLoader.load(directory: dir.path, config: config(maxBad: 1), progress: false)
            let f = ds.report.files[2]
            #expect(f.rows == ds.interactions.count + f.badRows, "round \(round)")
            #expect(ds.interactions.video.allSatisfy { $0 >= -1 && $0 < 4 })
        }
    }
}
