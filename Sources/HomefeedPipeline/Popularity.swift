import Foundation
import HomefeedCore
import HomefeedData
import HomefeedStore

/// Recency-weighted popularity, globally and per region (the interacting user's country) and per language
/// (the interacting user's language).
///
///     pop(v) = Σ_{interactions i on v within the window} w(event_i) · 2^(−age_i / half_life)
///
/// with w = 1 for a relevant watch, a like or a share, 0.5 for a comment, 0.2 for a click or a short watch,
/// −1 for a dislike, 0 otherwise (docs/ARCHITECTURE.md). A region or language gets its own list once its
/// total weight reaches `min_popular_list_interactions`; its list is topped up from the global ranking so it
/// is always full. Region lists hold only videos available in that region.
public struct Popularity: Sendable {
    public struct Ranked: Sendable {
        public var videos: [UInt32] = []
        public var scores: [Float] = []
    }
    public var global = Ranked()
    public var regions: [CountryCode: Ranked] = [:]
    public var languages: [String: Ranked] = [:]

    public static func eventWeight(_ data: Dataset, _ i: Int, watchFraction: Double) -> Float {
        switch data.interactions.event[i] {
        case .watch: return data.isRelevant(i, watchFraction: watchFraction) ? 1 : 0.2
        case .like, .share: return 1
        case .comment: return 0.5
        case .click: return 0.2
        case .dislike: return -1
        case .impression, .search: return 0
        }
    }

    public init(_ data: Dataset, asOf: Int64, config: HomefeedConfig, length: Int) {
        let ix = data.interactions
        let halfLife = config.refresh.popularHalfLifeHours * 3600
        let since = asOf - Int64(config.refresh.popularWindowDays) * 86400
        let videoCount = data.videos.count
        var globalScore = [Float](repeating: 0, count: videoCount)
        var byRegion: [CountryCode: [Int32: Float]] = [:]
        var byLanguage: [Int32: [Int32: Float]] = [:]
        var regionMass: [CountryCode: Double] = [:], languageMass: [Int32: Double] = [:]
        // 1. Accumulate decayed weights per video, per (region, video) and per (language, video).
        for i in 0..<ix.count {
            let t = ix.timestamp[i]
            guard t >= since, t <= asOf, ix.video[i] >= 0 else { continue }
            let w0 = Self.eventWeight(data, i, watchFraction: config.data.relevanceWatchFraction)
            if w0 == 0 { continue }
            let w = w0 * Float(exp2(-Double(asOf - t) / halfLife))
            let v = ix.video[i], u = Int(ix.user[i])
            globalScore[Int(v)] += w
            let c = data.users.country[u], l = data.users.language[u]
            byRegion[c, default: [:]][v, default: 0] += w
            byLanguage[l, default: [:]][v, default: 0] += w
            if w0 > 0 { regionMass[c, default: 0] += Double(w0); languageMass[l, default: 0] += Double(w0) }
        }
        // 2. Rank: global first (it tops up the others).
        let globalOrder = Self.rank((0..<videoCount).lazy.filter { globalScore[$0] > 0 }.map { (Int32($0), globalScore[$0]) }, length: videoCount)
        global = Ranked(videos: Array(globalOrder.videos.prefix(length)), scores: Array(globalOrder.scores.prefix(length)))
        let minMass = config.refresh.minPopularListInteractions
        for (c, scores) in byRegion where regionMass[c, default: 0] >= minMass && c != .unknown {
            let ranked = Self.rank(scores.lazy.filter { $0.value > 0 && data.videos.isAvailable(Int($0.key), in: c) }.map { ($0.key, $0.value) }, length: length)
            regions[c] = Self.topUp(ranked, from: globalOrder, length: length) { data.videos.isAvailable(Int($0), in: c) }
        }
        for (l, scores) in byLanguage where languageMass[l, default: 0] >= minMass {
            let ranked = Self.rank(scores.lazy.filter { $0.value > 0 }.map { ($0.key, $0.value) }, length: length)
            languages[data.languages[l]] = Self.topUp(ranked, from: globalOrder, length: length) { _ in true }
        }
    }

    /// Top `length` by score, ties by video index (deterministic).
    static func rank<S: Sequence>(_ items: S, length: Int) -> Ranked where S.Element == (Int32, Float) {
        let sorted = items.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(length)
        return Ranked(videos: sorted.map { UInt32($0.0) }, scores: sorted.map { $0.1 })
    }

    /// Fills a short list with the next globally popular videos that pass `allowed`, scored just below it.
    static func topUp(_ r: Ranked, from global: Ranked, length: Int, allowed: (UInt32) -> Bool) -> Ranked {
        var out = r
        guard out.videos.count < length else { return out }
        var have = Set(out.videos)
        var floor = (out.scores.last ?? 1) * 0.5
        for (v, s) in zip(global.videos, global.scores) where out.videos.count < length {
            if have.contains(v) || !allowed(v) { continue }
            have.insert(v)
            floor = min(floor, s * 0.001)
            out.videos.append(v); out.scores.append(floor)
        }
        return out
    }

    /// The lists to publish as fallbacks, each with `length` entries at most.
    public func fallbackLists(length: Int) -> [(scope: PopularScope, code: String, list: RecommendationList)] {
        // Scores are scaled so each list's top is 1: clients see comparable numbers across lists.
        func list(_ r: Ranked, _ src: CandidateSource) -> RecommendationList {
            let n = min(length, r.videos.count)
            let top = max(r.scores.first ?? 1, .leastNormalMagnitude)
            return RecommendationList(videos: Array(r.videos.prefix(n)), scores: r.scores.prefix(n).map { $0 / top },
                                      sources: Array(repeating: src, count: n))
        }
        var out: [(scope: PopularScope, code: String, list: RecommendationList)] = [(.global, "", list(global, .popularGlobal))]
        for (c, r) in regions.sorted(by: { $0.key < $1.key }) { out.append((.region, c.description, list(r, .popularRegion))) }
        for (l, r) in languages.sorted(by: { $0.key < $1.key }) { out.append((.language, l, list(r, .popularLanguage))) }
        return out
    }
}
