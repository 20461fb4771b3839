import HomefeedCore
import HomefeedData
import HomefeedModels
import HomefeedStore

extension Refresh {
    /// Cold-start lists: for every segment (country × language × age bucket × gender) with at least
    /// `[rank] segment_min_users` users, the user tower embeds the segment's attributes alone (no id, no history);
    /// its two-tower candidates, with the popular and fresh ones of its country and language, are ranked like a
    /// user's, into a fallback-length list the daemon serves to unknown users who pass those attributes.
    static func segmentLists(_ data: Dataset, popularity: Popularity, scorers: Scorers, config: HomefeedConfig,
                             threads: Int) throws -> [(scope: PopularScope, code: String, list: RecommendationList)] {
        guard let tt = scorers.twoTower, scorers.usesTwoTower, config.rank.segmentMinUsers > 0 else { return [] }
        // 1. Segments with enough users.
        var counts: [UserSegment: (n: Int, language: Int32)] = [:]
        let users = data.users
        for u in 0..<users.count where users.country[u] != .unknown {
            let s = UserSegment(country: users.country[u], language: data.languages[users.language[u]],
                                age: AgeBucket(age: Int(users.age[u])), gender: SegmentGender(users.gender[u]))
            counts[s, default: (0, users.language[u])].n += 1
        }
        let segments = counts.filter { $0.value.n >= config.rank.segmentMinUsers && $0.key.isValid }.keys.sorted { $0.code < $1.code }
        guard !segments.isEmpty else { return [] }
        // 2. Embed and retrieve (availability in the segment's country is the only filter: nobody has seen anything).
        let embeddings = tt.embedSegments(segments, threads: threads)
        let countries = segments.map(\.country), videos = data.videos
        let top = tt.index.search(embeddings, k: scorers.twoTowerK, threads: threads) { q, row in
            videos.isAvailable(Int(row), in: countries[q])
        }
        // 3. Rank each like a user's list (no MF signal), fallback_list_size long.
        var sizeConfig = config
        sizeConfig.refresh.listSize = config.refresh.fallbackListSize
        var scratch = makeScratch(data, scorers: scorers, config: sizeConfig)
        let history = UserHistory(Dataset())
        return segments.enumerated().map { k, s in
            var c = UserCandidates(country: s.country, language: counts[s]!.language)
            c.twoTower = (tt, embeddings, k, top)
            return (.segment, s.code, rankOne(c, data: data, history: history, popularity: popularity, scorers: scorers,
                                              perSource: config.refresh.candidatesPerSource,
                                              listSize: config.refresh.fallbackListSize, scratch: &scratch))
        }
    }
}

extension SegmentGender {
    /// The dataset's gender (same raw values).
    init(_ g: Gender) { self.init(rawValue: g.rawValue)! }
}
