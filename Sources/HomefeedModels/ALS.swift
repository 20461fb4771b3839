import HomefeedCore

/// Weighted alternating least squares for implicit feedback (Hu, Koren & Volinsky 2008; the conjugate-gradient
/// update of Takács et al. 2011, as in `implicit`).
///
/// Loss, with X the user factors, Y the video factors, c_ui > 0 the confidence of an observed pair (how strong the
/// signal was: like > long watch > partial watch), W the weight of every unobserved pair and λ the L2 weight:
///
///     L = Σ_(u,i) observed  c_ui (1 − x_uᵀy_i)²  +  W Σ_(u,i) unobserved (x_uᵀy_i)²  +  λ (Σ‖x_u‖² + Σ‖y_i‖²)
///
/// With Y fixed each x_u solves a ridge regression (and symmetrically for y_i):
///
///     (W·YᵀY + Σ_(i∈I_u) (c_ui − W) y_i y_iᵀ + λI) x_u  =  Σ_(i∈I_u) c_ui y_i
///
/// YᵀY is shared by all users (computed once per half-iteration); the per-user correction only touches the user's
/// own videos, so a half-iteration costs O(nnz·f + n·f·cg) with CG, O(nnz·f² + n·f³) with the exact Cholesky path.
public struct ALSConfig: Sendable, Equatable {
    public var factors = 64
    public var iterations = 15
    public var regularization: Float = 0.05
    /// W: weight of unobserved pairs.
    public var unobservedWeight: Float = 1
    /// Conjugate-gradient steps per row, warm-started from the previous factors; 0 = exact (Cholesky) solve.
    public var cgSteps = 3
    public var threads = 0
    public var seed: UInt64 = 42
    public init() {}
}

public struct ALSModel: Sendable {
    public var users: Matrix
    public var videos: Matrix
}

public enum ALS {
    /// Fits factors for `confidence` (users × videos, values c_ui). `onIteration(i, loss)` is called after each
    /// iteration when `trackLoss` is set (the loss is O(users·videos·f): tests and small data only).
    public static func fit(_ confidence: SparseRows, config: ALSConfig, trackLoss: Bool = false,
                           onIteration: (Int, Double) -> Void = { _, _ in }) -> ALSModel {
        let f = config.factors
        var rng = SeededRandom(seed: config.seed)
        // Small random start (scaled by 1/√f) so the first solves are well conditioned and runs are reproducible.
        func initial(_ n: Int) -> Matrix {
            Matrix(rows: n, cols: f, values: (0..<(n * f)).map { _ in Float(rng.nextDouble() - 0.5) * 0.1 / Float(f).squareRoot() })
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

    /// One half-iteration: every row of `target` re-solved against `fixed`, in parallel (rows are independent).
    static func solve(_ target: inout Matrix, fixed: Matrix, rows: SparseRows, config: ALSConfig, threads: Int) {
        let f = config.factors
        let gram = gramian(fixed, threads: threads)
        let out = SlotBuffer(target.values)
        let fixedValues = fixed.values
        let scratch = SlotBuffer((0..<threads).map { _ in RowSolver(factors: f) })
        parallelFor(rows.rows, threads: threads, chunk: 256) { worker, range in
            scratch.withSlot(worker) { solver in
                fixedValues.withUnsafeBufferPointer { y in
                    gram.withUnsafeBufferPointer { g in
                        for u in range {
                            solver.solveRow(u, rows: rows, y: y, gram: g, config: config, out: out)
                        }
                    }
                }
            }
        }
        target.values = (0..<out.count).map { out[$0] }
    }

    /// YᵀY (f × f, symmetric): partial sums per fixed block of 1024 rows, added in block order, so the result
    /// does not depend on which thread took which block (runs are reproducible for any thread count).
    static func gramian(_ m: Matrix, threads: Int) -> [Float] {
        let f = m.cols, block = 1024
        let blocks = max(1, (m.rows + block - 1) / block)
        let partials = SlotBuffer<[Double]>(repeating: [Double](repeating: 0, count: f * f), count: blocks)
        let values = m.values
        parallelFor(m.rows, threads: threads, chunk: block) { _, range in
            partials.withSlot(range.lowerBound / block) { acc in
                values.withUnsafeBufferPointer { v in
                    for r in range {
                        let row = v.baseAddress! + r * f
                        for a in 0..<f {
                            let ra = Double(row[a])
                            if ra == 0 { continue }
                            for b in a..<f { acc[a * f + b] += ra * Double(row[b]) }
                        }
                    }
                }
            }
        }
        var g = [Float](repeating: 0, count: f * f)
        for a in 0..<f {
            for b in a..<f {
                var s = 0.0
                for k in 0..<blocks { s += partials[k][a * f + b] }
                g[a * f + b] = Float(s); g[b * f + a] = Float(s)
            }
        }
        return g
    }

    /// The loss L above, computed densely (tests, tiny data).
    public static func loss(_ c: SparseRows, _ x: Matrix, _ y: Matrix, _ config: ALSConfig) -> Double {
        let f = config.factors
        var total = 0.0
        for u in 0..<c.rows {
            var observed = [Int32: Float]()
            for k in c.offsets[u]..<c.offsets[u + 1] { observed[c.columns[k]] = c.values[k] }
            for i in 0..<c.cols {
                var dot = 0.0
                for k in 0..<f { dot += Double(x[u, k]) * Double(y[i, k]) }
                if let cui = observed[Int32(i)] { total += Double(cui) * (1 - dot) * (1 - dot) }
                else { total += Double(config.unobservedWeight) * dot * dot }
            }
        }
        let reg = x.values.reduce(0.0) { $0 + Double($1 * $1) } + y.values.reduce(0.0) { $0 + Double($1 * $1) }
        return total + Double(config.regularization) * reg
    }
}

/// Per-thread scratch and the per-row solve (CG or Cholesky).
struct RowSolver {
    let f: Int
    var a: [Float], b: [Float], x: [Float], r: [Float], p: [Float], ap: [Float]

    init(factors f: Int) {
        self.f = f
        a = [Float](repeating: 0, count: f * f)
        b = [Float](repeating: 0, count: f); x = b; r = b; p = b; ap = b
    }

    /// A·v for A = W·G + Σ_i (c_i − W) y_i y_iᵀ + λI, without forming A:
    ///     A v = W·(G v) + Σ_i (c_i − W)(y_i·v) y_i + λ v
    mutating func multiply(_ v: [Float], into out: inout [Float], row u: Int, rows: SparseRows,
                           y: UnsafeBufferPointer<Float>, gram: UnsafeBufferPointer<Float>, config: ALSConfig) {
        let w = config.unobservedWeight, lambda = config.regularization
        for a in 0..<f {
            var s: Float = 0
            for b in 0..<f { s += gram[a * f + b] * v[b] }
            out[a] = w * s + lambda * v[a]
        }
        for k in rows.offsets[u]..<rows.offsets[u + 1] {
            let yi = y.baseAddress! + Int(rows.columns[k]) * f
            var d: Float = 0
            for j in 0..<f { d += yi[j] * v[j] }
            let scale = (rows.values[k] - w) * d
            for j in 0..<f { out[j] += scale * yi[j] }
        }
    }

    mutating func solveRow(_ u: Int, rows: SparseRows, y: UnsafeBufferPointer<Float>, gram: UnsafeBufferPointer<Float>,
                           config: ALSConfig, out: SlotBuffer<Float>) {
        // b = Σ_i c_i y_i
        for j in 0..<f { b[j] = 0; x[j] = out[u * f + j] }
        for k in rows.offsets[u]..<rows.offsets[u + 1] {
            let yi = y.baseAddress! + Int(rows.columns[k]) * f
            let c = rows.values[k]
            for j in 0..<f { b[j] += c * yi[j] }
        }
        if config.cgSteps == 0 { choleskySolve(u, rows: rows, y: y, gram: gram, config: config) }
        else { conjugateGradient(u, rows: rows, y: y, gram: gram, config: config) }
        for j in 0..<f { out[u * f + j] = x[j] }
    }

    /// CG from the current x: r = b − A x, p = r; repeat: α = rᵀr / pᵀAp, x += αp, r −= αAp, p = r + (r'ᵀr'/rᵀr) p.
    mutating func conjugateGradient(_ u: Int, rows: SparseRows, y: UnsafeBufferPointer<Float>,
                                    gram: UnsafeBufferPointer<Float>, config: ALSConfig) {
        var tmp = ap
        multiply(x, into: &tmp, row: u, rows: rows, y: y, gram: gram, config: config)
        var rsOld: Float = 0
        for j in 0..<f { r[j] = b[j] - tmp[j]; p[j] = r[j]; rsOld += r[j] * r[j] }
        for _ in 0..<config.cgSteps {
            if rsOld < 1e-20 { break }
            multiply(p, into: &tmp, row: u, rows: rows, y: y, gram: gram, config: config)
            var pAp: Float = 0
            for j in 0..<f { pAp += p[j] * tmp[j] }
            if pAp <= 0 { break }
            let alpha = rsOld / pAp
            var rsNew: Float = 0
            for j in 0..<f { x[j] += alpha * p[j]; r[j] -= alpha * tmp[j]; rsNew += r[j] * r[j] }
            let beta = rsNew / rsOld
            for j in 0..<f { p[j] = r[j] + beta * p[j] }
            rsOld = rsNew
        }
        ap = tmp
    }

    /// Exact solve: forms A = W·G + Σ (c_i − W) y_i y_iᵀ + λI and factors it A = L Lᵀ (A is symmetric positive
    /// definite for λ > 0), then L z = b, Lᵀ x = z.
    mutating func choleskySolve(_ u: Int, rows: SparseRows, y: UnsafeBufferPointer<Float>,
                                gram: UnsafeBufferPointer<Float>, config: ALSConfig) {
        let w = config.unobservedWeight
        var m = [Double](repeating: 0, count: f * f)
        for i in 0..<(f * f) { m[i] = Double(w * gram[i]) }
        for j in 0..<f { m[j * f + j] += Double(config.regularization) }
        for k in rows.offsets[u]..<rows.offsets[u + 1] {
            let yi = y.baseAddress! + Int(rows.columns[k]) * f
            let c = Double(rows.values[k] - w)
            for a in 0..<f { for bb in 0..<f { m[a * f + bb] += c * Double(yi[a]) * Double(yi[bb]) } }
        }
        // In-place Cholesky (lower triangle).
        for j in 0..<f {
            var d = m[j * f + j]
            for k in 0..<j { d -= m[j * f + k] * m[j * f + k] }
            let l = (max(d, 1e-12)).squareRoot()
            m[j * f + j] = l
            for i in (j + 1)..<max(j + 1, f) {
                var s = m[i * f + j]
                for k in 0..<j { s -= m[i * f + k] * m[j * f + k] }
                m[i * f + j] = s / l
            }
        }
        var z = [Double](repeating: 0, count: f)
        for i in 0..<f {
            var s = Double(b[i])
            for k in 0..<i { s -= m[i * f + k] * z[k] }
            z[i] = s / m[i * f + i]
        }
        for i in stride(from: f - 1, through: 0, by: -1) {
            var s = z[i]
            for k in (i + 1)..<max(i + 1, f) { s -= m[k * f + i] * Double(x[k]) }
            x[i] = Float(s / m[i * f + i])
        }
    }
}
