import HomefeedData
import HomefeedStore

/// Scores merged candidates. The baseline blends the popularity sources; the model rankers of later stages
/// (MF, two-tower) plug in here with the same inputs.
protocol Ranker: Sendable {
    func score(candidate c: Int, in set: CandidateSet, user: Int, data: Dataset) -> Float
}

/// score = 0.5·region + 0.3·language + 0.2·global popularity (each scaled to [0, 1] by its list's top),
/// × 1.2 when the video is in the user's language.
struct PopularityBlendRanker: Ranker {
    func score(candidate c: Int, in set: CandidateSet, user u: Int, data: Dataset) -> Float {
        let s = 0.5 * set.score(c, .popularRegion) + 0.3 * set.score(c, .popularLanguage) + 0.2 * set.score(c, .popularGlobal)
        let sameLanguage = data.videos.language[Int(set.video(c))] == data.users.language[u]
        return sameLanguage ? s * 1.2 : s
    }
}
