import HomefeedData
import HomefeedStore

/// The popularity blend: how users without MF signal are ranked, and one of the MF ranking's features.
///
///     blend = (0.5·region + 0.3·language + 0.2·global popularity) × (1.2 if the video is in the user's language)
///
/// each popularity scaled to [0, 1] by its list's top.
enum PopularityBlend {
    @inline(__always)
    static func score(_ set: CandidateSet, _ c: Int, sameLanguage: Bool) -> Float {
        let s = 0.5 * set.score(c, .popularRegion) + 0.3 * set.score(c, .popularLanguage) + 0.2 * set.score(c, .popularGlobal)
        return sameLanguage ? s * 1.2 : s
    }
}
