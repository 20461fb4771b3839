import HomefeedCore
import HomefeedStore

/// Everything a request reads, swapped as one object: the open version, its fallback lists indexed for lookup,
/// and the blocklist resolved to the version's video indices. Requests take a reference and keep it until they
/// finish, so a swap never fails a request in flight; the old version closes when its last request ends.
public final class ServingState: Sendable {
    public let version: StoreVersion
    public let blockedCount: Int
    let filter: FilterTable
    let regionLists: [UInt16: RecommendationList]
    let languageLists: [String: RecommendationList]
    let globalList: RecommendationList?
    /// Cold-start segment lists, by the packed segment (hashing it touches no String storage).
    let segmentLists: [UserSegment.Key: RecommendationList]
    /// Pre-rendered `"version":"…","generated_at":"…","as_of":"…"` for responses.
    let versionJSON: [UInt8]
    /// Wall clock when this state was opened and the version's own times, for video age.
    public let asOf: Int64
    public let createdAt: Int64

    public init(version: StoreVersion, blocklist: Set<String>) {
        self.version = version
        var blocked = [Bool](repeating: false, count: version.videos.count)
        var n = 0
        for id in blocklist {
            if let v = version.videos.index(of: id) { blocked[Int(v)] = true; n += 1 }
        }
        blockedCount = n
        filter = FilterTable(videos: version.videos, blocked: blocked)
        var regions: [UInt16: RecommendationList] = [:], languages: [String: RecommendationList] = [:]
        var segments: [UserSegment.Key: RecommendationList] = [:]
        for (scope, code, list) in version.popularLists {
            switch scope {
            case .region: if let c = CountryCode(code) { regions[c.raw] = list }
            case .language: languages[code] = list
            case .segment: if let key = UserSegment(code: code)?.key { segments[key] = list }
            case .global: break
            }
        }
        regionLists = regions
        languageLists = languages
        segmentLists = segments
        globalList = version.popularList(.global)
        asOf = version.metadata.asOf
        createdAt = version.metadata.createdAt
        var j: [UInt8] = Array("\"version\":".utf8) + JSONText.escaped(version.name)
        j += Array(",\"generated_at\":\"\(TimeFormat.iso8601(createdAt))\",\"as_of\":\"\(TimeFormat.iso8601(asOf))\"".utf8)
        versionJSON = j
    }

    /// A new state for the same version with another blocklist.
    public func with(blocklist: Set<String>) -> ServingState { ServingState(version: version, blocklist: blocklist) }
}
