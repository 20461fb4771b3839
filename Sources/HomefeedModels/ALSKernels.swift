import HomefeedCore

// The hot loops of weighted ALS (see ALS.swift for the loss and the normal equations), over raw pointers: the
// per-row solver (CG and exact Cholesky), the shared Gramian, and the SIMD8 vector kernels they use.

/// Read-only views of one solve call's inputs plus the output rows, shared by the worker threads. The arrays they
/// point into outlive the parallel loop; each output row is written by exactly one worker (why it may be
/// `@unchecked Sendable`).
struct ALSProblem: @unchecked Sendable {
    let f: Int
    let offsets: UnsafePointer<Int>
    let columns: UnsafePointer<Int32>
    let values: UnsafePointer<Float>
    /// The fixed side, row-major with stride f.
    let y: UnsafePointer<Float>
    /// B = W·G + λI, f × f (Float for CG, Double for the exact path).
    let b: UnsafePointer<Float>
    let bd: UnsafePointer<Double>
    let w: Float
    let cgSteps: Int
    /// Rows whose start is all zeros get the exact solve (fold-in of a user the model has never seen).
    let coldExact: Bool
    /// Rows [y_i | z_i = B⁻¹ y_i] (stride 2f) when this call solves short rows directly, else nil; rows with at
    /// most `directWarm` entries (`directCold` for cold rows) then take the direct solve.
    let yz: UnsafePointer<Float>?
    let directWarm: Int
    let directCold: Int
    /// Solved rows, in place: read as the CG warm start, overwritten with the solution.
    let out: UnsafeMutablePointer<Float>
}

/// Per-thread scratch and the per-row solve. Buffers are sized once per call from the longest row.
final class RowSolver {
    /// Rows up to this many entries are gathered into the block once per solve; longer ones window by window.
    static let gatherLimit = 2048

    let f: Int
    let r, p, ap, tmp: UnsafeMutablePointer<Float>
    let rows: UnsafeMutablePointer<UnsafePointer<Float>>
    let block: UnsafeMutablePointer<Float>
    let m, z, t, zeros: UnsafeMutablePointer<Double>
    let capacity: Int
    /// Direct-solve scratch: the n × n system, its right-hand side, Float dots, and the rows' z pointers.
    let km, kw: UnsafeMutablePointer<Double>
    let kd: UnsafeMutablePointer<Float>
    let zrows: UnsafeMutablePointer<UnsafePointer<Float>>

    init(factors f: Int, maxRow: Int) {
        self.f = f
        capacity = max(maxRow, 1)
        func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
            let q = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1)); q.initialize(repeating: 0, count: max(n, 1)); return q
        }
        func doubles(_ n: Int) -> UnsafeMutablePointer<Double> {
            let q = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1)); q.initialize(repeating: 0, count: max(n, 1)); return q
        }
        r = floats(f); p = floats(f); ap = floats(f); tmp = floats(f)
        rows = .allocate(capacity: capacity)
        block = floats(max(min(capacity, RowSolver.gatherLimit), 2 * min(capacity, ALS.directLimit)) * f)
        m = doubles(f * f); z = doubles(f); t = doubles(8 * f); zeros = doubles(f)
        let d = min(capacity, ALS.directLimit)
        km = doubles(d * d); kw = doubles(d); kd = floats(d); zrows = .allocate(capacity: d)
    }

    deinit {
        r.deallocate(); p.deallocate(); ap.deallocate(); tmp.deallocate()
        rows.deallocate(); block.deallocate(); m.deallocate(); z.deallocate(); t.deallocate(); zeros.deallocate()
        km.deallocate(); kw.deallocate(); kd.deallocate(); zrows.deallocate()
    }

    /// Solves row u of the problem into `out` (in place).
    func solve(_ u: Int, _ q: ALSProblem) {
        let f = q.f
        let start = q.offsets[u], n = q.offsets[u + 1] - start
        let x = q.out + u * f
        // No entries: b = 0, so the solution is exactly 0.
        if n == 0 { x.update(repeating: 0, count: f); return }
        if q.cgSteps == 0 { cholesky(x, q.columns + start, q.values + start, n, q); return }
        let cold = q.coldExact && Kernels.isZero(x, f)
        if let yz = q.yz, n <= (cold ? q.directCold : q.directWarm) {
            direct(x, q.columns + start, q.values + start, n, q, yz)
        } else if cold {
            cholesky(x, q.columns + start, q.values + start, n, q)
        } else {
            conjugateGradient(x, q.columns + start, q.values + start, n, q)
        }
    }

    /// Exact solve of a short row through the shared H = B⁻¹ (Woodbury): with Y_u the row's n videos, D = diag(d_k)
    /// and z_k = H y_k,
    ///     A = B + Y_uᵀ D Y_u  ⇒  A⁻¹ = H − H Y_uᵀ (I + D K)⁻¹ D Y_u H,   K = Y_u H Y_uᵀ (K_kl = y_k·z_l)
    ///     x = A⁻¹ Y_uᵀ c⁺ = Σ_l w_l z_l   with   (I + D K) w = c⁺
    /// An n × n system (Double, partial pivoting; I + DK is invertible because A is) instead of f × f, and no B·v
    /// products: O(n²f + n³) against CG's O(cg·(f² + nf)).
    func direct(_ x: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                _ n: Int, _ q: ALSProblem, _ yz: UnsafePointer<Float>) {
        let f = q.f, w = q.w
        // Copy the 2n rows first: independent loads, many cache misses in flight (the dots below would wait on
        // each row in turn).
        for k in 0..<n {
            let c = Int(cols[k]) * 2 * f
            let dy = block + k * f, dz = block + (n + k) * f
            Kernels.copy(yz + c, dy, f); Kernels.copy(yz + c + f, dz, f)
            rows[k] = UnsafePointer(dy); zrows[k] = UnsafePointer(dz)
        }
        // K's upper triangle by columns: K[0...l][l] = y_0...l · z_l; M = I + D K.
        for l in 0..<n {
            Kernels.dots(UnsafePointer(rows), l + 1, zrows[l], into: kd, f)
            for k in 0...l {
                let v = Double(kd[k])
                km[k * n + l] = v; km[l * n + k] = v
            }
        }
        for k in 0..<n {
            let d = Double(abs(vals[k]) - w)
            for l in 0..<n { km[k * n + l] *= d }
            km[k * n + k] += 1
            kw[k] = Double(max(vals[k], 0))
        }
        Kernels.luSolve(km, kw, n)
        for k in 0..<n { kd[k] = Float(kw[k]) }
        x.update(repeating: 0, count: f)
        Kernels.combine(UnsafePointer(zrows), kd, n, into: x, f)
    }

    /// Copies y_{cols[k]} for k < n into the contiguous block and points `rows[k]` at the copies: independent
    /// loads, many cache misses in flight (the dot-then-axpy passes would wait on each row in turn), and the later
    /// passes then stream from L1/L2.
    @inline(__always)
    func gather(_ cols: UnsafePointer<Int32>, _ n: Int, _ q: ALSProblem) {
        let f = q.f
        for k in 0..<n {
            let dst = block + k * f
            Kernels.copy(q.y + Int(cols[k]) * f, dst, f)
            rows[k] = UnsafePointer(dst)
        }
    }

    /// One pass of `Kernels.accumulate` over the row. A row longer than the block (a popular video) is gathered
    /// and summed window by window, every pass; windows hold a multiple of 4 entries, so the sums group exactly as
    /// in one sweep.
    @inline(__always)
    func pass(_ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>, _ n: Int, residual: Bool,
              _ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ q: ALSProblem) {
        let limit = RowSolver.gatherLimit
        if n <= limit { Kernels.accumulate(rows, vals, n, w: q.w, residual: residual, v, into: out, q.f); return }
        var k0 = 0
        while k0 < n {
            let m = min(limit, n - k0)
            gather(cols + k0, m, q)
            Kernels.accumulate(rows, vals + k0, m, w: q.w, residual: residual, v, into: out, q.f)
            k0 += m
        }
    }

    /// CG on A x = b from the current x, A = B + Σ_k d_k y_k y_kᵀ (d_k = c_k − W), b = Σ_k c_k⁺ y_k (c⁺ = the
    /// confidence of a positive entry, 0 for an explicit negative):
    ///     r = b − A x = Σ_k (c_k⁺ − d_k (y_k·x)) y_k − B x,   p = r
    ///     repeat: Ap = B p + Σ_k d_k (y_k·p) y_k;  α = rᵀr / pᵀAp;  x += α p;  r −= α Ap;  p = r + (r'ᵀr' / rᵀr) p
    /// Each pass over the row's y_k fuses the dot and the axpy (4 entries at a time), as implicit's `_als.pyx`.
    func conjugateGradient(_ x: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                           _ n: Int, _ q: ALSProblem) {
        let f = q.f
        if n <= RowSolver.gatherLimit { gather(cols, n, q) }
        Kernels.symmetricMultiply(q.b, UnsafePointer(x), into: tmp, f)
        for j in 0..<f { r[j] = -tmp[j] }
        pass(cols, vals, n, residual: true, UnsafePointer(x), into: r, q)
        p.update(from: r, count: f)
        var rsOld = Kernels.dot(r, r, f)
        for _ in 0..<q.cgSteps {
            if rsOld < 1e-20 { break }
            Kernels.symmetricMultiply(q.b, UnsafePointer(p), into: ap, f)
            pass(cols, vals, n, residual: false, UnsafePointer(p), into: ap, q)
            let pAp = Kernels.dot(p, ap, f)
            if !(pAp > 0) { break }
            let alpha = rsOld / pAp
            // x += α p, r −= α Ap, r'ᵀr' in one sweep.
            let rsNew = Kernels.cgUpdate(alpha, p, ap, x, r, f)
            if rsNew < 1e-20 { break }
            let beta = rsNew / rsOld
            // p = r + β p
            Kernels.scaleAdd(beta, p, r, f)
            rsOld = rsNew
        }
    }

    /// Exact solve, in Double (the reference path): M = B + Σ_k d_k y_k y_kᵀ, b = Σ_k c_k⁺ y_k, then M = Uᵀ U
    /// (M is symmetric positive definite: B ⪰ λI and every c_k ≥ 0), Uᵀ z = b, U x = z. Only the upper triangle is
    /// stored and touched (row-major: row a holds M[a][a..<f] contiguously).
    func cholesky(_ x: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
                  _ n: Int, _ q: ALSProblem) {
        let f = q.f, w = Double(q.w)
        for a in 0..<f { (m + a * f + a).update(from: q.bd + a * f + a, count: f - a) }
        for j in 0..<f { z[j] = 0 }
        // M[a][a..<f] += Σ_k (d_k y_k[a]) y_k[a..<f], four entries per sweep over the triangle (t holds y_k and
        // d_k y_k in Double; a missing fourth entry is a zero row); b += c_k⁺ y_k (in z).
        let y0 = t, y1 = t + f, y2 = t + 2 * f, y3 = t + 3 * f
        let s0 = t + 4 * f, s1 = t + 5 * f, s2 = t + 6 * f, s3 = t + 7 * f
        var k = 0
        while k < n {
            let group = min(4, n - k)
            for g in 0..<4 {
                let yk = t + g * f, sk = t + (4 + g) * f
                if g < group {
                    let src = q.y + Int(cols[k + g]) * f
                    let v = Double(vals[k + g])
                    let d = abs(v) - w, plus = max(v, 0)
                    for j in 0..<f { let e = Double(src[j]); yk[j] = e; sk[j] = d * e; z[j] += plus * e }
                } else {
                    for j in 0..<f { yk[j] = 0; sk[j] = 0 }
                }
            }
            for a in 0..<f {
                Kernels.rank4(m + a * f + a, s0[a], y0 + a, s1[a], y1 + a, s2[a], y2 + a, s3[a], y3 + a, f - a)
            }
            k += group
        }
        // Right-looking Cholesky, four pivots per panel: factor the panel's rows (U[p][p] = √M[p][p],
        // U[p][p+1..] = M[p][p+1..] / U[p][p], and the panel rows below p updated), then one rank-4 update of every
        // trailing row, M[i][i..] −= Σ_p U[p][i] U[p][i..] — vector sweeps with no serial chain of divisions.
        var p0 = 0
        while p0 < f {
            let pb = min(4, f - p0)
            for p in p0..<(p0 + pb) {
                let up = m + p * f
                let d = max(up[p], 1e-300).squareRoot()
                up[p] = d
                let inv = 1 / d
                for j in (p + 1)..<max(p + 1, f) { up[j] *= inv }
                for i in (p + 1)..<(p0 + pb) {
                    let ui = m + i * f
                    let s = up[i]
                    for j in i..<f { ui[j] -= s * up[j] }
                }
            }
            let zero = UnsafePointer(zeros)
            @inline(__always) func panel(_ r: Int) -> UnsafeMutablePointer<Double>? { r < pb ? m + (p0 + r) * f : nil }
            for i in (p0 + pb)..<max(p0 + pb, f) {
                let r0 = panel(0)!, r1 = panel(1), r2 = panel(2), r3 = panel(3)
                Kernels.rank4(m + i * f + i, -r0[i], r0 + i, -(r1?[i] ?? 0), r1.map { UnsafePointer($0 + i) } ?? zero,
                              -(r2?[i] ?? 0), r2.map { UnsafePointer($0 + i) } ?? zero,
                              -(r3?[i] ?? 0), r3.map { UnsafePointer($0 + i) } ?? zero, f - i)
            }
            p0 += pb
        }
        // Uᵀ z = b (forward, row sweeps: z[i+1..] −= z_i U[i][i+1..]), then U x = z (backward, row dots).
        for i in 0..<f {
            let ui = m + i * f
            let zi = z[i] / ui[i]
            z[i] = zi
            for j in (i + 1)..<max(i + 1, f) { z[j] -= zi * ui[j] }
        }
        for i in stride(from: f - 1, through: 0, by: -1) {
            let ui = m + i * f
            z[i] = (z[i] - Kernels.dot(UnsafePointer(ui + i + 1), UnsafePointer(z + i + 1), f - i - 1)) / ui[i]
        }
        for j in 0..<f { x[j] = Float(z[j]) }
    }
}

/// Vector kernels over raw pointers, 8 Float lanes at a time (portable x86-64 lowers SIMD8 to two SSE registers;
/// `a * b + c` rather than `addingProduct`, which is a per-lane call there; with -target-cpu haswell a fused
/// `addingProduct` measured no faster than `a * b + c` on these kernels). Tails (f not a multiple of 8) are scalar.
public enum Kernels {
    @usableFromInline typealias V8 = SIMD8<Float>

    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> V8 {
        UnsafeRawPointer(p + i).loadUnaligned(as: V8.self)
    }

    @inline(__always)
    static func store(_ v: V8, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V8.self)
    }

    @inline(__always)
    static func isZero(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
        for j in 0..<n where x[j] != 0 { return false }
        return true
    }

    /// dst = src (inline: a 256-byte row through memmove costs a call per entry).
    @inline(__always)
    static func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store(load(src, i), dst, i); i += 8 }
        while i < n { dst[i] = src[i]; i += 1 }
    }

    /// Σ a_i b_i (public: the refresh's ranking scores x_u·y_v with it).
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = V8(), s1 = V8()
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
        let av = V8(repeating: alpha)
        var i = 0
        while i + 8 <= n {
            store(av * load(x, i) + load(y, i), y, i)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// x += α p; r −= α ap; returns rᵀr (the CG update of x and r in one sweep).
    @inline(__always)
    static func cgUpdate(_ alpha: Float, _ p: UnsafePointer<Float>, _ ap: UnsafePointer<Float>,
                         _ x: UnsafeMutablePointer<Float>, _ r: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        let av = V8(repeating: alpha), nav = V8(repeating: -alpha)
        var acc = V8()
        var i = 0
        while i + 8 <= n {
            store(av * load(p, i) + load(x, i), x, i)
            let ri = nav * load(ap, i) + load(r, i)
            store(ri, r, i)
            acc = ri * ri + acc
            i += 8
        }
        var s = acc.sum()
        while i < n { x[i] += alpha * p[i]; r[i] -= alpha * ap[i]; s += r[i] * r[i]; i += 1 }
        return s
    }

    /// p = r + β p
    @inline(__always)
    static func scaleAdd(_ beta: Float, _ p: UnsafeMutablePointer<Float>, _ r: UnsafePointer<Float>, _ n: Int) {
        let bv = V8(repeating: beta)
        var i = 0
        while i + 8 <= n { store(bv * load(p, i) + load(r, i), p, i); i += 8 }
        while i < n { p[i] = r[i] + beta * p[i]; i += 1 }
    }

    /// out = B v for a symmetric f × f B, as Σ_a v_a B[a, :] (row a of B is column a): 32 outputs at a time held
    /// in four accumulators across the whole sweep over a, so each B element is loaded once and no horizontal sums.
    @inline(__always)
    static func symmetricMultiply(_ b: UnsafePointer<Float>, _ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                                  _ f: Int) {
        var j = 0
        while j + 32 <= f {
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
            var row = b + j
            for a in 0..<f {
                let s = V8(repeating: v[a])
                a0 = s * load(row, 0) + a0
                a1 = s * load(row, 8) + a1
                a2 = s * load(row, 16) + a2
                a3 = s * load(row, 24) + a3
                row += f
            }
            store(a0, out, j); store(a1, out, j + 8); store(a2, out, j + 16); store(a3, out, j + 24)
            j += 32
        }
        while j + 8 <= f {
            var a0 = V8()
            var row = b + j
            for a in 0..<f { a0 = V8(repeating: v[a]) * load(row, 0) + a0; row += f }
            store(a0, out, j)
            j += 8
        }
        while j < f {
            var s: Float = 0
            for a in 0..<f { s += v[a] * b[a * f + j] }
            out[j] = s
            j += 1
        }
    }

    /// out += Σ_k s_k y_k over one row's entries, with (d_k = |c_k| − W, c_k⁺ = max(c_k, 0))
    ///     residual: s_k = c_k⁺ − d_k (y_k·v)        (b − Σ_k d_k y_k y_kᵀ v)
    ///     else:     s_k = d_k (y_k·v)               (Σ_k d_k y_k y_kᵀ v)
    /// Four entries per step: four dots share the loads of v, then one read-modify-write of out adds all four.
    @inline(__always)
    static func accumulate(_ rows: UnsafePointer<UnsafePointer<Float>>, _ vals: UnsafePointer<Float>, _ n: Int,
                           w: Float, residual: Bool, _ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                           _ f: Int) {
        @inline(__always) func coefficient(_ c: Float, _ dot: Float) -> Float {
            let d = abs(c) - w
            return residual ? max(c, 0) - d * dot : d * dot
        }
        var k = 0
        while k + 4 <= n {
            let y0 = rows[k], y1 = rows[k + 1], y2 = rows[k + 2], y3 = rows[k + 3]
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
            var j = 0
            while j + 8 <= f {
                let vj = load(v, j)
                a0 = load(y0, j) * vj + a0
                a1 = load(y1, j) * vj + a1
                a2 = load(y2, j) * vj + a2
                a3 = load(y3, j) * vj + a3
                j += 8
            }
            var d0 = a0.sum(), d1 = a1.sum(), d2 = a2.sum(), d3 = a3.sum()
            while j < f { d0 += y0[j] * v[j]; d1 += y1[j] * v[j]; d2 += y2[j] * v[j]; d3 += y3[j] * v[j]; j += 1 }
            let s0 = coefficient(vals[k], d0), s1 = coefficient(vals[k + 1], d1)
            let s2 = coefficient(vals[k + 2], d2), s3 = coefficient(vals[k + 3], d3)
            let v0 = V8(repeating: s0), v1 = V8(repeating: s1), v2 = V8(repeating: s2), v3 = V8(repeating: s3)
            j = 0
            while j + 8 <= f {
                let sum = (load(y0, j) * v0 + load(y1, j) * v1) + (load(y2, j) * v2 + load(y3, j) * v3)
                store(load(out, j) + sum, out, j)
                j += 8
            }
            while j < f { out[j] += (y0[j] * s0 + y1[j] * s1) + (y2[j] * s2 + y3[j] * s3); j += 1 }
            k += 4
        }
        while k < n {
            let yk = rows[k]
            axpy(coefficient(vals[k], dot(yk, v, f)), yk, out, f)
            k += 1
        }
    }

    /// out[k] = rows[k]·v for k < n, four rows per sweep (they share the loads of v).
    @inline(__always)
    static func dots(_ rows: UnsafePointer<UnsafePointer<Float>>, _ n: Int, _ v: UnsafePointer<Float>,
                     into out: UnsafeMutablePointer<Float>, _ f: Int) {
        var k = 0
        while k + 4 <= n {
            let y0 = rows[k], y1 = rows[k + 1], y2 = rows[k + 2], y3 = rows[k + 3]
            var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
            var j = 0
            while j + 8 <= f {
                let vj = load(v, j)
                a0 = load(y0, j) * vj + a0
                a1 = load(y1, j) * vj + a1
                a2 = load(y2, j) * vj + a2
                a3 = load(y3, j) * vj + a3
                j += 8
            }
            var d0 = a0.sum(), d1 = a1.sum(), d2 = a2.sum(), d3 = a3.sum()
            while j < f { d0 += y0[j] * v[j]; d1 += y1[j] * v[j]; d2 += y2[j] * v[j]; d3 += y3[j] * v[j]; j += 1 }
            out[k] = d0; out[k + 1] = d1; out[k + 2] = d2; out[k + 3] = d3
            k += 4
        }
        while k < n { out[k] = dot(rows[k], v, f); k += 1 }
    }

    /// out += Σ_k s_k rows[k], four rows per read-modify-write of out.
    @inline(__always)
    static func combine(_ rows: UnsafePointer<UnsafePointer<Float>>, _ s: UnsafePointer<Float>, _ n: Int,
                        into out: UnsafeMutablePointer<Float>, _ f: Int) {
        var k = 0
        while k + 4 <= n {
            let y0 = rows[k], y1 = rows[k + 1], y2 = rows[k + 2], y3 = rows[k + 3]
            let s0 = s[k], s1 = s[k + 1], s2 = s[k + 2], s3 = s[k + 3]
            let v0 = V8(repeating: s0), v1 = V8(repeating: s1), v2 = V8(repeating: s2), v3 = V8(repeating: s3)
            var j = 0
            while j + 8 <= f {
                let sum = (load(y0, j) * v0 + load(y1, j) * v1) + (load(y2, j) * v2 + load(y3, j) * v3)
                store(load(out, j) + sum, out, j)
                j += 8
            }
            while j < f { out[j] += (y0[j] * s0 + y1[j] * s1) + (y2[j] * s2 + y3[j] * s3); j += 1 }
            k += 4
        }
        while k < n { axpy(s[k], rows[k], out, f); k += 1 }
    }

    /// Solves M w = b in place (M: n × n row-major, overwritten; b becomes w): Gaussian elimination with partial
    /// pivoting, then back substitution.
    static func luSolve(_ m: UnsafeMutablePointer<Double>, _ b: UnsafeMutablePointer<Double>, _ n: Int) {
        for c in 0..<n {
            var piv = c, best = abs(m[c * n + c])
            for r in (c + 1)..<max(c + 1, n) where abs(m[r * n + c]) > best { piv = r; best = abs(m[r * n + c]) }
            if piv != c {
                for j in c..<n { let t = m[c * n + j]; m[c * n + j] = m[piv * n + j]; m[piv * n + j] = t }
                let t = b[c]; b[c] = b[piv]; b[piv] = t
            }
            let inv = 1 / m[c * n + c]
            for r in (c + 1)..<max(c + 1, n) {
                let factor = m[r * n + c] * inv
                if factor == 0 { continue }
                for j in (c + 1)..<n { m[r * n + j] -= factor * m[c * n + j] }
                b[r] -= factor * b[c]
            }
        }
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = b[r]
            for j in (r + 1)..<max(r + 1, n) { s -= m[r * n + j] * b[j] }
            b[r] = s / m[r * n + r]
        }
    }

    /// m[0..<n] += s0 y0 + s1 y1 + s2 y2 + s3 y3 (Double; one row of the rank-4 update in the exact path).
    @inline(__always)
    static func rank4(_ m: UnsafeMutablePointer<Double>, _ s0: Double, _ y0: UnsafePointer<Double>, _ s1: Double,
                      _ y1: UnsafePointer<Double>, _ s2: Double, _ y2: UnsafePointer<Double>, _ s3: Double,
                      _ y3: UnsafePointer<Double>, _ n: Int) {
        typealias D4 = SIMD4<Double>
        @inline(__always) func ld(_ p: UnsafePointer<Double>, _ i: Int) -> D4 { UnsafeRawPointer(p + i).loadUnaligned(as: D4.self) }
        let v0 = D4(repeating: s0), v1 = D4(repeating: s1), v2 = D4(repeating: s2), v3 = D4(repeating: s3)
        var i = 0
        while i + 4 <= n {
            let sum = (ld(y0, i) * v0 + ld(y1, i) * v1) + (ld(y2, i) * v2 + ld(y3, i) * v3)
            UnsafeMutableRawPointer(m + i).storeBytes(of: ld(m, i) + sum, as: D4.self)
            i += 4
        }
        while i < n { m[i] += (y0[i] * s0 + y1[i] * s1) + (y2[i] * s2 + y3[i] * s3); i += 1 }
    }

    /// Σ a_i b_i in Double.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        typealias D4 = SIMD4<Double>
        @inline(__always) func ld(_ p: UnsafePointer<Double>, _ i: Int) -> D4 { UnsafeRawPointer(p + i).loadUnaligned(as: D4.self) }
        var s0 = D4(), s1 = D4()
        var i = 0
        while i + 8 <= n { s0 = ld(a, i) * ld(b, i) + s0; s1 = ld(a, i + 4) * ld(b, i + 4) + s1; i += 8 }
        if i + 4 <= n { s0 = ld(a, i) * ld(b, i) + s0; i += 4 }
        var s = (s0 + s1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
}

extension Kernels {
    /// acc[a][b] += Σ_r P[r][a] P[r][b] for b ≥ a (rounded down to a tile of 8), over `n` packed rows P of stride
    /// fp (fp a multiple of 8, zero-padded). Tiles of 4 × 8 outputs stay in registers (Float) for the whole block;
    /// the block's sums are then added to the Double accumulator, so Float rounding spans at most one block.
    static func gramianBlock(_ pk: UnsafePointer<Float>, _ n: Int, _ fp: Int, _ acc: UnsafeMutablePointer<Double>) {
        var a = 0
        while a < fp {
            var b = (a / 8) * 8
            while b < fp {
                var c0 = V8(), c1 = V8(), c2 = V8(), c3 = V8()
                var row = pk
                for _ in 0..<n {
                    let yb = load(row, b)
                    c0 = V8(repeating: row[a]) * yb + c0
                    c1 = V8(repeating: row[a + 1]) * yb + c1
                    c2 = V8(repeating: row[a + 2]) * yb + c2
                    c3 = V8(repeating: row[a + 3]) * yb + c3
                    row += fp
                }
                @inline(__always) func add(_ c: V8, _ i: Int) {
                    let out = acc + (a + i) * fp + b
                    for l in 0..<8 { out[l] += Double(c[l]) }
                }
                add(c0, 0); add(c1, 1); add(c2, 2); add(c3, 3)
                b += 8
            }
            a += 4
        }
    }
}
