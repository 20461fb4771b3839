import HomefeedCore

/// What a version records about the run that produced it (key `Mmeta`, and `meta.json` beside the database).
public struct RunMetadata: Codable, Sendable, Equatable {
    public struct Counts: Codable, Sendable, Equatable {
        public var users = 0, videos = 0, interactions = 0
        public var activeUsers = 0
        public var personalizedUsers = 0
        public var meanListLength = 0.0
        public var popularLists = 0
        public var badRows = 0
        public init() {}
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

    /// Layout version of the store (keys, list and video records).
    public var storeFormat = 1
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
    public var builtBy = "homefeed-batch"
    public init() {}
}
