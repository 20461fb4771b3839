import Foundation
import HomefeedCore
import HomefeedData
@testable import HomefeedSynthetic
import Testing

// MARK: - Helpers

/// A fresh temporary directory, removed by `cleanup`.
func makeTempDir(_ tag: String) -> String {
    let dir = FileManager.default.temporaryDirectory.path + "/homefeed-synth-\(tag)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func cleanup(_ dir: String) { try? FileManager.default.removeItem(atPath: dir) }

/// A small independent RFC 4180 reader (so the generator is checked by a parser other than HomefeedData's).
func parseCSV(_ path: String) throws -> (header: [String], rows: [[String]]) {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var rows: [[String]] = []
    var row: [String] = []
    var field: [UInt8] = []
    var i = 0, quoted = false, fieldStarted = false
    let q = UInt8(ascii: "\""), comma = UInt8(ascii: ","), nl = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
    func endField() { row.append(String(decoding: field, as: UTF8.self)); field.removeAll(keepingCapacity: true) }
    while i < bytes.count {
        let b = bytes[i]
        if quoted {
            if b == q {
                if i + 1 < bytes.count && bytes[i + 1] == q { field.append(q); i += 2; continue }
                quoted = false
            } else { field.append(b) }
        } else if b == q && field.isEmpty && !fieldStarted {
            quoted = true; fieldStarted = true
        } else if b == comma {
            endField(); fieldStarted = false
        } else if b == nl {
            endField(); fieldStarted = false
            rows.append(row); row = []
        } else if b != cr {
            field.append(b); fieldStarted = true
        }
        i += 1
    }
    if !row.isEmpty || !field.isEmpty { endField(); rows.append(row) }
    guard let header = rows.first else { throw HomefeedError("\(path): empty") }
    return (header, Array(rows.dropFirst()))
}

/// A parsed table with columns by name.
struct Table: Sendable {
    let header: [String]
    let rows: [[String]]
    init(_ path: String) throws { (header, rows) = try parseCSV(path) }
    func col(_ name: String) -> Int { header.firstIndex(of: name)! }
}

/// The small world most structure tests look at: generated once, parsed, and its directory removed.
struct Fixture: Sendable {
    let config: GeneratorConfig
    let summary: GeneratorSummary
    let users: Table, videos: Table, interactions: Table

    static let shared: Result<Fixture, any Error> = Result {
        var c = GeneratorConfig(users: 2000, videos: 500, seed: 11)
        c.threads = 2
        let dir = makeTempDir("fixture")
        defer { cleanup(dir) }
        let s = try Generator.generate(c, out: dir, progress: false)
        return Fixture(config: c, summary: s, users: try Table(dir + "/users.csv"), videos: try Table(dir + "/videos.csv"),
                       interactions: try Table(dir + "/interactions.csv"))
    }

    static func get() throws -> Fixture { try shared.get() }
}

/// Availability of a parsed `availability` field for a country code ("" = unknown country).
func isAvailable(_ spec: String, _ country: String) -> Bool {
    if spec.isEmpty || spec == "*" { return true }
    let list = spec.split(separator: ":")[1].split(separator: "|").map(String.init)
    if spec.hasPrefix("allow:") { return list.contains(country) }
    return !list.contains(country)
}

// MARK: - Determinism

@Suite struct GeneratorDeterminismTests {
    @Test func sameSeedSameBytesWhateverTheThreads() throws {
        let a = makeTempDir("det-a"), b = makeTempDir("det-b"), c = makeTempDir("det-c")
        defer { cleanup(a); cleanup(b); cleanup(c) }
        var cfg = GeneratorConfig(users: 2500, videos: 150, seed: 3)   // > 2 blocks, so the pipeline interleaves
        cfg.interactionsPerUser = 4
        cfg.threads = 1
        try Generator.generate(cfg, out: a, progress: false)
        cfg.threads = 3
        try Generator.generate(cfg, out: b, progress: false)
        #expect(try Generator.digest(directory: a) == Generator.digest(directory: b))
        cfg.seed = 4
        try Generator.generate(cfg, out: c, progress: false)
        #expect(try Generator.digest(directory: a) != Generator.digest(directory: c))
    }

    /// The generator's defaults and model are frozen: this digest changes only when the output changes.
    /// If you change the model on purpose, re-pin the new value deliberately (and say so in the change).
    @Test func pinnedDigest() throws {
        let dir = makeTempDir("pinned")
        defer { cleanup(dir) }
        try Generator.generate(GeneratorConfig(users: 300, videos: 120, seed: 7), out: dir, progress: false)
        #expect(try Generator.digest(directory: dir) == "a76181c4a5621f03")
    }

    @Test func digestNamesAMissingFile() throws {
        let dir = makeTempDir("nofiles")
        defer { cleanup(dir) }
        #expect(throws: HomefeedError.self) { try Generator.digest(directory: dir) }
    }
}

// MARK: - Validation

@Suite struct GeneratorValidationTests {
    @Test(arguments: [(0, 10, "users"), (10, 0, "videos"), (-5, 10, "users")])
    func rejectsBadSizes(users: Int, videos: Int, word: String) throws {
        let dir = makeTempDir("bad")
        defer { cleanup(dir) }
        do {
            try Generator.generate(GeneratorConfig(users: users, videos: videos), out: dir, progress: false)
            Issue.record("expected an error")
        } catch let e as HomefeedError {
            #expect(e.message.contains(word))
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/users.csv"))
    }

    @Test func rejectsBadKnobs() {
        var c = GeneratorConfig(); c.days = 0
        #expect(throws: HomefeedError.self) { try c.validate() }
        c = GeneratorConfig(); c.noHistoryFraction = 1.5
        #expect(throws: HomefeedError.self) { try c.validate() }
        c = GeneratorConfig(); c.interactionsPerUser = -1
        #expect(throws: HomefeedError.self) { try c.validate() }
        #expect(throws: Never.self) { try GeneratorConfig().validate() }
    }

    @Test func createsNestedOutputDirectoryAndTinyWorlds() throws {
        let root = makeTempDir("nested")
        defer { cleanup(root) }
        let dir = root + "/a/b"
        let s = try Generator.generate(GeneratorConfig(users: 1, videos: 1, seed: 5), out: dir, progress: false)
        #expect(s.users == 1 && s.videos == 1)
        let users = try Table(dir + "/users.csv")
        #expect(users.rows.count == 1)
        #expect(!FileManager.default.fileExists(atPath: dir + "/users.csv.tmp"))
    }

    @Test func vocabularyTagsAreUnambiguous() {
        // Every tag word names exactly one topic, so tags tie a video to its topics.
        var seen = Set<String>()
        for t in Vocabulary.topics {
            #expect(seen.insert(t.name).inserted, "\(t.name)")
            for w in t.words { #expect(seen.insert(w).inserted, "\(w)") }
        }
        #expect(Vocabulary.topics.count == 40)
        #expect(Vocabulary.countries.count == 25)
    }
}

// MARK: - Structure of a small world

@Suite struct GeneratorStructureTests {
    @Test func headersMatchTheContract() throws {
        let f = try Fixture.get()
        #expect(f.users.header == ["user_id", "country", "language", "age", "gender", "signup_time"])
        #expect(f.videos.header == ["video_id", "language", "duration_seconds", "published_time", "title", "tags",
                                    "channel_id", "availability"])
        #expect(f.interactions.header == ["user_id", "video_id", "event", "watch_seconds", "timestamp", "device", "query"])
        for t in [f.users, f.videos, f.interactions] {
            #expect(t.rows.allSatisfy { $0.count == t.header.count })
        }
        #expect(f.users.rows.count == 2000 && f.videos.rows.count == 500)
        #expect(f.interactions.rows.count == f.summary.interactions)
        // ~20 rows per user by default.
        let perUser = Double(f.summary.interactions) / 2000
        #expect(perUser > 15 && perUser < 25, "\(perUser)")
    }

    @Test func usersAndVideosHaveValidFields() throws {
        let f = try Fixture.get()
        let countries = Set(Vocabulary.countries.map(\.code))
        let languages = Set(Vocabulary.languages)
        #expect(Set(f.users.rows.map { $0[0] }).count == 2000)
        var unknownAge = 0
        for r in f.users.rows {
            #expect(r[1].isEmpty || countries.contains(r[1]))
            #expect(languages.contains(r[2]))
            if r[3].isEmpty { unknownAge += 1 } else { #expect((13...80).contains(Int(r[3])!)) }
            #expect(["", "f", "m", "o"].contains(r[4]))
            #expect(r[5].isEmpty || Int64(r[5])! < f.config.endTime)
        }
        #expect(unknownAge > 0 && unknownAge < 300)
        // Country sizes are skewed: the biggest country has several times the users of the median one.
        let byCountry = Dictionary(grouping: f.users.rows.filter { !$0[1].isEmpty }, by: { $0[1] }).mapValues(\.count)
        let sizes = byCountry.values.sorted(by: >)
        #expect(sizes[0] > 4 * sizes[sizes.count / 2])

        #expect(Set(f.videos.rows.map { $0[0] }).count == 500)
        var quotedTitles = 0
        for r in f.videos.rows {
            #expect(languages.contains(r[1]))
            let d = Int(r[2])!
            #expect(d >= 30 && d <= 7200)
            #expect(Int64(r[3])! <= f.config.endTime)
            #expect(!r[4].isEmpty && !r[5].isEmpty && r[6].hasPrefix("c"))
            if r[4].contains(",") || r[4].contains("\"") { quotedTitles += 1 }
            let topicNames = Set(Vocabulary.topics.map(\.name))
            #expect(topicNames.contains(String(r[5].split(separator: "|")[0])))
        }
        #expect(quotedTitles > 0)   // RFC 4180 quoting is exercised
    }

    @Test func interactionsReferenceKnownRowsInTime() throws {
        let f = try Fixture.get()
        let users = Dictionary(uniqueKeysWithValues: f.users.rows.map { ($0[0], $0) })
        let videos = Dictionary(uniqueKeysWithValues: f.videos.rows.map { ($0[0], $0) })
        let start = f.config.startTime, end = f.config.endTime
        var kinds: [String: Int] = [:]
        var badRefs = 0, unavailable = 0, beforePublish = 0, beforeSignup = 0, outOfWindow = 0, badWatch = 0
        for r in f.interactions.rows {
            kinds[r[2], default: 0] += 1
            guard let u = users[r[0]] else { badRefs += 1; continue }
            let t = Int64(r[4])!
            if t < start || t > end { outOfWindow += 1 }
            if let s = Int64(u[5]), t < s { beforeSignup += 1 }
            #expect(["mobile", "desktop", "tv", "tablet"].contains(r[5]))
            if r[2] == "search" {
                #expect(r[1].isEmpty && !r[6].isEmpty)
                continue
            }
            #expect(r[6].isEmpty)
            guard let v = videos[r[1]] else { badRefs += 1; continue }
            if !isAvailable(v[7], u[1]) { unavailable += 1 }
            if t < Int64(v[3])! { beforePublish += 1 }
            if r[2] == "watch" {
                let w = Int(r[3])!
                if w < 1 || w > Int(v[2])! { badWatch += 1 }
            } else {
                #expect(r[3].isEmpty)
            }
        }
        #expect(badRefs == 0 && unavailable == 0 && beforePublish == 0 && beforeSignup == 0 && outOfWindow == 0
                && badWatch == 0)
        #expect(Set(kinds.keys) == Set(Vocabulary.events))
        #expect(kinds == f.summary.events)
        #expect(kinds["impression"]! > kinds["click"]! && kinds["watch"]! > kinds["like"]!
                && kinds["like"]! > kinds["dislike"]!)
    }

    @Test func historyActivityIsHeavyTailedWithColdAndLapsedUsers() throws {
        let f = try Fixture.get()
        var rows: [String: Int] = [:], last: [String: Int64] = [:]
        for r in f.interactions.rows {
            rows[r[0], default: 0] += 1
            last[r[0]] = max(last[r[0]] ?? 0, Int64(r[4])!)
        }
        let without = 2000 - rows.count
        #expect(without >= 140 && without <= 260, "users without history: \(without)")
        #expect(f.summary.usersWithHistory == rows.count)
        let counts = rows.values.sorted()
        let median = counts[counts.count / 2], top = counts.last!
        #expect(top > 10 * median, "median \(median), max \(top)")
        // Some users stopped a week or more before the end.
        let lapsed = last.values.filter { $0 < f.config.endTime - 7 * 86_400 }.count
        #expect(Double(lapsed) > 0.05 * Double(rows.count))
    }

    @Test func catalogHasRestrictedAndFreshVideosAndSkewedPopularity() throws {
        let f = try Fixture.get()
        let allow = f.videos.rows.filter { $0[7].hasPrefix("allow:") }.count
        let block = f.videos.rows.filter { $0[7].hasPrefix("block:") }.count
        #expect(allow >= 10 && block >= 5, "allow \(allow) block \(block)")
        let fresh = f.videos.rows.filter { Int64($0[3])! > f.config.endTime - 48 * 3600 }.count
        #expect(fresh >= 5 && fresh <= 40, "fresh \(fresh)")
        // Popularity: the top 10% of videos get more than 40% of the watches.
        var watches: [String: Int] = [:]
        for r in f.interactions.rows where r[2] == "watch" { watches[r[1], default: 0] += 1 }
        let sorted = watches.values.sorted(by: >)
        let total = sorted.reduce(0, +)
        let top = sorted.prefix(50).reduce(0, +)
        #expect(Double(top) > 0.4 * Double(total), "\(top) of \(total)")
    }

    @Test func watchDepthAndLanguageFollowTheModel() throws {
        let f = try Fixture.get()
        let videos = Dictionary(uniqueKeysWithValues: f.videos.rows.map { ($0[0], $0) })
        let userLang = Dictionary(uniqueKeysWithValues: f.users.rows.map { ($0[0], $0[2]) })
        let watchRows = f.interactions.rows.filter { $0[2] == "watch" }
        var relevant = 0, sameLanguage = 0, sameByChance = 0
        var rng = SeededRandom(seed: 1)
        for r in watchRows {
            let v = videos[r[1]]!
            if Double(r[3])! >= 0.5 * Double(v[2])! { relevant += 1 }
            if v[1] == userLang[r[0]] { sameLanguage += 1 }
            // Chance level: the language of someone else's watch.
            if videos[watchRows[rng.nextInt(watchRows.count)][1]]![1] == userLang[r[0]] { sameByChance += 1 }
        }
        let rel = Double(relevant) / Double(watchRows.count)
        #expect(rel > 0.35 && rel < 0.85, "relevant share \(rel)")
        #expect(Double(sameLanguage) > 1.5 * Double(sameByChance), "same language \(sameLanguage), by chance \(sameByChance)")
    }
}

// MARK: - The planted structure

@Suite struct GeneratorPlantedStructureTests {
    /// Users watch videos that match their (hidden) taste far above chance; likes match better than dislikes.
    @Test func watchedVideosMatchTheHiddenTaste() throws {
        let f = try Fixture.get()
        let world = World(f.config)
        let model = UserModel(world: world)
        func index(_ id: String) -> Int { Int(id.dropFirst())! }
        var byUser: [Int: [(String, Int)]] = [:]
        for r in f.interactions.rows where r[2] != "search" && r[2] != "impression" {
            byUser[index(r[0]), default: []].append((r[2], index(r[1])))
        }
        var watched = 0.0, random = 0.0, liked = 0.0, disliked = 0.0
        var nw = 0, nr = 0, nl = 0, nd = 0
        var rng = SeededRandom(seed: 99)
        for (u, events) in byUser {
            var s = UserModel.stream(f.config, u)
            let p = model.profile(&s)
            for (kind, v) in events {
                let z = model.match(p, v)
                switch kind {
                case "watch":
                    watched += z; nw += 1
                    random += model.match(p, rng.nextInt(world.videoCount)); nr += 1
                case "like": liked += z; nl += 1
                case "dislike": disliked += z; nd += 1
                default: break
                }
            }
        }
        let mw = watched / Double(nw), mr = random / Double(nr), ml = liked / Double(nl), md = disliked / Double(nd)
        #expect(mw - mr > 0.7, "watched \(mw) vs random \(mr)")
        #expect(ml > md + 1, "liked \(ml) vs disliked \(md)")
    }

    /// Visible in the data alone (what collaborative filtering exploits): a user's later watches fall in the
    /// topics of their earlier ones far more often than the watches of everyone else do.
    @Test func laterWatchesRepeatEarlierTopics() throws {
        let f = try Fixture.get()
        let topicOf = Dictionary(uniqueKeysWithValues: f.videos.rows.map { ($0[0], String($0[5].split(separator: "|")[0])) })
        var seq: [String: [String]] = [:]
        for r in f.interactions.rows where r[2] == "watch" { seq[r[0], default: []].append(topicOf[r[1]]!) }
        let pool = seq.values.flatMap { $0 }
        var hits = 0, chance = 0, n = 0
        var rng = SeededRandom(seed: 5)
        for topics in seq.values where topics.count >= 6 {
            let half = topics.count / 2
            let early = Set(topics[..<half])
            for t in topics[half...] {
                n += 1
                if early.contains(t) { hits += 1 }
                if early.contains(pool[rng.nextInt(pool.count)]) { chance += 1 }
            }
        }
        #expect(n > 1000)
        #expect(Double(hits) > 1.5 * Double(chance), "hits \(hits) chance \(chance) of \(n)")
    }

    /// Features carry taste too (what a feature-based model exploits): segments lean to their favorite topics.
    @Test func segmentsLeanToTheirTopics() throws {
        let f = try Fixture.get()
        let topicOf = Dictionary(uniqueKeysWithValues: f.videos.rows.map { ($0[0], String($0[5].split(separator: "|")[0])) })
        let age = Dictionary(uniqueKeysWithValues: f.users.rows.map { ($0[0], Int($0[3]) ?? 0) })
        var teen = [0, 0], older = [0, 0]   // [gaming-ish, all] watches
        let teenTopics: Set<String> = ["gaming", "mobilegaming", "shorts", "anime", "dance", "kids"]
        for r in f.interactions.rows where r[2] == "watch" {
            let a = age[r[0]]!
            let hit = teenTopics.contains(topicOf[r[1]]!) ? 1 : 0
            if a >= 13 && a < 18 { teen[0] += hit; teen[1] += 1 } else if a >= 50 { older[0] += hit; older[1] += 1 }
        }
        let teenShare = Double(teen[0]) / Double(teen[1]), olderShare = Double(older[0]) / Double(older[1])
        #expect(teenShare > 1.5 * olderShare, "13–17: \(teenShare), 50+: \(olderShare)")
    }
}

// MARK: - Round trip through the loader

@Suite struct GeneratorLoaderTests {
    @Test func loadsWithoutBadRows() throws {
        let dir = makeTempDir("load")
        defer { cleanup(dir) }
        let s = try Generator.generate(GeneratorConfig(users: 600, videos: 200, seed: 2), out: dir, progress: false)
        let d = try DatasetLoader.load(directory: dir, config: HomefeedConfig().data, progress: false)
        #expect(d.report.badRows == 0)
        #expect(d.users.count == 600 && d.videos.count == 200 && d.interactions.count == s.interactions)
        #expect(d.videos.availability.contains(.allowList) || d.videos.availability.contains(.blockList))
        // The loader's availability check agrees: no interaction with a video unavailable in the user's country.
        for i in 0..<d.interactions.count where d.interactions.video[i] >= 0 {
            let u = Int(d.interactions.user[i])
            #expect(d.videos.isAvailable(Int(d.interactions.video[i]), in: d.users.country[u]))
        }
        let relevant = (0..<d.interactions.count).filter { d.isRelevant($0, watchFraction: 0.5) }.count
        #expect(relevant > 0)
    }
}
