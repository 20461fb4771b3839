import Foundation
import HomefeedCore
import HomefeedData
import HomefeedModels
import HomefeedStore

/// The two-tower candidate source and scorer of the refresh: the saved model embeds every video of today's catalog
/// (new uploads too: the video tower needs only features) and, per block, every user from their current history;
/// candidates are the top K videos by e_u·e_v over the catalog (the same top-K kernels as MF), skipping what the
/// user saw and what is unavailable in their country.
final class TwoTowerSource: Sendable {
    let model: TwoTowerModel
    let name: String
    let encoder: FeatureEncoder
    /// Row v = dataset video v, L2-normalized.
    let videos: Matrix
    let index: CandidateIndex
    var dim: Int { videos.cols }

    init(model: TwoTowerModel, info: TwoTowerInfo, name: String, data: Dataset, history: UserHistory, asOf: Int64, config: HomefeedConfig, threads: Int) {
        self.model = model
        self.name = name
        var c = config
        c.twoTower = info.settings   // encode exactly as the model was trained
        let encoder = FeatureEncoder(data, history: history, asOf: asOf, config: c)
        self.encoder = encoder
        var rows = FeatureRows(fields: FeatureEncoder.VideoField.allCases.count)
        for v in 0..<data.videos.count { encoder.videoRow(v, into: &rows) }
        let videos = model.embedVideos(rows, threads: threads)
        self.videos = videos
        // IVF recall is measured on up to 256 users with history.
        let picked = CandidateIndex.recallSample((0..<Int32(data.users.count)).filter { encoder.hasHistory(Int($0)) })
        let queries = picked.isEmpty ? Matrix(rows: 0, cols: videos.cols) : Self.embed(model, encoder, picked[...], threads: threads)
        index = CandidateIndex(items: videos, eligible: Array(0..<Int32(data.videos.count)), queries: queries,
                               config: config, threads: threads)
    }

    static func embed(_ model: TwoTowerModel, _ encoder: FeatureEncoder, _ users: ArraySlice<Int32>, threads: Int) -> Matrix {
        var rows = FeatureRows(fields: FeatureEncoder.UserField.allCases.count)
        for u in users { encoder.userRow(Int(u), into: &rows) }
        return model.embedUsers(rows, threads: threads)
    }

    /// User embeddings for a block (row k = users[k]) and their top `k` videos.
    func block(_ users: ArraySlice<Int32>, data: Dataset, history: UserHistory, k: Int, threads: Int,
               timing: inout (embed: Double, retrieval: Double)) -> (embeddings: Matrix, top: TopKResults) {
        let t0 = TimeFormat.monotonic()
        let e = Self.embed(model, encoder, users, threads: threads)
        let t1 = TimeFormat.monotonic()
        let top = index.search(e, k: k, threads: threads, allowed: retrievalFilter(users, data: data, history: history) { Int($0) })
        timing.embed += t1 - t0
        timing.retrieval += TimeFormat.monotonic() - t1
        return (e, top)
    }

    /// Embeddings of users known by attributes alone (cold-start segments), one row per (country, language, age, gender).
    func embedSegments(_ segments: [UserSegment], threads: Int) -> Matrix {
        var rows = FeatureRows(fields: FeatureEncoder.UserField.allCases.count)
        for s in segments {
            encoder.attributeRow(country: s.country, language: s.language, age: s.ageBucket, gender: s.gender, into: &rows)
        }
        return model.embedUsers(rows, threads: threads)
    }
}

/// The filter of candidate retrieval for a block of users: a catalog row (mapped to its dataset video by `video`;
/// −1 = not in today's catalog) may enter user q's top K when q has not seen it and it is available in q's country.
/// Asked only for rows that would enter a top K: a binary search in the user's seen list and an availability check.
func retrievalFilter(_ users: ArraySlice<Int32>, data: Dataset, history: UserHistory,
                     video: @escaping @Sendable (Int32) -> Int) -> TopKFilter {
    let userList = Array(users)
    let videos = data.videos, countries = data.users.country
    return { q, row in
        let v = video(row)
        guard v >= 0 else { return false }
        let u = Int(userList[q])
        if binarySearch(history.seen(of: u), Int32(v)) { return false }
        return videos.isAvailable(v, in: countries[u])
    }
}
