import HomefeedCore

/// What a version records about the run that produced it (key `Mmeta`, and `meta.json` beside the database).
public struct RunMetadata: Codable, Sendable, Equatable {
    public struct Counts: Codable, Sendable, Equatable {
        public var users = 0, videos = 0, interactions = 0
        public var activeUsers = 0
        public var personalizedUsers = 0
        /// Users whose list the MF model ranked (the others had no MF signal: popularity ranked theirs).
        public var mfUsers = 0
        public var meanListLength = 0.0
        /// Fallback lists by region, language and global (`PG`, `PR…`, `PL…`).
        public var popularLists = 0
        /// Cold-start segment lists (`PS…`, `UserSegment`); not in `popularLists`. See `VersionBuilder.segmentListsWritten`.
        public var segmentLists = 0
        public var badRows = 0
        /// Entries of the personalized lists by the candidate source that proposed them first (gathering order: MF,
        /// two-tower, regional, language and global popular, fresh; `CandidateSource.name`; see `SourceTally`).
        public var sources: [String: Int] = [:]
        public init() {}

        /// Absent fields read as 0, so versions written before a count existed still load (rollback to them works).
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func get<T: Decodable & AdditiveArithmetic>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
            users = try get(.users, 0); videos = try get(.videos, 0); interactions = try get(.interactions, 0)
            activeUsers = try get(.activeUsers, 0); personalizedUsers = try get(.personalizedUsers, 0)
            mfUsers = try get(.mfUsers, 0); meanListLength = try get(.meanListLength, 0.0)
            popularLists = try get(.popularLists, 0); segmentLists = try get(.segmentLists, 0); badRows = try get(.badRows, 0)
            sources = try c.decodeIfPresent([String: Int].self, forKey: .sources) ?? [:]
        }
    }
    /// Counts published entries by candidate source on the refresh's write path (an array by raw value: a string
    /// key per entry cost ~1 % of a 1 M-user refresh), named once at the end.
    public struct SourceTally: Sendable {
        private var counts = [Int](repeating: 0, count: Int(CandidateSource.allCases.map(\.rawValue).max()!) + 1)
        public init() {}
        public mutating func add(_ list: RecommendationList) {
            for s in list.sources { counts[Int(s.rawValue)] += 1 }
        }
        public var byName: [String: Int] {
            var out: [String: Int] = [:]
            for s in CandidateSource.allCases where counts[Int(s.rawValue)] > 0 { out[s.name] = counts[Int(s.rawValue)] }
            return out
        }
    }
    public struct Stage: Codable, Sendable, Equatable {
        public var name: String
        public var seconds: Double
        public init(name: String, seconds: Double) { self.name = name; self.seconds = seconds }
    }
    public struct SourceFile: Codable, Sendable, Equatable {
        public var name: String
        public var bytes: Int
        public var rows: Int
        public init(name: String, bytes: Int, rows: Int) { self.name = name; self.bytes = bytes; self.rows = rows }
    }

    /// Layout version of the store (keys, list and video records). 2: user keys lead with `StoreKey.userHash`
    /// (format 1 used plain FNV-1a: this build's lookups would miss every user of such a version).
    public static let currentStoreFormat = 2
    public var storeFormat = RunMetadata.currentStoreFormat
    public var version = ""
    /// Wall-clock time the version was built (Unix s).
    public var createdAt: Int64 = 0
    /// The data's "now": time windows count back from it and the daemon measures video age against it.
    public var asOf: Int64 = 0
    public var configDigest = ""
    public var dataDirectory = ""
    public var sourceFiles: [SourceFile] = []
    public var counts = Counts()
    public var stages: [Stage] = []
    /// Shards whose SSTs were ingested (1 = unsharded run).
    public var shards = 1
    /// Models used (filled by the model stages; empty for the popularity baseline).
    public var models: [String: String] = [:]
    /// What ranked the personalized lists: "learned", "mf_ranking", "two_tower", "mf" or "popular" (nil in versions
    /// written before it was recorded).
    public var ranking: String? = nil
    /// How MF candidates were retrieved (nil without MF).
    public var retrieval: RetrievalInfo? = nil
    /// The previously served version's lists replayed against the interactions that arrived after its as-of time
    /// (docs/EVALUATION.md); nil when there was none to replay.
    public var replay: ReplayReport? = nil
    public var builtBy = "homefeed-batch"
    public init() {}

    /// Refuses a version this build cannot read, naming it, its store format and the one this build reads.
    public func checkStoreFormat(version: String) throws {
        guard storeFormat == Self.currentStoreFormat else {
            throw HomefeedError("version \(version) has store format \(storeFormat); this build reads format \(Self.currentStoreFormat)")
        }
    }
}

/// How a run retrieved MF candidates: exactly, or through the IVF index with its recall measured on the run's own
/// embeddings (a sample of users, IVF against the exact path).
public struct RetrievalInfo: Codable, Sendable, Equatable {
    /// "exact" or "ivf".
    public var method = "exact"
    public var videos = 0
    public var cells = 0, probe = 0
    /// IVF: recall@k of the IVF path against the exact path over `sampledUsers` users of this run.
    public var k = 0, sampledUsers = 0
    public var recall: Double?
    public init() {}
}
