import Foundation

/// Small hand-described datasets written as real CSV files, for tests of the pipeline and the daemon.
/// (Tests use generated or hand-written data only; MovieLens never enters the repository.)
public struct FixtureDataset {
    public struct User { public var id, country, language: String; public var age = ""; public var gender = "" }
    public struct Video {
        public var id, language: String
        public var duration: Int = 600
        public var published: Int64
        public var tags = ""
        public var availability = "*"
        public var title = ""
    }
    public struct Event {
        public var user, video, event: String
        public var watchSeconds: Int = 0
        public var time: Int64
    }
    public var users: [User] = []
    public var videos: [Video] = []
    public var events: [Event] = []
    public init() {}

    public mutating func user(_ id: String, _ country: String, _ language: String) {
        users.append(User(id: id, country: country, language: language))
    }
    public mutating func video(_ id: String, _ language: String, published: Int64, availability: String = "*", tags: String = "") {
        videos.append(Video(id: id, language: language, published: published, tags: tags, availability: availability))
    }
    /// A relevant (full) watch.
    public mutating func watch(_ user: String, _ video: String, at t: Int64, seconds: Int = 600) {
        events.append(Event(user: user, video: video, event: "watch", watchSeconds: seconds, time: t))
    }
    public mutating func event(_ user: String, _ video: String, _ kind: String, at t: Int64) {
        events.append(Event(user: user, video: video, event: kind, time: t))
    }

    /// Writes users.csv, videos.csv, interactions.csv into `dir` (created).
    public func write(to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var u = "user_id,country,language,age,gender,signup_time\n"
        for x in users { u += "\(x.id),\(x.country),\(x.language),\(x.age),\(x.gender),\n" }
        var v = "video_id,language,duration_seconds,published_time,title,tags,channel_id,availability\n"
        for x in videos { v += "\(x.id),\(x.language),\(x.duration),\(x.published),\(csv(x.title)),\(x.tags),,\(x.availability)\n" }
        var i = "user_id,video_id,event,watch_seconds,timestamp,device,query\n"
        for x in events { i += "\(x.user),\(x.video),\(x.event),\(x.watchSeconds),\(x.time),mobile,\n" }
        try u.write(toFile: dir + "/users.csv", atomically: false, encoding: .utf8)
        try v.write(toFile: dir + "/videos.csv", atomically: false, encoding: .utf8)
        try i.write(toFile: dir + "/interactions.csv", atomically: false, encoding: .utf8)
    }

    private func csv(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// A fresh temporary directory, removed by `remove()`.
public struct TempDir {
    public let path: String
    public init(_ label: String = "homefeed") {
        path = NSTemporaryDirectory() + "/\(label)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
    public func sub(_ name: String) -> String { path + "/" + name }
}

/// The standard fixture of the pipeline and daemon tests, with a known answer for each filter and fallback:
///
/// - regions US (English) and DE (German); `t0` = 2024-06-01T00:00:00Z is the data's now.
/// - videos v0…v9: English v0–v5, German v6–v9; v4 is allow-listed to US only, v5 is blocked in DE;
///   v3 was published 2 h before t0 (fresh), the others 30 days before.
/// - u1 (US/en) watched v0, liked v1, disliked v2; u2 (US/en) watched v0, v1, v3; u3 (DE/de) watched v6, v7;
///   plus crowd users making v0 > v1 > v3 > v4 popular in US and v6 > v7 > v8 in DE.
/// - u9 (US/en) has no history (cold).
public enum StandardFixture {
    public static let t0: Int64 = 1_717_200_000  // 2024-06-01T00:00:00Z

    public static func make() -> FixtureDataset {
        var d = FixtureDataset()
        let old = t0 - 30 * 86400
        for (i, lang) in ["en", "en", "en", "en", "en", "en", "de", "de", "de", "de"].enumerated() {
            let avail = i == 4 ? "allow:US" : (i == 5 ? "block:DE" : "*")
            d.video("v\(i)", lang, published: i == 3 ? t0 - 2 * 3600 : old, availability: avail, tags: i < 6 ? "music|pop" : "news")
        }
        d.user("u1", "US", "en"); d.user("u2", "US", "en"); d.user("u3", "DE", "de"); d.user("u9", "US", "en")
        d.watch("u1", "v0", at: t0 - 3600)
        d.event("u1", "v1", "like", at: t0 - 3000)
        d.event("u1", "v2", "dislike", at: t0 - 2000)
        for v in ["v0", "v1", "v3"] { d.watch("u2", v, at: t0 - 5000) }
        d.watch("u3", "v6", at: t0 - 4000); d.watch("u3", "v7", at: t0 - 3900)
        // Crowds: popularity in US (v0 > v1 > v3 > v4 > v5) and DE (v6 > v7 > v8 > v5).
        let us = [("v0", 30), ("v1", 25), ("v3", 20), ("v4", 15), ("v5", 10)]
        let de = [("v6", 30), ("v7", 25), ("v8", 20), ("v5", 5)]
        for k in 0..<30 {
            d.user("cu\(k)", "US", "en"); d.user("cd\(k)", "DE", "de")
            for (v, n) in us where k < n { d.watch("cu\(k)", v, at: t0 - 7200 - Int64(k)) }
            for (v, n) in de where k < n { d.watch("cd\(k)", v, at: t0 - 7200 - Int64(k)) }
        }
        return d
    }
}
