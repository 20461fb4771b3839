extension StoreVersion {
    /// Every fallback list of the version with its scope and code, in key order.
    public var popularLists: [(scope: PopularScope, code: String, list: RecommendationList)] {
        popular.keys.sorted { $0.lexicographicallyPrecedes($1) }.compactMap { key in
            guard key.count >= 2, let scope = PopularScope(rawValue: key[1]) else { return nil }
            return (scope, String(decoding: key[2...], as: UTF8.self), popular[key]!)
        }
    }
}

extension StoreVersion {
    /// The version's cold-start segment lists (`PS` + `UserSegment.code`), in key order. A `PS` key whose code does
    /// not parse (no writer of this build makes one) is left out.
    public var segmentLists: [(segment: UserSegment, list: RecommendationList)] {
        popularLists.compactMap { p in
            guard p.scope == .segment, let s = UserSegment(code: p.code) else { return nil }
            return (s, p.list)
        }
    }

    /// The list of one segment, or nil.
    public func segmentList(_ segment: UserSegment) -> RecommendationList? {
        popularList(.segment, segment.code)
    }
}
