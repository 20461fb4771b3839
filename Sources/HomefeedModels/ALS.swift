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

/// Per-thread scratch and the per-row solve (CG or Cholesky). Raw buffers and SIMD8 kernels (`Kernels`): the
/// solve is f×f and f-length products per observed video, the whole cost of a half-iteration.
final class RowSolver {
    let f: Int
    let b, x, r, p, ap: UnsafeMutablePointer<Float>

    init(factors f: Int) {
        self.f = f
        func buffer() -> UnsafeMutablePointer<Float> {
            let m = UnsafeMutablePointer<Float>.allocate(capacity: f); m.initialize(repeating: 0, count: f); return m
        }
        b = buffer(); x = buffer(); r = buffer(); p = buffer(); ap = buffer()
    }

    deinit { b.deallocate(); x.deallocate(); r.deallocate(); p.deallocate(); ap.deallocate() }

    /// A·v for A = W·G + Σ_i (c_i − W) y_i y_iᵀ + λI, without forming A:
    ///     A v = W·(G v) + Σ_i (c_i − W)(y_i·v) y_i + λ v
    func multiply(_ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, row u: Int, rows: SparseRows,
                  y: UnsafeBufferPointer<Float>, gram: UnsafeBufferPointer<Float>, config: ALSConfig) {
        let w = config.unobservedWeight, lambda = config.regularization
        let g = gram.baseAddress!
        for a in 0..<f { out[a] = w * Kernels.dot(g + a * f, v, f) + lambda * v[a] }
        rows.columns.withUnsafeBufferPointer { cols in
            rows.values.withUnsafeBufferPointer { vals in
                for k in rows.offsets[u]..<rows.offsets[u + 1] {
                    let yi = y.baseAddress! + Int(cols[k]) * f
                    Kernels.axpy((vals[k] - w) * Kernels.dot(yi, v, f), yi, out, f)
                }
            }
        }
    }

    /// Array form, for tests.
    func multiply(_ v: [Float], into out: inout [Float], row u: Int, rows: SparseRows,
                  y: UnsafeBufferPointer<Float>, gram: UnsafeBufferPointer<Float>, config: ALSConfig) {
        v.withUnsafeBufferPointer { vp in
            out.withUnsafeMutableBufferPointer { op in
                multiply(vp.baseAddress!, into: op.baseAddress!, row: u, rows: rows, y: y, gram: gram, config: config)
            }
        }
    }

    func solveRow(_ u: Int, rows: SparseRows, y: UnsafeBufferPointer<Float>, gram: UnsafeBufferPointer<Float>,
                  config: ALSConfig, out: SlotBuffer<Float>) {
        // b = Σ_i c_i y_i
        for j in 0..<f { b[j] = 0; x[j] = out[u * f + j] }
        rows.columns.withUnsafeBufferPointer { cols in
            rows.values.withUnsafeBufferPointer { vals in
                for k in rows.offsets[u]..<rows.offsets[u + 1] {
                    Kernels.axpy(vals[k], y.baseAddress! + Int(cols[k]) * f, b, f)
                }
            }
        }
        if config.cgSteps == 0 { choleskySolve(u, rows: rows, y: y, gram: gram, config: config) }
        else { conjugateGradient(u, rows: rows, y: y, gram: gram, config: config) }
        for j in 0..<f { out[u * f + j] = x[j] }
    }

    /// CG from the current x: r = b − A x, p = r; repeat: α = rᵀr / pᵀAp, x += αp, r −= αAp, p = r + (r'ᵀr'/rᵀr) p.
    func conjugateGradient(_ u: Int, rows: SparseRows, y: UnsafeBufferPointer<Float>,
                           gram: UnsafeBufferPointer<Float>, config: ALSConfig) {
        multiply(x, into: ap, row: u, rows: rows, y: y, gram: gram, config: config)
        for j in 0..<f { r[j] = b[j] - ap[j]; p[j] = r[j] }
        var rsOld = Kernels.dot(r, r, f)
        for _ in 0..<config.cgSteps {
            if rsOld < 1e-20 { break }
            multiply(p, into: ap, row: u, rows: rows, y: y, gram: gram, config: config)
            let pAp = Kernels.dot(p, ap, f)
            if pAp <= 0 { break }
            let alpha = rsOld / pAp
            Kernels.axpy(alpha, p, x, f)
            Kernels.axpy(-alpha, ap, r, f)
            let rsNew = Kernels.dot(r, r, f)
            let beta = rsNew / rsOld
            for j in 0..<f { p[j] = r[j] + beta * p[j] }
            rsOld = rsNew
        }
    }

    /// Exact solve: forms A = W·G + Σ (c_i − W) y_i y_iᵀ + λI and factors it A = L Lᵀ (A is symmetric positive
    /// definite for λ > 0), then L z = b, Lᵀ x = z. In Double: this is the reference path of the tests.
    func choleskySolve(_ u: Int, rows: SparseRows, y: UnsafeBufferPointer<Float>,
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

/// Float32 vector kernels over raw pointers, 8 lanes at a time with two accumulators (portable x86-64 lowers SIMD8
/// to two SSE registers; `a * b + c` rather than `addingProduct`, which is a per-lane call there).
enum Kernels {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Σ a_i b_i
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            s0 = load(a, i) * load(b, i) + s0
            s1 = load(a, i + 8) * load(b, i + 8) + s1
            i += 16
        }
        if i + 8 <= n { s0 = load(a, i) * load(b, i) + s0; i += 8 }
        var s = (s0 + s1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y += α x
    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n {
            let v = av * load(x, i) + load(UnsafePointer(y), i)
            UnsafeMutableRawPointer(y + i).storeBytes(of: v, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }
}
