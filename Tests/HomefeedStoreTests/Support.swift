import Foundation
import Glibc
import HomefeedCore
import HomefeedStore
import Testing

// Shared fixtures of the store tests: a fresh store directory per test (removed afterwards), deterministic lists,
// videos and metadata, and a one-call version build.

/// Runs `body` with a new, empty store root under the system temp directory and removes it afterwards.
/// Closure-scoped on purpose: the directory must outlive everything the body opens in it.
func withTempStore<T>(_ body: (VersionedStore, String) throws -> T) throws -> T {
    var template = Array((NSTemporaryDirectory() + "/homefeed-store-test-XXXXXX").utf8CString)
    let dir: String = try template.withUnsafeMutableBufferPointer { buf in
        guard let p = mkdtemp(buf.baseAddress!) else { throw HomefeedError("mkdtemp failed: \(errno)") }
        return String(cString: p)
    }
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let root = dir + "/store"
    return try body(VersionedStore(root: root), dir)
}

/// Expects `body` to throw a HomefeedError whose message contains every fragment.
func expectHomefeedError<T>(_ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation,
                            _ body: () throws -> T) {
    do {
        _ = try body()
        Issue.record("expected an error mentioning \(fragments), got none", sourceLocation: sourceLocation)
    } catch let e as HomefeedError {
        for f in fragments {
            #expect(e.message.contains(f), "error '\(e.message)' should mention '\(f)'", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a HomefeedError, got \(error)", sourceLocation: sourceLocation)
    }
}

enum Fixture {
    static let createdAt: Int64 = 1_763_920_800  // 2025-11-23T18:00:00Z

    /// A deterministic list of `count` entries derived from `seed`.
    static func list(seed: Int, count: Int, country: String = "US", language: String = "en") -> RecommendationList {
        var rng = SeededRandom(seed: UInt64(seed) &+ 17)
        let sources = CandidateSource.allCases
        var l = RecommendationList()
        for i in 0..<count {
            l.videos.append(UInt32(rng.nextInt(10_000)))
            l.scores.append(Float(count - i) / 7 + Float(rng.nextDouble()))
            l.sources.append(sources[rng.nextInt(sources.count)])
        }
        l.country = CountryCode(country) ?? .unknown
        l.language = language
        return l
    }

    /// `n` users `user-0` … with lists of 0…29 entries, sorted in store key order.
    static func users(_ n: Int, prefix: String = "user-") -> [(id: String, list: RecommendationList)] {
        let countries = ["US", "DE", "BR", "JP"], languages = ["en", "de", "pt", "ja"]
        let all = (0..<n).map { i in
            (id: "\(prefix)\(i)", list: list(seed: i, count: i % 30, country: countries[i % 4], language: languages[i % 4]))
        }
        return sortedByKey(all)
    }

    static func sortedByKey(_ users: [(id: String, list: RecommendationList)]) -> [(id: String, list: RecommendationList)] {
        users.sorted { StoreKey.user($0.id).lexicographicallyPrecedes(StoreKey.user($1.id)) }
    }

    static func videos(_ n: Int) -> [VideoRecord] {
        (0..<n).map { i in
            switch i % 3 {
            case 0: VideoRecord(id: "vid-\(i)", availability: 0, countries: [], publishedAt: 1_700_000_000 + Int64(i),
                                language: "en")
            case 1: VideoRecord(id: "vid-\(i)", availability: 1, countries: [CountryCode("US")!, CountryCode("CA")!],
                                publishedAt: 1_700_000_000 + Int64(i), language: "fr")
            default: VideoRecord(id: "vid-\(i)", availability: 2, countries: [CountryCode("DE")!],
                                 publishedAt: 1_700_000_000 + Int64(i), language: "")
            }
        }
    }

    static let popular: [(scope: PopularScope, code: String, list: RecommendationList)] = [
        (.global, "", list(seed: 1001, count: 40, country: "ZZ", language: "")),
        (.region, "US", list(seed: 1002, count: 30, country: "US", language: "")),
        (.language, "en", list(seed: 1003, count: 20, country: "ZZ", language: "en")),
    ]

    static func metadata(personalizedUsers: Int = 1000, meanListLength: Double = 50,
                         storeFormat: Int = RunMetadata.currentStoreFormat) -> RunMetadata {
        var m = RunMetadata()
        m.storeFormat = storeFormat
        m.createdAt = createdAt
        m.asOf = createdAt - 3600
        m.configDigest = "cfg-1234"
        m.dataDirectory = "/data/in"
        m.sourceFiles = [.init(name: "interactions.csv", bytes: 12345, rows: 678)]
        m.counts.users = 2000
        m.counts.videos = 30
        m.counts.interactions = 678
        m.counts.activeUsers = 1500
        m.counts.personalizedUsers = personalizedUsers
        m.counts.meanListLength = meanListLength
        m.counts.popularLists = 3
        m.stages = [.init(name: "load", seconds: 1.25), .init(name: "write", seconds: 0.5)]
        m.models = ["mf": "als-64"]
        return m
    }

    /// Builds and finishes one version (not published); returns its name.
    @discardableResult
    static func build(_ store: VersionedStore, users: [(id: String, list: RecommendationList)] = [],
                      metadata: RunMetadata = Fixture.metadata(), videos: [VideoRecord] = Fixture.videos(6),
                      popular: [(scope: PopularScope, code: String, list: RecommendationList)] = Fixture.popular,
                      createdAt: Int64 = Fixture.createdAt) throws -> String {
        let b = try VersionBuilder(store: store, createdAt: createdAt)
        try b.writePopular(popular)
        let w = try b.userListWriter()
        for u in users { try w.add(userID: u.id, list: u.list) }
        try w.finish()
        try b.writeVideos(videos)
        try b.finish(metadata: metadata)
        return b.name
    }
}

/// A decoded copy of a view, for comparing with what was written.
func decoded(_ v: ListView) -> RecommendationList {
    var l = RecommendationList()
    for i in 0..<v.count { l.videos.append(v.video(i)); l.scores.append(v.score(i)); l.sources.append(v.source(i)) }
    l.country = v.country
    l.language = v.language
    return l
}

func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

func directoryNames(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}
