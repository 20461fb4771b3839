extension StoreVersion {
    /// Every fallback list of the version with its scope and code, in key order.
    public var popularLists: [(scope: PopularScope, code: String, list: RecommendationList)] {
        popular.keys.sorted { $0.lexicographicallyPrecedes($1) }.compactMap { key in
            guard key.count >= 2, let scope = PopularScope(rawValue: key[1]) else { return nil }
            return (scope, String(decoding: key[2...], as: UTF8.self), popular[key]!)
        }
    }
}
