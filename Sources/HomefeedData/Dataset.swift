import HomefeedCore

/// The kinds of interaction of the input contract (docs/DATA.md). Raw values are stable (persisted in tests/docs).
public enum EventKind: UInt8, Sendable, CaseIterable {
    case impression = 0, click, watch, like, dislike, share, comment, search

    public var name: String {
        switch self {
        case .impression: "impression"; case .click: "click"; case .watch: "watch"; case .like: "like"
        case .dislike: "dislike"; case .share: "share"; case .comment: "comment"; case .search: "search"
        }
    }
}

public enum Gender: UInt8, Sendable { case unknown = 0, female, male, other }

/// Where a video may be shown.
public enum AvailabilityMode: UInt8, Sendable { case everywhere = 0, allowList = 1, blockList = 2 }

/// Users as columns; index = dense user index (Int32), the id is `ids[index]`.
public struct Users: Sendable {
    public var ids = Interner()
    public var country: [CountryCode] = []
    public var language: [Int32] = []        // index into Dataset.languages
    public var age: [UInt8] = []             // 0 = unknown
    public var gender: [Gender] = []
    public var signupTime: [Int64] = []      // Int64.min = unknown
    public var count: Int { country.count }
    public init() {}
}

/// Videos as columns; list-valued fields are CSR (offsets has count + 1 entries).
public struct Videos: Sendable {
    public var ids = Interner()
    public var language: [Int32] = []        // index into Dataset.languages
    public var durationSeconds: [Float] = []
    public var publishedAt: [Int64] = []
    public var titles = Interner(unique: false)   // title of video i is titles[i] (not deduplicated)
    public var tagOffsets: [Int32] = [0]     // tags of video i: tagIds[tagOffsets[i]..<tagOffsets[i+1]]
    public var tagIds: [Int32] = []          // index into Dataset.tags
    public var channel: [Int32] = []         // index into Dataset.channels, -1 = none
    public var availability: [AvailabilityMode] = []
    public var countryOffsets: [Int32] = [0] // countries of the allow/block list of video i
    public var countries: [CountryCode] = []
    public var count: Int { durationSeconds.count }
    public init() {}

    public func tags(of v: Int) -> ArraySlice<Int32> { tagIds[Int(tagOffsets[v])..<Int(tagOffsets[v + 1])] }
    public func countryList(of v: Int) -> ArraySlice<CountryCode> {
        countries[Int(countryOffsets[v])..<Int(countryOffsets[v + 1])]
    }

    /// Whether video `v` may be shown in `country`.
    @inlinable
    public func isAvailable(_ v: Int, in country: CountryCode) -> Bool {
        switch availability[v] {
        case .everywhere: return true
        case .allowList: return countryList(of: v).contains(country)
        case .blockList: return !countryList(of: v).contains(country)
        }
    }
}

/// Interactions as columns, in file order.
public struct Interactions: Sendable {
    public var user: [Int32] = []
    public var video: [Int32] = []           // -1 for search
    public var event: [EventKind] = []
    public var watchSeconds: [Float] = []
    public var timestamp: [Int64] = []
    public var device: [UInt8] = []          // index into Dataset.devices (0 = none)
    public var query: [Int32] = []           // index into Dataset.queries, -1 = none
    public var count: Int { user.count }
    public init() {}

    public mutating func reserve(_ n: Int) {
        user.reserveCapacity(n); video.reserveCapacity(n); event.reserveCapacity(n)
        watchSeconds.reserveCapacity(n); timestamp.reserveCapacity(n); device.reserveCapacity(n); query.reserveCapacity(n)
    }
}

/// A loaded dataset: typed columns with interned ids.
public struct Dataset: Sendable {
    public var users = Users()
    public var videos = Videos()
    public var interactions = Interactions()
    public var languages = Interner()        // shared by users and videos
    public var tags = Interner()
    public var channels = Interner()
    public var devices = Interner()          // index 0 is "" (no device)
    public var queries = Interner()
    public var report = LoadReport()
    public init() { _ = devices.intern("") }

    /// Newest interaction time (the default `--now`), or nil without interactions.
    public var newestInteraction: Int64? { interactions.timestamp.max() }

    /// Relevance of interaction `i` (docs/DATA.md): a like, or a watch of ≥ `fraction` of the duration.
    @inlinable
    public func isRelevant(_ i: Int, watchFraction: Double) -> Bool {
        switch interactions.event[i] {
        case .like: return true
        case .watch:
            let v = Int(interactions.video[i])
            return Double(interactions.watchSeconds[i]) >= watchFraction * Double(videos.durationSeconds[v])
        default: return false
        }
    }
}

/// What loading found: rows read and bad rows by file and reason, with the first examples as `file:line: reason`.
public struct LoadReport: Sendable, Codable, Equatable {
    public struct FileReport: Sendable, Codable, Equatable {
        public var file: String
        public var rows = 0
        public var badRows = 0
        public var badByReason: [String: Int] = [:]
        public var seconds = 0.0
        public init(file: String) { self.file = file }
    }
    public var files: [FileReport] = []
    /// The first bad rows, as `file:line: reason`.
    public var examples: [String] = []
    public init() {}
}
