import HomefeedCore

/// Weighted alternating least squares for implicit feedback (Hu, Koren & Volinsky 2008; the conjugate-gradient
/// update of Takács et al. 2011, as in `implicit`).
///
/// Loss, with X the user factors, Y the video factors, p_ui the preference and c_ui ≥ 0 the confidence of an
/// observed pair, W the weight of every unobserved pair and λ the L2 weight:
///
///     L = Σ_(u,i) observed  c_ui (p_ui − x_uᵀy_i)²  +  W Σ_(u,i) unobserved (x_uᵀy_i)²  +  λ (Σ‖x_u‖² + Σ‖y_i‖²)
///
/// An entry's value v encodes both (implicit's convention): v > 0 is a positive, p = 1 with c = v (how strong the
/// signal was: like > long watch > partial watch); v < 0 is an explicit negative (a dislike), p = 0 with c = −v;
/// v = 0 is a pair with no weight at all. With Y fixed each x_u solves a ridge regression (symmetrically for y_i):
///
///     (W·YᵀY + Σ_(i∈I_u) (c_ui − W) y_i y_iᵀ + λI) x_u  =  Σ_(i∈I_u) c_ui p_ui y_i
///
/// so a negative adds (c − W) y_i y_iᵀ to the matrix and nothing to the right-hand side: it pulls x_uᵀy_i towards 0
/// harder than an unobserved pair when c > W. B = W·YᵀY + λI is shared by all users (once per half-iteration); the
/// per-user correction only touches the user's own videos. Three ways to solve a row (ALSKernels.swift):
///   - CG from the current factors: O(cg·(f² + n_u·f)) — the B·v product is the f² part;
///   - direct, for short rows: Woodbury through B⁻¹ (rows B⁻¹y_i computed once per half-iteration), an
///     n_u × n_u system, O(n_u²·f + n_u³), exact;
///   - Cholesky of the f × f matrix, O(n_u·f² + f³), exact: `cgSteps` 0, and cold fold-in rows that are not short.
public struct ALSConfig: Sendable, Equatable {
    public var factors = 64
    public var iterations = 15
    public var regularization: Float = 0.05
    /// W: weight of unobserved pairs.
    public var unobservedWeight: Float = 1
    /// Conjugate-gradient steps per row, warm-started from the previous factors; 0 = exact (Cholesky) solve.
    public var cgSteps = 3
    /// Rows with so few entries that an exact solve through the shared B⁻¹ costs less than the CG steps get that
    /// exact solve instead: in training when enough of them pay for B⁻¹Y (once per half-iteration), in fold-in
    /// through a `FoldInPlan`. false = CG for every row, as implicit.
    public var directSolves = true
    public var threads = 0
    public var seed: UInt64 = 42
    public init() {}
}

public struct ALSModel: Sendable {
    public var users: Matrix
    public var videos: Matrix
    public init(users: Matrix, videos: Matrix) { self.users = users; self.videos = videos }
}

public enum ALS {
    /// Fits factors for `confidence` (users × videos, values as above). `onIteration(i, loss)` is called after each
    /// iteration when `trackLoss` is set (O((users + videos)·f² + nnz·f) per call).
    public static func fit(_ confidence: SparseRows, config: ALSConfig, trackLoss: Bool = false,
                           onIteration: (Int, Double) -> Void = { _, _ in }) -> ALSModel {
        let f = config.factors
        var rng = SeededRandom(seed: config.seed)
        // Small random start (scaled by 1/√f) so the first solves are well conditioned and runs are reproducible.
        let scale = 0.1 / Float(f).squareRoot()
        func initial(_ n: Int) -> Matrix {
            Matrix(rows: n, cols: f, values: [Float](unsafeUninitializedCapacity: n * f) { buffer, count in
                for k in 0..<(n * f) { buffer[k] = Float(rng.nextDouble() - 0.5) * scale }
                count = n * f
            })
        }
        var x = initial(confidence.rows), y = initial(confidence.cols)
        let byVideo = confidence.transposed()
        let threads = effectiveThreads(config.threads)
        for it in 0..<config.iterations {
            solve(&x, fixed: y, rows: confidence, config: config, threads: threads)
            solve(&y, fixed: x, rows: byVideo, config: config, threads: threads)
            if trackLoss { onIteration(it, loss(confidence, x, y, config)) }
        }
        return ALSModel(users: x, videos: y)
    }

    /// One half-iteration: every row of `target` re-solved against `fixed`, in parallel (rows are independent),
    /// in place (the current rows are the CG warm start).
    static func solve(_ target: inout Matrix, fixed: Matrix, rows: SparseRows, config: ALSConfig, threads: Int) {
        let side = FixedSide(fixed, gram: gramian(fixed, threads: threads), config: config)
        solveRows(&target, side: side, rows: rows, config: config, coldExact: false, mayPrepareDirect: true,
                  threads: threads)
    }

    /// One least-squares solve per row of `rows` (users × videos, values as in `fit`) against the fixed `videos`,
    /// with `gram` = `gramian(videos)`: the hourly fold-in. Row k of the result is row k of `rows`. A row of
    /// `initial` warm-starts CG (`config.cgSteps` steps, as in training); a row with no start (nil, or all zeros:
    /// a user the model has not seen) gets an exact solve (Cholesky), as does every row when `config.cgSteps` is 0. A
    /// row with no entries gets zeros. A row's result depends only on the row, its start and the videos, never on
    /// the other rows of the call or `threads`. `threads` ≤ 0 means all cores; with 1 it runs on the calling thread.
    /// Many calls against the same videos (the refresh's blocks): prefer a `FoldInPlan`, which also solves short
    /// rows directly.
    public static func foldIn(_ rows: SparseRows, videos: Matrix, gram: [Float], config: ALSConfig, initial: Matrix? = nil,
                              threads: Int) -> Matrix {
        precondition(gram.count == videos.cols * videos.cols,
                     "ALS.foldIn: gram has \(gram.count) entries, expected \(videos.cols * videos.cols)")
        return foldIn(rows, side: FixedSide(videos, gram: gram, config: config), config: config, initial: initial,
                      threads: threads)
    }

    /// The same fold-in against a prepared plan (B and the rows [y | B⁻¹y] computed once): for the refresh, which
    /// folds users in block by block against the same videos.
    public static func foldIn(_ rows: SparseRows, plan: FoldInPlan, initial: Matrix? = nil, threads: Int) -> Matrix {
        foldIn(rows, side: plan.side, config: plan.config, initial: initial, threads: threads)
    }

    static func foldIn(_ rows: SparseRows, side: FixedSide, config: ALSConfig, initial: Matrix?, threads: Int) -> Matrix {
        let f = side.y.cols
        precondition(rows.cols == side.y.rows, "ALS.foldIn: rows have \(rows.cols) columns but videos has \(side.y.rows) rows")
        let shapeOK = initial.map { $0.rows == rows.rows && $0.cols == f } ?? true
        precondition(shapeOK, "ALS.foldIn: initial must be \(rows.rows) × \(f)")
        var out = initial ?? Matrix(rows: rows.rows, cols: f)
        solveRows(&out, side: side, rows: rows, config: config, coldExact: true, mayPrepareDirect: false,
                  threads: effectiveThreads(threads))
        return out
    }

    /// Solves every row of `rows` into `target` (in place) against a prepared fixed side. Short rows go to the
    /// direct solve when the side has its [y | B⁻¹y] rows, or, with `mayPrepareDirect` (a training half-iteration,
    /// where `rows` is the whole side), when their savings pay for computing them here. Fold-in never decides that
    /// per call: a row's path, hence its rounding, would then depend on which block it came in.
    static func solveRows(_ target: inout Matrix, side: FixedSide, rows: SparseRows, config: ALSConfig, coldExact: Bool,
                          mayPrepareDirect: Bool, threads: Int) {
        let f = side.y.cols
        precondition(target.rows == rows.rows && target.cols == f && side.y.rows == rows.cols, "ALS: shapes do not match")
        if rows.rows == 0 { return }
        var side = side
        let (warm, cold) = directThresholds(f: f, cgSteps: config.cgSteps)
        if side.yz.isEmpty && mayPrepareDirect && config.directSolves && config.cgSteps > 0 {
            var savings = 0
            rows.offsets.withUnsafeBufferPointer { off in
                target.values.withUnsafeBufferPointer { x in
                    for u in 0..<rows.rows {
                        let n = off[u + 1] - off[u]
                        if n == 0 || n > max(warm, cold) { continue }
                        let isCold = coldExact && Kernels.isZero(x.baseAddress! + u * f, f)
                        if n <= (isCold ? cold : warm) {
                            savings += (isCold ? choleskyCost(n, f: f) : cgCost(n, f: f, cg: config.cgSteps)) - directCost(n, f: f)
                        }
                    }
                }
            }
            // [y | B⁻¹y] costs B⁻¹ (f³, Double) and one B⁻¹·y per fixed row.
            if savings > 2 * f * f * f + side.y.rows * f * f { side.prepareDirect(threads: threads) }
        }
        let chunks = balancedChunks(rows, f: f, threads: threads)
        let maxRow = rows.maxRowLength
        let solvers = SlotBuffer((0..<min(threads, chunks.count - 1)).map { _ in RowSolver(factors: f, maxRow: maxRow) })
        rows.offsets.withUnsafeBufferPointer { off in
            rows.columns.withUnsafeBufferPointer { cols in
                rows.values.withUnsafeBufferPointer { vals in
                    side.y.values.withUnsafeBufferPointer { y in
                        side.b.withUnsafeBufferPointer { bp in
                            side.bd.withUnsafeBufferPointer { bdp in
                                side.yz.withUnsafeBufferPointer { yz in
                                    target.values.withUnsafeMutableBufferPointer { out in
                                        let problem = ALSProblem(
                                            f: f, offsets: base(off), columns: base(cols), values: base(vals), y: base(y),
                                            b: base(bp), bd: base(bdp), w: config.unobservedWeight,
                                            cgSteps: config.cgSteps, coldExact: coldExact,
                                            yz: side.yz.isEmpty ? nil : base(yz), directWarm: warm, directCold: cold,
                                            out: out.baseAddress!)
                                        parallelFor(chunks.count - 1, threads: threads, chunk: 1) { worker, range in
                                            let solver = solvers[worker]
                                            for c in range {
                                                for u in chunks[c]..<chunks[c + 1] { solver.solve(u, problem) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Longest row the direct solve takes (its n × n scratch).
    static let directLimit = 64

    /// Rough costs of one row's solve in multiply-adds (SIMD Float = 1, SIMD Double ×2, scalar Double ×6), to pick
    /// the cheaper path; they steer speed only (every exact path gives the same answer up to rounding).
    static func cgCost(_ n: Int, f: Int, cg: Int) -> Int { (cg + 1) * (f * f + 2 * n * f) }
    static func choleskyCost(_ n: Int, f: Int) -> Int { 2 * (n * f * f / 2 + f * f * f / 6) }
    static func directCost(_ n: Int, f: Int) -> Int { n * (n + 1) / 2 * f + n * f + 2 * n * n * n }

    /// The longest rows for which the direct solve is cheaper than CG (warm rows) and than Cholesky (cold rows).
    static func directThresholds(f: Int, cgSteps: Int) -> (warm: Int, cold: Int) {
        var warm = 0, cold = 0
        for n in 1...directLimit {
            if directCost(n, f: f) < cgCost(n, f: f, cg: cgSteps) { warm = n }
            if directCost(n, f: f) < choleskyCost(n, f: f) { cold = n }
        }
        return (warm, cold)
    }

    /// Row ranges of about equal cost (a row costs ~ its entries plus f/2 for the B·v products), so one long row
    /// (a popular video) does not leave the other threads idle at the end; one range on one thread.
    static func balancedChunks(_ rows: SparseRows, f: Int, threads: Int) -> [Int] {
        if threads <= 1 { return [0, rows.rows] }
        let perRow = max(1, f / 2)
        let total = rows.nnz + rows.rows * perRow
        let target = max(1, total / (threads * 64))
        var bounds = [0]
        var acc = 0
        rows.offsets.withUnsafeBufferPointer { off in
            for u in 0..<rows.rows {
                acc += off[u + 1] - off[u] + perRow
                if acc >= target { bounds.append(u + 1); acc = 0 }
            }
        }
        if bounds.last != rows.rows { bounds.append(rows.rows) }
        return bounds
    }

    /// MᵀM (f × f, symmetric, row-major). Rows go in fixed chunks of 8192 whatever the thread count, each summed
    /// in blocks of 128 rows (Float in registers within a block, Double across blocks), and the chunks are added in
    /// order: the result is the same for any `threads` (≤ 0: all cores).
    public static func gramian(_ m: Matrix, threads: Int) -> [Float] {
        let f = m.cols, fp = (f + 7) / 8 * 8
        let chunkRows = 8192, blockRows = 128
        let chunks = max(1, (m.rows + chunkRows - 1) / chunkRows)
        let partials = UnsafeMutablePointer<Double>.allocate(capacity: chunks * fp * fp)
        partials.initialize(repeating: 0, count: chunks * fp * fp)
        defer { partials.deallocate() }
        let shared = SendablePointer(UnsafePointer(partials))
        let rows = m.rows
        m.values.withUnsafeBufferPointer { v in
            let src = SendablePointer(base(v))
            parallelFor(chunks, threads: effectiveThreads(threads), chunk: 1) { _, range in
                let pack = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * fp)
                pack.initialize(repeating: 0, count: blockRows * fp)
                defer { pack.deallocate() }
                for c in range {
                    // Chunk c owns partials[c·fp², (c+1)·fp²): no other worker writes there.
                    let acc = UnsafeMutablePointer(mutating: shared.p + c * fp * fp)
                    var r0 = c * chunkRows
                    let end = min(rows, (c + 1) * chunkRows)
                    while r0 < end {
                        let n = min(blockRows, end - r0)
                        // Pack n rows at stride fp (the padding columns stay 0).
                        for k in 0..<n { Kernels.copy(src.p + (r0 + k) * f, pack + k * fp, f) }
                        Kernels.gramianBlock(pack, n, fp, acc)
                        r0 += n
                    }
                }
            }
        }
        var g = [Float](repeating: 0, count: f * f)
        for a in 0..<f {
            for b in a..<f {
                var s = 0.0
                for c in 0..<chunks { s += partials[c * fp * fp + a * fp + b] }
                g[a * f + b] = Float(s); g[b * f + a] = Float(s)
            }
        }
        return g
    }

    /// The loss L above, in Double, without the dense users × videos product:
    ///     Σ_all (x_uᵀy_i)² = Σ_ab (XᵀX)_ab (YᵀY)_ab,  so
    ///     L = Σ_observed [c (p − s)² − W s²] + W Σ_ab (XᵀX)_ab (YᵀY)_ab + λ (‖X‖² + ‖Y‖²),   s = x_uᵀy_i.
    public static func loss(_ c: SparseRows, _ x: Matrix, _ y: Matrix, _ config: ALSConfig) -> Double {
        let f = x.cols
        let w = Double(config.unobservedWeight)
        var observed = 0.0
        for u in 0..<c.rows {
            for k in c.offsets[u]..<c.offsets[u + 1] {
                let i = Int(c.columns[k]), v = Double(c.values[k])
                var s = 0.0
                for j in 0..<f { s += Double(x.values[u * f + j]) * Double(y.values[i * f + j]) }
                let p = v > 0 ? 1.0 : 0.0
                observed += abs(v) * (p - s) * (p - s) - w * s * s
            }
        }
        let gx = exactGramian(x), gy = exactGramian(y)
        var all = 0.0
        for k in 0..<(f * f) { all += gx[k] * gy[k] }
        let reg = x.values.reduce(0.0) { $0 + Double($1) * Double($1) } + y.values.reduce(0.0) { $0 + Double($1) * Double($1) }
        return observed + w * all + Double(config.regularization) * reg
    }

    /// MᵀM in Double, plain loops (the loss only).
    static func exactGramian(_ m: Matrix) -> [Double] {
        let f = m.cols
        var g = [Double](repeating: 0, count: f * f)
        for r in 0..<m.rows {
            for a in 0..<f {
                let ra = Double(m.values[r * f + a])
                for b in 0..<f { g[a * f + b] += ra * Double(m.values[r * f + b]) }
            }
        }
        return g
    }
}

/// Prepared once per fixed side and shared by the fold-in calls of a refresh: the video factors, B, and the rows
/// [y_i | B⁻¹y_i] for the direct solves of short rows (2 × the videos' size: 93 MB for 182 k videos × 64).
public final class FoldInPlan: Sendable {
    let side: FixedSide
    let config: ALSConfig

    /// `gram` = `ALS.gramian(videos)`. Without `config.directSolves` (or with `cgSteps` 0) only B is prepared.
    public init(videos: Matrix, gram: [Float], config: ALSConfig, threads: Int) {
        precondition(gram.count == videos.cols * videos.cols,
                     "FoldInPlan: gram has \(gram.count) entries, expected \(videos.cols * videos.cols)")
        var side = FixedSide(videos, gram: gram, config: config)
        if config.directSolves && config.cgSteps > 0 { side.prepareDirect(threads: effectiveThreads(threads)) }
        self.side = side
        self.config = config
    }

    public var videos: Matrix { side.y }
}

/// The fixed factors of a solve with what every row's system shares: B = W·G + λI (Float for CG, Double for the
/// exact paths) and, once `prepareDirect` ran, the rows [y_i | B⁻¹y_i] (stride 2f, so a direct solve reads an
/// entry's two halves in one contiguous run).
struct FixedSide: Sendable {
    let y: Matrix
    let b: [Float]
    let bd: [Double]
    private(set) var yz: [Float] = []

    init(_ y: Matrix, gram: [Float], config: ALSConfig) {
        let f = y.cols
        var bd = [Double](repeating: 0, count: f * f)
        for i in 0..<(f * f) { bd[i] = Double(config.unobservedWeight) * Double(gram[i]) }
        for j in 0..<f { bd[j * f + j] += Double(config.regularization) }
        self.y = y; self.bd = bd; b = bd.map { Float($0) }
    }

    mutating func prepareDirect(threads: Int) {
        let f = y.cols
        let h = FixedSide.spdInverse(bd, f).map { Float($0) }
        var yz = [Float](repeating: 0, count: y.rows * 2 * f)
        y.values.withUnsafeBufferPointer { src in
            h.withUnsafeBufferPointer { hp in
                yz.withUnsafeMutableBufferPointer { dst in
                    let s = SendablePointer(base(src)), hs = SendablePointer(base(hp))
                    let out = SendablePointer(UnsafePointer(dst.baseAddress!))
                    parallelFor(y.rows, threads: threads, chunk: 1024) { _, range in
                        for r in range {
                            // Row r owns out[2f·r, 2f·(r+1)).
                            let o = UnsafeMutablePointer(mutating: out.p + r * 2 * f)
                            Kernels.copy(s.p + r * f, o, f)
                            Kernels.symmetricMultiply(hs.p, s.p + r * f, into: o + f, f)
                        }
                    }
                }
            }
        }
        self.yz = yz
    }

    /// A⁻¹ for a symmetric positive definite f × f A (Double): A = L Lᵀ (lower, row-major), then L Lᵀ h = e_j for
    /// each column j, solved in place in row j of the result (A⁻¹ is symmetric), the solves as row dots.
    static func spdInverse(_ a: [Double], _ f: Int) -> [Double] {
        var l = a
        var h = [Double](repeating: 0, count: f * f)
        l.withUnsafeMutableBufferPointer { lb in
            h.withUnsafeMutableBufferPointer { hb in
                let l = lb.baseAddress!, h = hb.baseAddress!
                for i in 0..<f {
                    let li = l + i * f
                    for j in 0..<i {
                        let lj = l + j * f
                        li[j] = (li[j] - Kernels.dot(UnsafePointer(li), UnsafePointer(lj), j)) / lj[j]
                    }
                    li[i] = max(li[i] - Kernels.dot(UnsafePointer(li), UnsafePointer(li), i), 1e-300).squareRoot()
                }
                // Lᵀ's rows are L's columns: keep a transposed copy so the backward solve is row dots too.
                let lt = UnsafeMutablePointer<Double>.allocate(capacity: f * f)
                defer { lt.deallocate() }
                lt.initialize(repeating: 0, count: f * f)
                for i in 0..<f { for k in 0...i { lt[k * f + i] = l[i * f + k] } }
                let z = UnsafeMutablePointer<Double>.allocate(capacity: f)
                defer { z.deallocate() }
                for j in 0..<f {
                    // L z = e_j (z is 0 before j), then Lᵀ h_j = z.
                    for i in 0..<f {
                        let li = l + i * f
                        z[i] = i < j ? 0 : ((i == j ? 1 : 0) - Kernels.dot(UnsafePointer(li + j), UnsafePointer(z + j), i - j)) / li[i]
                    }
                    let hj = h + j * f
                    for i in stride(from: f - 1, through: 0, by: -1) {
                        let ti = lt + i * f
                        hj[i] = (z[i] - Kernels.dot(UnsafePointer(ti + i + 1), UnsafePointer(hj + i + 1), f - i - 1)) / ti[i]
                    }
                }
                for i in 0..<f { for j in 0..<i { let s = (h[i * f + j] + h[j * f + i]) / 2; h[i * f + j] = s; h[j * f + i] = s } }
            }
        }
        return h
    }
}

/// A raw pointer handed to worker closures; the memory outlives the parallel loop, and workers write disjoint parts.
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafePointer<T>
    init(_ p: UnsafePointer<T>) { self.p = p }
}

/// The buffer's base address; an empty array may have none, and then nothing is read through it (an aligned
/// non-null placeholder stands in).
@inline(__always)
func base<T>(_ b: UnsafeBufferPointer<T>) -> UnsafePointer<T> {
    b.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<T>.alignment)!
}
