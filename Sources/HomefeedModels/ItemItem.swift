import Foundation
import HomefeedCore

/// Item-to-item regression over the head of the catalog (EASE, Steck 2019): every video's engagement is predicted
/// from the user's other engagements by one linear model shared by all users,
///
///     min_B ‖X − X·B‖² + λ‖B‖²   subject to diag(B) = 0
///     B = I − P · diagMat(1 / diag(P)),   P = (XᵀX + λI)⁻¹,   i.e. B_ij = −P_ij / P_jj (i ≠ j), B_jj = 0
///
/// X is the binary user × video engagement matrix restricted to the `videos.count` most engaged videos (the head:
/// a dense N × N solve is affordable for a few thousand videos, and the head holds most engagements). A user's score
/// for head video j is Σ_{i ∈ user's head videos} B_ij. MF compresses every video into f factors; this model keeps
/// every head pair's own weight, which is what it adds to MF on the videos the two share.
///
/// With a co-watch window h, XᵀX becomes G = Σ_u K_u: two videos of user u count
///
///     k(d) = β + (1 − β) · exp(−d / h),   d = |s_a − s_b|
///
/// instead of 1, where s is each video's place in u's engagements by time and β the far weight. Videos watched
/// close together (a session, a binge) tell more about each other than two from years apart, which still count β.
/// exp(−|s − s'|/h) is a positive definite kernel on the line (the Laplacian kernel) and β·11ᵀ is semidefinite,
/// so every K_u, hence G + λI, stays symmetric positive definite; the diagonal is unchanged (k(0) = 1).
public struct ItemItemModel: Sendable, Equatable {
    /// Head position → model column (the MF model's video row), most engaged first.
    public let videos: [Int32]
    /// B, row-major N × N (row i: what engaging with head video i adds to every head video's score).
    public let weights: [Float]
    /// The absolute λ the model was solved with.
    public let lambda: Float

    public var count: Int { videos.count }

    public init(videos: [Int32], weights: [Float], lambda: Float) {
        precondition(weights.count == videos.count * videos.count, "item-item weights: expected N × N")
        self.videos = videos; self.weights = weights; self.lambda = lambda
    }

    /// Fits the model on the positive entries of `rows` (value > 0 = engaged; dislikes, < 0, are not engagements).
    /// head: at most `maxVideos` columns with at least 2 engaged users, most engaged first (ties: lower column).
    /// λ = `relativeLambda` × the mean engagement count of the head videos (the mean diagonal of XᵀX), so one
    /// setting means the same on a small and a large dataset. nil when fewer than 2 columns qualify.
    /// `window` h > 0 weighs pairs by the co-watch kernel with far weight `farWeight` β, reading each entry's time
    /// from `newest` (aligned with `rows.columns`; the user's places: newest first, ties by column); 0 = plain
    /// co-occurrence.
    public static func fit(_ rows: SparseRows, newest: [Int64]? = nil, window: Double = 0, farWeight: Double = 0,
                           maxVideos: Int, relativeLambda: Double, threads: Int) -> ItemItemModel? {
        precondition(window == 0 || newest?.count == rows.columns.count, "item-item: a co-watch window needs each entry's time")
        // 1. The head: columns by engaged users.
        var counts = [Int](repeating: 0, count: rows.cols)
        for k in 0..<rows.columns.count where rows.values[k] > 0 { counts[Int(rows.columns[k])] += 1 }
        var eligible: [Int] = (0..<rows.cols).filter { (c: Int) -> Bool in counts[c] >= 2 }
        eligible.sort { (a: Int, b: Int) -> Bool in counts[a] != counts[b] ? counts[a] > counts[b] : a < b }
        let head: [Int32] = eligible.prefix(maxVideos).map { Int32($0) }
        let n = head.count
        guard n >= 2 else { return nil }
        var position = [Int32](repeating: -1, count: rows.cols)
        for (p, c) in head.enumerated() { position[Int(c)] = Int32(p) }
        // 2. G = Σ_u K_u over the head (symmetric; plain: each user adds 1 to every pair of their head videos,
        //    i.e. XᵀX; with a window: k(|s_a − s_b|) by the two videos' places s in the user's time order), + λI.
        var g = [Double](repeating: 0, count: n * n)
        var longest = 0
        for r in 0..<rows.rows { longest = max(longest, rows.offsets[r + 1] - rows.offsets[r]) }
        // kernel[d] = β + (1 − β) · exp(−d / h), d = how many engagements apart.
        let kernel: [Double] = window > 0 ? (0..<max(longest, 1)).map { farWeight + (1 - farWeight) * exp(-Double($0) / window) } : []
        var engaged: [(time: Int64, column: Int32)] = []
        var mine: [(head: Int, place: Int)] = []
        for r in 0..<rows.rows {
            mine.removeAll(keepingCapacity: true)
            engaged.removeAll(keepingCapacity: true)
            for k in rows.offsets[r]..<rows.offsets[r + 1] where rows.values[k] > 0 {
                engaged.append((newest?[k] ?? 0, rows.columns[k]))
            }
            if window > 0 { engaged.sort { $0.time != $1.time ? $0.time > $1.time : $0.column < $1.column } }
            for (place, e) in engaged.enumerated() {
                let p = position[Int(e.column)]
                if p >= 0 { mine.append((Int(p), place)) }
            }
            if window > 0 {
                for a in mine { for b in mine { g[a.head * n + b.head] += kernel[abs(a.place - b.place)] } }
            } else {
                for a in mine { for b in mine { g[a.head * n + b.head] += 1 } }
            }
        }
        var diagonal = 0.0
        for i in 0..<n { diagonal += g[i * n + i] }
        let meanCount = diagonal / Double(n)
        let lambda = relativeLambda * meanCount
        for i in 0..<n { g[i * n + i] += lambda }
        // 3. P = G⁻¹, then B_ij = −P_ij / P_jj, B_jj = 0.
        invertSymmetricPositiveDefinite(&g, n: n, threads: threads)
        var b = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n where i != j { b[i * n + j] = Float(-g[i * n + j] / g[j * n + j]) }
        }
        return ItemItemModel(videos: head, weights: b, lambda: Float(lambda))
    }

    /// In-place inverse of a symmetric positive definite n × n matrix (row-major), by Gauss–Jordan elimination
    /// without pivoting (safe: every pivot of an SPD matrix is positive). Step k turns column k into e_k:
    ///
    ///     a_kk ← 1/a_kk,  a_kj ← a_kj · a_kk (j ≠ k);   a_ij ← a_ij − a_ik · a_kj,  a_ik ← −a_ik · a_kk (i ≠ k)
    ///
    /// n³ multiply-adds, the row updates of each step spread over `threads`; Double, as λ may be small next to
    /// the largest counts.
    public static func invertSymmetricPositiveDefinite(_ a: inout [Double], n: Int, threads: Int) {
        a.withUnsafeMutableBufferPointer { buf in
            let m = TTMutable(buf.baseAddress!)
            for k in 0..<n {
                let rowK = m.p + k * n
                let pivot = 1 / rowK[k]
                rowK[k] = 1
                for j in 0..<n { rowK[j] *= pivot }
                parallelFor(n, threads: n >= 256 ? threads : 1, chunk: 64) { _, range in
                    let rowK = m.p + k * n
                    for i in range where i != k {
                        let rowI = m.p + i * n
                        let f = rowI[k]
                        if f == 0 { continue }
                        rowI[k] = 0
                        for j in 0..<n { rowI[j] -= f * rowK[j] }
                    }
                }
            }
        }
    }

    /// The head position of every model column (−1: not in the head), for scoring.
    public func positions(columns: Int) -> [Int32] {
        var p = [Int32](repeating: -1, count: columns)
        for (h, c) in videos.enumerated() where Int(c) < columns { p[Int(c)] = Int32(h) }
        return p
    }

    /// One user's score of every head video into `out` (N values): Σ over the user's engaged head videos i
    /// (positive entries of row `r` of `rows`, columns mapped by `position`) of row i of B.
    public func scores(_ rows: SparseRows, row r: Int, position: [Int32], into out: inout [Float]) {
        let n = count
        if out.count != n { out = [Float](repeating: 0, count: n) }
        out.withUnsafeMutableBufferPointer { o in
            for j in 0..<n { o[j] = 0 }
            weights.withUnsafeBufferPointer { w in
                for k in rows.offsets[r]..<rows.offsets[r + 1] where rows.values[k] > 0 {
                    let p = Int(position[Int(rows.columns[k])])
                    guard p >= 0 else { continue }
                    let wi = w.baseAddress! + p * n
                    for j in 0..<n { o[j] += wi[j] }
                }
            }
        }
    }
}
