import Foundation
import HomefeedCore
import HomefeedData
import HomefeedModels

/// The weighted-ALS input: one row per user, one entry per video the user engaged with, valued by confidence.
///
///     c_ui = alpha · Σ_{interactions of u on i} weight(event) · (1 + recent_boost · 0.5^(r_ui / recent_half_rank))
///
/// weight: a watch of ≥ relevance_watch_fraction of the video (long watch), a shorter (partial) watch, a like, a
/// share, a comment (`[mf]` weights); clicks, impressions and searches carry no MF signal. r_ui is the recency rank
/// of video i in u's history (0 = the video u engaged with last). A disliked video is an explicit negative: the
/// entry is −alpha·dislike_weight (ALS reads a negative value as preference 0 with that confidence), whatever else
/// the user did with it; with dislike_weight 0 dislikes are ignored.
///
/// The same code builds the rows for `train` (every user) and for the hourly fold-in (a block of active users), so
/// training and serving see the same signal.
public struct ConfidenceBuilder: Sendable {
    public let mf: HomefeedConfig.MF
    public let watchFraction: Double

    public init(_ config: HomefeedConfig) {
        mf = config.mf
        watchFraction = config.data.relevanceWatchFraction
    }

    public init(mf: HomefeedConfig.MF, watchFraction: Double) {
        self.mf = mf
        self.watchFraction = watchFraction
    }

    /// The signal weight of interaction `i` (0 = none); dislikes are handled apart.
    @inline(__always)
    func weight(_ data: Dataset, _ i: Int) -> Double {
        switch data.interactions.event[i] {
        case .watch: return data.isRelevant(i, watchFraction: watchFraction) ? mf.longWatchWeight : mf.partialWatchWeight
        case .like: return mf.likeWeight
        case .share: return mf.shareWeight
        case .comment: return mf.commentWeight
        case .dislike, .click, .impression, .search: return 0
        }
    }

    /// Rows for `users` (row r is users[r]); `column(v)` maps a dataset video to its model column (−1 = not in the
    /// model: skipped). `include(i)` can leave interactions out (a validation split).
    public func rows(users: some Collection<Int32>, data: Dataset, history: UserHistory, columns: Int,
                     column: (Int32) -> Int32, include: (Int) -> Bool = { _ in true }) -> SparseRows {
        var unused: [Int64]? = nil
        return build(users: users, data: data, history: history, columns: columns, column: column, include: include, newest: &unused)
    }

    /// The same rows, and beside each entry the time of the user's newest interaction with that video (the order
    /// the item-to-item model's co-watch window reads).
    public func rowsWithNewest(users: some Collection<Int32>, data: Dataset, history: UserHistory, columns: Int,
                               column: (Int32) -> Int32, include: (Int) -> Bool = { _ in true }) -> (rows: SparseRows, newest: [Int64]) {
        var newest: [Int64]? = []
        let rows = build(users: users, data: data, history: history, columns: columns, column: column, include: include, newest: &newest)
        return (rows, newest!)
    }

    private func build(users: some Collection<Int32>, data: Dataset, history: UserHistory, columns: Int,
                       column: (Int32) -> Int32, include: (Int) -> Bool, newest: inout [Int64]?) -> SparseRows {
        var offsets = [Int](repeating: 0, count: users.count + 1)
        var cols: [Int32] = [], vals: [Float] = []
        cols.reserveCapacity(users.count * 16); vals.reserveCapacity(users.count * 16)
        var scratch: [(video: Int32, weight: Double, last: Int64, disliked: Bool)] = []
        var r = 0
        for u in users {
            scratch.removeAll(keepingCapacity: true)
            // 1. The user's signals, one entry per interaction.
            for i32 in history.interactions(of: Int(u)) {
                let i = Int(i32)
                guard include(i) else { continue }
                let v = data.interactions.video[i]
                guard v >= 0 else { continue }
                let c = column(v)
                guard c >= 0 else { continue }
                let disliked = data.interactions.event[i] == .dislike && mf.dislikeWeight > 0
                let w = weight(data, i)
                if w == 0 && !disliked { continue }
                scratch.append((c, w, data.interactions.timestamp[i], disliked))
            }
            // 2. Merge per video (sum of weights, newest time, any dislike).
            scratch.sort { $0.video < $1.video }
            var merged: [(video: Int32, weight: Double, last: Int64, disliked: Bool)] = []
            for e in scratch {
                if let m = merged.last, m.video == e.video {
                    merged[merged.count - 1] = (m.video, m.weight + e.weight, max(m.last, e.last), m.disliked || e.disliked)
                } else {
                    merged.append(e)
                }
            }
            // 3. Recency ranks (newest first; ties by column so the result is deterministic), then confidences.
            var boost = [Double](repeating: 1, count: merged.count)
            if mf.recentBoost > 0 {
                let byRecency = merged.indices.sorted {
                    merged[$0].last != merged[$1].last ? merged[$0].last > merged[$1].last : merged[$0].video < merged[$1].video
                }
                for (rank, k) in byRecency.enumerated() {
                    boost[k] = 1 + mf.recentBoost * exp2(-Double(rank) / mf.recentHalfRank)
                }
            }
            for (k, m) in merged.enumerated() {
                if m.disliked {
                    cols.append(m.video); vals.append(Float(-mf.alpha * mf.dislikeWeight))
                } else if m.weight > 0 {
                    cols.append(m.video); vals.append(Float(mf.alpha * m.weight * boost[k]))
                } else {
                    continue
                }
                newest?.append(m.last)
            }
            r += 1
            offsets[r] = cols.count
        }
        return SparseRows(rows: users.count, cols: columns, offsets: offsets, columns: cols, values: vals)
    }
}

