import Foundation
import HomefeedCore
import HomefeedData
import HomefeedModels
import HomefeedStore

/// The MF candidate source of the hourly refresh: the saved model's video factors stay fixed; each active user is
/// folded in from their current history (one least-squares solve against those factors, warm-started from the
/// trained user factors when the model knows the user), then the top K videos by x_u·y_v are retrieved over the
/// eligible catalog, skipping what the user saw and what is unavailable in their country.
final class MFSource: Sendable {
    let model: MFModel
    let name: String
    /// Dataset video → model row (−1: new since training) and model row → dataset video (−1: gone from the catalog).
    let rowOfVideo: [Int32]
    let videoOfRow: [Int32]
    /// Dataset user → model row (−1: new since training).
    let rowOfUser: [Int32]
    let gram: [Float]
    let builder: ConfidenceBuilder
    let index: CandidateIndex
    var retrieval: RetrievalInfo { index.info }
    /// The ranking's weights next to the MF score (`[mf] popularity_weight`, `trending_weight`, as tuned).
    var popularityWeight: Float { Float(model.info.mf.popularityWeight) }
    var trendingWeight: Float { Float(model.info.mf.trendingWeight) }
    /// The item-to-item model, its weight in the MF ranking (`[item_item] weight`, as tuned) and the head position of
    /// every model video row (−1: outside the head).
    var itemItem: ItemItemModel? { model.itemItem }
    var itemItemWeight: Float { model.itemItem == nil ? 0 : Float(model.info.itemItem?.settings.weight ?? 0) }
    let headPosition: [Int32]

    init(model: MFModel, data: Dataset, config: HomefeedConfig, threads: Int) {
        self.model = model
        name = model.info.name
        var rowOfVideo = [Int32](repeating: -1, count: data.videos.count)
        var videoOfRow = [Int32](repeating: -1, count: model.videoIDs.count)
        for (r, id) in model.videoIDs.enumerated() {
            if let v = data.videos.ids.index(of: id) { rowOfVideo[Int(v)] = Int32(r); videoOfRow[r] = v }
        }
        var rowOfUser = [Int32](repeating: -1, count: data.users.count)
        for (r, id) in model.userIDs.enumerated() {
            if let u = data.users.ids.index(of: id) { rowOfUser[Int(u)] = Int32(r) }
        }
        self.rowOfVideo = rowOfVideo; self.videoOfRow = videoOfRow; self.rowOfUser = rowOfUser
        headPosition = model.itemItem?.positions(columns: model.videos.rows) ?? []
        gram = ALS.gramian(model.videos, threads: threads)
        // Fold-in uses the model's own settings (alpha, weights, recency), so serving sees what training saw.
        builder = ConfidenceBuilder(mf: model.info.mf, watchFraction: config.data.relevanceWatchFraction)
        let eligible = (0..<Int32(videoOfRow.count)).filter { videoOfRow[Int($0)] >= 0 }
        // IVF recall is measured on 256 users with MF factors, spread over the model (users without history have zero
        // factors and never reach retrieval).
        let withFactors = (0..<model.users.rows).filter { r in model.users.row(r).contains { $0 != 0 } }
        let sample = CandidateIndex.recallSample(withFactors)
        let queries = Matrix(rows: sample.count, cols: model.users.cols, values: sample.flatMap { Array(model.users.row($0)) })
        index = CandidateIndex(items: model.videos, eligible: eligible, queries: queries, config: config, threads: threads)
    }

    var factors: Int { model.videos.cols }

    /// Fold-in and retrieval for a block of users: their factors (row k = users[k]), top `k` model rows each, and
    /// their confidence rows (the item-to-item model's input). `hasSignal[k]` is false for a user with no MF signal
    /// (their list falls back to popularity).
    func block(_ users: ArraySlice<Int32>, data: Dataset, history: UserHistory, k: Int, threads: Int,
               timing: inout MFTiming) -> MFBlock {
        let t0 = TimeFormat.monotonic()
        let rows = builder.rows(users: users, data: data, history: history, columns: model.videos.rows,
                                column: { rowOfVideo[Int($0)] })
        let f = factors
        var initial = Matrix(rows: users.count, cols: f)
        for (k, u) in users.enumerated() where rowOfUser[Int(u)] >= 0 {
            let r = Int(rowOfUser[Int(u)])
            for j in 0..<f { initial.values[k * f + j] = model.users.values[r * f + j] }
        }
        let x = ALS.foldIn(rows, videos: model.videos, gram: gram, config: Train.alsConfig(model.info.mf), initial: initial,
                           threads: threads)
        let hasSignal = (0..<users.count).map { rows.offsets[$0 + 1] > rows.offsets[$0] }
        let t1 = TimeFormat.monotonic()
        timing.foldIn += t1 - t0
        defer { timing.retrieval += TimeFormat.monotonic() - t1 }
        let videoOfRow = self.videoOfRow
        let allowed = retrievalFilter(users, data: data, history: history) { Int(videoOfRow[Int($0)]) }
        return MFBlock(factors: x, top: index.search(x, k: k, threads: threads, allowed: allowed), hasSignal: hasSignal, rows: rows)
    }

    /// One user's item-to-item score of every head video into `out` (empty without the model).
    func itemItemScores(_ b: MFBlock, row: Int, into out: inout [Float]) {
        guard let ii = model.itemItem else { out.removeAll(keepingCapacity: true); return }
        ii.scores(b.rows, row: row, position: headPosition, into: &out)
    }

    /// The video factors (row-major, `factors` wide) and the dataset video → row map, as raw buffers for the
    /// ranking loop.
    @inline(__always)
    func withFactors<R>(_ body: (UnsafePointer<Float>, Int, UnsafeBufferPointer<Int32>) throws -> R) rethrows -> R {
        try model.videos.values.withUnsafeBufferPointer { y in
            try rowOfVideo.withUnsafeBufferPointer { rows in try body(y.baseAddress!, factors, rows) }
        }
    }
}

/// The MF part of a block of users: folded-in factors, top K model rows, whether each user has MF signal, and the
/// confidence rows the factors were folded in from. A class: every user's candidates refer to their block, and a
/// struct of eight arrays cost eight retains and releases per user each time it was copied (a fifth of the
/// ranking stage's time in a profile).
final class MFBlock: Sendable {
    let factors: Matrix
    let top: TopKResults
    let hasSignal: [Bool]
    let rows: SparseRows
    init(factors: Matrix, top: TopKResults, hasSignal: [Bool], rows: SparseRows) {
        self.factors = factors; self.top = top; self.hasSignal = hasSignal; self.rows = rows
    }
}

/// Top-K retrieval over a catalog of embeddings (MF video factors, two-tower video embeddings): exact, or IVF on a
/// large catalog (`[mf] retrieval`, `ivf_*`), with the approximate path's recall@K measured against exact on sample
/// queries of the run itself.
struct CandidateIndex: Sendable {
    enum Kind: Sendable {
        case exact(ExactIndex)
        case ivf(IVFIndex, probe: Int)
    }
    let kind: Kind
    /// How retrieval runs (and, for IVF, its measured recall), for the run metadata.
    let info: RetrievalInfo

    init(items: Matrix, eligible: [Int32], queries: Matrix, config: HomefeedConfig, threads: Int) {
        var info = RetrievalInfo()
        let mf = config.mf
        info.k = config.refresh.candidatesPerSource
        if mf.retrieval == "ivf" || (mf.retrieval == "auto" && eligible.count >= mf.ivfMinVideos) {
            let cells = mf.ivfCells > 0 ? mf.ivfCells : IVFIndex.defaultCells(itemCount: eligible.count)
            let ivf = IVFIndex.build(items: items, eligible: eligible, cells: cells, seed: UInt64(truncatingIfNeeded: mf.seed),
                                     threads: threads)
            let probe = mf.ivfProbe > 0 ? mf.ivfProbe : IVFIndex.defaultProbe(cells: cells)
            kind = .ivf(ivf, probe: probe)
            info.method = "ivf"; info.cells = cells; info.probe = probe
            // Probing every cell is the exact path (tested), so no second, exact index of the catalog is built.
            info.recall = ivf.estimateRecall(queries, k: info.k, probe: probe, sample: queries.rows, threads: threads,
                                             allowed: { _, _ in true })
            info.sampledUsers = queries.rows
        } else {
            kind = .exact(ExactIndex(items: items, eligible: eligible))
        }
        info.videos = eligible.count
        self.info = info
    }

    /// The users IVF recall is measured on: up to 256, evenly spread over `candidates`.
    static func recallSample<T>(_ candidates: [T]) -> [T] {
        let step = max(1, candidates.count / 256)
        return stride(from: 0, to: candidates.count, by: step).prefix(256).map { candidates[$0] }
    }

    func search(_ queries: Matrix, k: Int, threads: Int, allowed: TopKFilter) -> TopKResults {
        switch kind {
        case .exact(let e): e.search(queries, k: k, threads: threads, allowed: allowed)
        case .ivf(let i, let probe): i.search(queries, k: k, probe: probe, threads: threads, allowed: allowed)
        }
    }
}

/// Seconds spent in the MF stages of a refresh (recorded as stages of the run).
struct MFTiming {
    var foldIn = 0.0
    var retrieval = 0.0
}

@inline(__always)
func binarySearch(_ sorted: ArraySlice<Int32>, _ v: Int32) -> Bool {
    var lo = sorted.startIndex, hi = sorted.endIndex
    while lo < hi {
        let mid = (lo + hi) / 2
        if sorted[mid] < v { lo = mid + 1 } else { hi = mid }
    }
    return lo < sorted.endIndex && sorted[lo] == v
}
