import Foundation
import HomefeedCore

// The two-tower retrieval model: a user tower and a video tower map sparse features to L2-normalized embeddings
// whose dot product (over a temperature) scores a (user, video) pair. This file: the specs, the sparse input rows,
// the model (parameters, initialization, persistence, embeddings) and the forward/backward kernels of one tower.
// Training (sampled softmax, Adam, the trainer): TwoTowerTraining.swift.
//
// One tower, for one input row with entries (field f, token t, weight w):
//
//     x_f = Σ_(f,t,w) w · E_f[t mod buckets_f]          weighted bag of hashed tokens (an empty field pools to 0)
//     x   = [x_0 | x_1 | …]                              concat, Σ_f dim_f wide
//     h   = ReLU(W1 x + b1)                              hidden
//     z   = W2 h + b2                                    output
//     e   = z / ‖z‖    (‖z‖ = √(Σ z² + 1e−12))           the embedding
//
// score(u, v) = (e_u · e_v) / τ.

/// One input field of a tower: a weighted bag of hashed tokens, pooled as Σ weight · E_field[token % buckets].
public struct FeatureField: Codable, Sendable, Equatable {
    public var name: String
    public var buckets: Int
    public var dim: Int
    public init(name: String, buckets: Int, dim: Int) { self.name = name; self.buckets = buckets; self.dim = dim }
}

/// A tower: concat of pooled fields (Σ dim) → hidden = ReLU(W1·x + b1) → out = W2·hidden + b2 → L2-normalized
/// embedding.
public struct TowerSpec: Codable, Sendable, Equatable {
    public var fields: [FeatureField]
    public var hidden: Int
    public var output: Int
    public init(fields: [FeatureField], hidden: Int, output: Int) { self.fields = fields; self.hidden = hidden; self.output = output }

    /// Width of x: Σ dim of the fields.
    public var inputDim: Int { fields.reduce(0) { $0 + $1.dim } }
    /// Σ buckets · dim: the embedding tables.
    public var embeddingParameterCount: Int { fields.reduce(0) { $0 + $1.buckets * $1.dim } }
    /// W1, b1, W2, b2.
    public var denseParameterCount: Int { hidden * inputDim + hidden + output * hidden + output }
    public var parameterCount: Int { embeddingParameterCount + denseParameterCount }

    /// nil when the tower can be built, else what is wrong (`side` names the tower in the message).
    public func validate(side: String) -> String? {
        if hidden < 1 || output < 1 { return "\(side) tower: hidden \(hidden) and output \(output) must be ≥ 1" }
        for f in fields where f.buckets < 1 || f.dim < 1 || f.buckets > Int(UInt32.max) {
            return "\(side) tower: field \(f.name) has \(f.buckets) buckets and dim \(f.dim) (both must be ≥ 1, buckets ≤ 2³²−1)"
        }
        return nil
    }
}

/// What a two-tower model is, apart from its weights: both towers and the temperature. With `parameters`
/// (TwoTowerModel.parameterOrder) it is everything needed to rebuild the model.
public struct TwoTowerSpec: Codable, Sendable, Equatable {
    public var user: TowerSpec
    public var video: TowerSpec
    /// τ: score = (e_u · e_v) / τ. The trainer sets it to the temperature it trained with.
    public var temperature: Float
    public init(user: TowerSpec, video: TowerSpec, temperature: Float = 0.05) {
        self.user = user; self.video = video; self.temperature = temperature
    }

    public var parameterCount: Int { user.parameterCount + video.parameterCount }

    /// nil when a model can be built from this spec, else what is wrong.
    public func validate() -> String? {
        if let p = user.validate(side: "user") ?? video.validate(side: "video") { return "two-tower spec: " + p }
        if user.output != video.output {
            return "two-tower spec: user output \(user.output) ≠ video output \(video.output) (embeddings are dot-producted)"
        }
        if !(temperature > 0) || !temperature.isFinite { return "two-tower spec: temperature \(temperature) must be > 0" }
        return nil
    }
}

/// Sparse input rows, built row by row: for each row, any number of (field, token, weight) entries, then endRow().
/// Tokens are raw 32-bit hashes; the tower reduces them modulo the field's buckets. An empty field pools to zero.
/// Entries of a row are pooled in the order they were added (the order only affects rounding).
public struct FeatureRows: Sendable {
    public let fields: Int
    /// Row r: entries offsets[r]..<offsets[r+1].
    var offsets: [Int] = [0]
    var field: [Int32] = []
    var token: [UInt32] = []
    var weight: [Float] = []

    public init(fields: Int) {
        precondition(fields >= 0 && fields <= Int(Int32.max), "FeatureRows: \(fields) fields")
        self.fields = fields
    }

    /// Rows ended so far.
    public var count: Int { offsets.count - 1 }
    /// Entries in all ended rows and the open one.
    public var entryCount: Int { token.count }

    public mutating func add(_ field: Int, _ token: UInt32, _ weight: Float = 1) {
        precondition(field >= 0 && field < fields, "FeatureRows.add: field \(field) outside 0..<\(fields)")
        self.field.append(Int32(truncatingIfNeeded: field)); self.token.append(token); self.weight.append(weight)
    }

    public mutating func endRow() { offsets.append(token.count) }

    /// Keeps capacity.
    public mutating func removeAll() {
        offsets.removeAll(keepingCapacity: true); offsets.append(0)
        field.removeAll(keepingCapacity: true); token.removeAll(keepingCapacity: true); weight.removeAll(keepingCapacity: true)
    }

    public mutating func reserveCapacity(rows: Int, entries: Int) {
        offsets.reserveCapacity(rows + 1)
        field.reserveCapacity(entries); token.reserveCapacity(entries); weight.reserveCapacity(entries)
    }

    /// Row r's entries as (field, token, weight), in the order added.
    public func entries(ofRow r: Int) -> [(field: Int, token: UInt32, weight: Float)] {
        (offsets[r]..<offsets[r + 1]).map { (Int(field[$0]), token[$0], weight[$0]) }
    }
}

/// Where one tower's weights sit in the model's flat parameter array (see `TwoTowerModel.parameterOrder`).
struct TowerLayout: Sendable {
    let spec: TowerSpec
    let inDim: Int, hidden: Int, output: Int
    /// Absolute offset of field f's table E_f (buckets_f × dim_f, row-major).
    let tables: [Int]
    /// Offset of x_f inside x.
    let xOffsets: [Int]
    /// First embedding-row number of field f among the tower's Σ buckets rows (the trainer's slot maps).
    let rowBase: [Int]
    let totalRows: Int
    /// Absolute offsets of W1 (hidden × inDim), b1, W2 (output × hidden), b2.
    let w1: Int, b1: Int, w2: Int, b2: Int
    /// W1…b2, contiguous: the dense part (Adam), right after the tables.
    let dense: Range<Int>
    let start: Int, end: Int

    init(_ spec: TowerSpec, at start: Int) {
        self.spec = spec
        inDim = spec.inputDim; hidden = spec.hidden; output = spec.output
        var tables: [Int] = [], xOffsets: [Int] = [], rowBase: [Int] = []
        var p = start, x = 0, r = 0
        for f in spec.fields {
            tables.append(p); xOffsets.append(x); rowBase.append(r)
            p += f.buckets * f.dim; x += f.dim; r += f.buckets
        }
        self.tables = tables; self.xOffsets = xOffsets; self.rowBase = rowBase; totalRows = r
        w1 = p; b1 = w1 + hidden * inDim; w2 = b1 + hidden; b2 = w2 + output * hidden
        dense = w1..<(b2 + output)
        self.start = start; end = b2 + output
    }

    /// The pooling metadata of every field, for the hot loop.
    var poolFields: [PoolField] {
        spec.fields.indices.map {
            PoolField(table: tables[$0], xOffset: xOffsets[$0], dim: spec.fields[$0].dim,
                      buckets: UInt32(spec.fields[$0].buckets), rowBase: rowBase[$0])
        }
    }
}

struct PoolField: Sendable {
    let table: Int, xOffset: Int, dim: Int
    let buckets: UInt32
    let rowBase: Int
}

/// A trained (or freshly initialized) two-tower model: the spec and all weights in one flat array.
public struct TwoTowerModel: Sendable {
    /// Codable description: both tower specs and the temperature (persist it with `parameters`).
    public private(set) var description: TwoTowerSpec
    /// All weights, in `parameterOrder`.
    public internal(set) var parameters: [Float]
    let userLayout: TowerLayout
    let videoLayout: TowerLayout

    public var user: TowerSpec { description.user }
    public var video: TowerSpec { description.video }
    /// τ: score = (e_u · e_v) / τ.
    public var temperature: Float {
        get { description.temperature }
        set { description.temperature = newValue }
    }

    /// The order of `parameters`: the user tower, then the video tower; within a tower
    ///     E_0, E_1, … (one table per field, in field order, each buckets × dim row-major: row b = token bucket b),
    ///     W1 (hidden × Σdim, row-major: row j holds the weights into hidden unit j), b1 (hidden),
    ///     W2 (output × hidden, row-major), b2 (output).
    /// Float32 throughout; x is the fields' pooled vectors concatenated in field order.
    public static let parameterOrder =
        "user tower then video tower; each: E_field (buckets×dim, row-major) per field in order, W1 (hidden×Σdim), b1, W2 (output×hidden), b2"

    /// A model from saved weights. Throws when the spec is invalid or `parameters` has the wrong size.
    public init(_ spec: TwoTowerSpec, parameters: [Float]) throws {
        if let problem = spec.validate() { throw HomefeedError(problem) }
        guard parameters.count == spec.parameterCount else {
            throw HomefeedError("two-tower model: \(parameters.count) parameters given, the spec needs \(spec.parameterCount) "
                                + "(user tower \(spec.user.parameterCount), video tower \(spec.video.parameterCount))")
        }
        self.init(unchecked: spec, parameters: parameters)
    }

    /// Random initialization from `seed`: embedding tables N(0, 0.1²); W1 He-normal N(0, 2/Σdim); W2 Glorot-normal
    /// N(0, 2/(hidden + output)); biases 0. Stops the program when the spec is invalid (`spec.validate()` says why).
    public init(_ spec: TwoTowerSpec, seed: UInt64) {
        let problem = spec.validate()
        precondition(problem == nil, problem ?? "")
        var p = [Float](repeating: 0, count: spec.parameterCount)
        var rng = SeededRandom(seed: seed)
        var spare: Double? = nil
        /// Standard normal (Box–Muller, both values used).
        func normal() -> Double {
            if let s = spare { spare = nil; return s }
            let u1 = max(rng.nextDouble(), 1e-300), u2 = rng.nextDouble()
            let r = (-2 * Foundation.log(u1)).squareRoot()
            spare = r * Foundation.sin(2 * Double.pi * u2)
            return r * Foundation.cos(2 * Double.pi * u2)
        }
        for layout in [TowerLayout(spec.user, at: 0), TowerLayout(spec.video, at: spec.user.parameterCount)] {
            for k in layout.start..<layout.w1 { p[k] = Float(0.1 * normal()) }
            let s1 = (2.0 / Double(max(layout.inDim, 1))).squareRoot()
            for k in layout.w1..<layout.b1 { p[k] = Float(s1 * normal()) }
            let s2 = (2.0 / Double(layout.hidden + layout.output)).squareRoot()
            for k in layout.w2..<layout.b2 { p[k] = Float(s2 * normal()) }
        }
        self.init(unchecked: spec, parameters: p)
    }

    init(unchecked spec: TwoTowerSpec, parameters: [Float]) {
        description = spec
        self.parameters = parameters
        userLayout = TowerLayout(spec.user, at: 0)
        videoLayout = TowerLayout(spec.video, at: spec.user.parameterCount)
    }

    /// L2-normalized user embeddings, one row per input row (`user.output` columns). Parallel over fixed chunks of
    /// rows; a row's embedding depends only on the row (not on `threads` or the other rows). `threads` ≤ 0: all cores.
    public func embedUsers(_ rows: FeatureRows, threads: Int) -> Matrix { embed(rows, userLayout, threads: threads) }

    /// L2-normalized video embeddings, one row per input row (`video.output` columns), as `embedUsers`.
    public func embedVideos(_ rows: FeatureRows, threads: Int) -> Matrix { embed(rows, videoLayout, threads: threads) }

    func embed(_ rows: FeatureRows, _ layout: TowerLayout, threads: Int) -> Matrix {
        precondition(rows.fields == layout.spec.fields.count,
                     "TwoTowerModel: rows have \(rows.fields) fields, the tower has \(layout.spec.fields.count)")
        let n = rows.count, d = layout.output
        var out = Matrix(rows: n, cols: d)
        if n == 0 { return out }
        let chunk = 64
        let fields = layout.poolFields
        parameters.withUnsafeBufferPointer { pb in
            out.values.withUnsafeMutableBufferPointer { ob in
                let p = SendablePointer(base(pb)), o = TTMutable(ob.baseAddress!)
                parallelFor(n, threads: effectiveThreads(threads), chunk: chunk) { _, range in
                    // One thread gets the whole range: scratch for `chunk` rows, reused piece by piece.
                    let scratch = TowerScratch(layout, rows: min(chunk, range.count))
                    var r = range.lowerBound
                    while r < range.upperBound {
                        let end = min(range.upperBound, r + chunk)
                        TwoTowerKernels.forward(layout, fields, p.p, rows, r..<end, scratch, e: o.p + r * d)
                        r = end
                    }
                }
            }
        }
        return out
    }
}

/// A mutable raw pointer handed to worker closures: the memory outlives the parallel loop and workers write
/// disjoint parts of it.
struct TTMutable<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}

/// Activations (and their gradients) of up to `capacity` rows of one tower. Owned by one worker at a time.
final class TowerScratch: @unchecked Sendable {
    let capacity: Int
    /// Pooled inputs (rows × inDim), hidden activations after ReLU (rows × hidden), outputs before normalization
    /// (rows × output), the norms √(Σz² + 1e−12) (rows).
    let x, h, z, norms: UnsafeMutablePointer<Float>
    /// Backward: ∂L/∂z, ∂L/∂h (then ∂L/∂(W1x+b1)), ∂L/∂x.
    let gz, gh, gx: UnsafeMutablePointer<Float>
    private let all: UnsafeMutablePointer<Float>

    init(_ layout: TowerLayout, rows: Int) {
        let cap = max(rows, 1)
        capacity = cap
        let sizes = [layout.inDim, layout.hidden, layout.output, 1, layout.output, layout.hidden, layout.inDim].map { $0 * cap }
        let total = sizes.reduce(0, +)
        let all = UnsafeMutablePointer<Float>.allocate(capacity: max(total, 1))
        all.initialize(repeating: 0, count: max(total, 1))
        self.all = all
        var q = all
        var ptrs: [UnsafeMutablePointer<Float>] = []
        for s in sizes { ptrs.append(q); q += s }
        x = ptrs[0]; h = ptrs[1]; z = ptrs[2]; norms = ptrs[3]; gz = ptrs[4]; gh = ptrs[5]; gx = ptrs[6]
    }

    deinit { all.deallocate() }
}

/// The kernels of one tower and the small dense products they use, over raw pointers. Every output element is
/// accumulated in the same order whatever the blocking (4-row register blocks or the 1-row tail), so a row's
/// result never depends on which rows it was computed with: embeddings are the same in training, in `embed*`,
/// for any chunking and any thread count.
enum TwoTowerKernels {
    typealias V8 = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
    @inline(__always) static func store(_ v: V8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self) }

    // MARK: Tower forward and backward

    /// Forward of `range` of `rows` through one tower: x, h, z and the norms into `s` (row k of s = rows
    /// range.lowerBound + k), the embeddings e into `e` (stride output).
    static func forward(_ L: TowerLayout, _ fields: [PoolField], _ p: UnsafePointer<Float>, _ rows: FeatureRows,
                        _ range: Range<Int>, _ s: TowerScratch, e: UnsafeMutablePointer<Float>) {
        let m = range.count
        precondition(m <= s.capacity, "TowerScratch too small")
        pool(L, fields, p, rows, range, into: s.x)
        // h = ReLU(W1 x + b1)
        nt(UnsafePointer(s.x), L.inDim, p + L.w1, L.inDim, s.h, L.hidden, m: m, n: L.hidden, k: L.inDim, bias: p + L.b1)
        relu(s.h, m * L.hidden)
        // z = W2 h + b2
        nt(UnsafePointer(s.h), L.hidden, p + L.w2, L.hidden, s.z, L.output, m: m, n: L.output, k: L.hidden, bias: p + L.b2)
        normalize(UnsafePointer(s.z), m, L.output, e: e, norms: s.norms)
    }

    /// Backward of m rows through one tower, from ge = ∂L/∂e (stride output): the dense gradients are ADDED into
    /// `grad` (indexed from L.w1: W1, b1, W2, b2 as in the parameters) and ∂L/∂x is written to s.gx (the embedding
    /// tables' gradient follows from it and the rows' entries: `poolBackward`).
    static func backward(_ L: TowerLayout, _ p: UnsafePointer<Float>, m: Int, _ s: TowerScratch, e: UnsafePointer<Float>,
                         ge: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>) {
        let gW1 = grad, gb1 = grad + (L.b1 - L.w1), gW2 = grad + (L.w2 - L.w1), gb2 = grad + (L.b2 - L.w1)
        normalizeBackward(e, UnsafePointer(s.norms), ge, m, L.output, gz: s.gz)
        denseBackward(x: UnsafePointer(s.h), w: p + L.w2, gy: UnsafePointer(s.gz), m: m, n: L.output, k: L.hidden,
                      gW: gW2, gb: gb2, gx: s.gh)
        reluBackward(UnsafePointer(s.h), s.gh, m * L.hidden)
        denseBackward(x: UnsafePointer(s.x), w: p + L.w1, gy: UnsafePointer(s.gh), m: m, n: L.hidden, k: L.inDim,
                      gW: gW1, gb: gb1, gx: s.gx)
    }

    // MARK: Layers

    /// Weighted embedding bag, for each row r of `range` (row k of x):
    ///     x[k][off_f ..< off_f + dim_f] = Σ_(entries (f, t, w) of row r) w · E_f[t mod buckets_f]
    static func pool(_ L: TowerLayout, _ fields: [PoolField], _ p: UnsafePointer<Float>, _ rows: FeatureRows,
                     _ range: Range<Int>, into x: UnsafeMutablePointer<Float>) {
        let d = L.inDim
        x.update(repeating: 0, count: range.count * d)
        fields.withUnsafeBufferPointer { fb in
            rows.offsets.withUnsafeBufferPointer { off in
                rows.field.withUnsafeBufferPointer { fi in
                    rows.token.withUnsafeBufferPointer { tk in
                        rows.weight.withUnsafeBufferPointer { wt in
                            for r in range {
                                let xr = x + (r - range.lowerBound) * d
                                for k in off[r]..<off[r + 1] {
                                    let f = fb[Int(fi[k])]
                                    let row = p + f.table + Int(tk[k] % f.buckets) * f.dim
                                    axpy(wt[k], row, xr + f.xOffset, f.dim)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backward of the bag for each entry (f, t, w) of row r (row k of gx), given ∂L/∂x:
    ///     ∂L/∂E_f[t mod buckets_f] += w · gx[k][off_f ..< off_f + dim_f]
    /// `visit(row number among the tower's Σ buckets rows, parameter offset, w, gradient slice, dim)` is called
    /// per entry in row then entry order (the caller accumulates: dense tables in tests, touched rows in training).
    @inline(__always)
    static func poolBackward(_ fields: [PoolField], _ rows: FeatureRows, _ range: Range<Int>, _ gx: UnsafePointer<Float>,
                             inDim d: Int,
                             _ visit: (_ row: Int, _ offset: Int, _ w: Float, _ g: UnsafePointer<Float>, _ dim: Int) -> Void) {
        for r in range {
            let gr = gx + (r - range.lowerBound) * d
            for k in rows.offsets[r]..<rows.offsets[r + 1] {
                let f = fields[Int(rows.field[k])]
                let b = Int(rows.token[k] % f.buckets)
                visit(f.rowBase + b, f.table + b * f.dim, rows.weight[k], gr + f.xOffset, f.dim)
            }
        }
    }

    /// Backward of y = x Wᵀ + b (m rows, x: m × k, W: n × k, y: m × n) given gy = ∂L/∂y:
    ///     ∂L/∂W += gyᵀ x      ∂L/∂b += Σ_rows gy      ∂L/∂x = gy W
    static func denseBackward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, gy: UnsafePointer<Float>, m: Int, n: Int,
                              k: Int, gW: UnsafeMutablePointer<Float>, gb: UnsafeMutablePointer<Float>,
                              gx: UnsafeMutablePointer<Float>) {
        // gW[j][:] += Σ_r gy[r][j] x[r][:]
        mm(gy, ai: 1, ak: n, x, ldb: k, gW, ldc: k, m: n, n: k, kCount: m, accumulate: true)
        // gb[j] += Σ_r gy[r][j]
        for r in 0..<m { addTo(gb, gy + r * n, n) }
        // gx[r][:] = Σ_j gy[r][j] W[j][:]
        mm(gy, ai: n, ak: 1, w, ldb: k, gx, ldc: k, m: m, n: k, kCount: n, accumulate: false)
    }

    /// h = max(h, 0), in place.
    @inline(__always)
    static func relu(_ h: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n where !(h[i] > 0) { h[i] = 0 }
    }

    /// ∂L/∂a = ∂L/∂h · [h > 0] (h = ReLU(a): h > 0 exactly where a > 0), in place in g.
    @inline(__always)
    static func reluBackward(_ h: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n where !(h[i] > 0) { g[i] = 0 }
    }

    /// e[r] = z[r] / n_r with n_r = √(Σ z[r]² + 1e−12) (the tiny term keeps a zero z finite; ‖e‖ = 1 otherwise).
    static func normalize(_ z: UnsafePointer<Float>, _ m: Int, _ d: Int, e: UnsafeMutablePointer<Float>,
                          norms: UnsafeMutablePointer<Float>) {
        for r in 0..<m {
            let zr = z + r * d, er = e + r * d
            let n = (dot(zr, zr, d) + 1e-12).squareRoot()
            norms[r] = n
            let inv = 1 / n
            for j in 0..<d { er[j] = zr[j] * inv }
        }
    }

    /// Backward of e = z / n (n = √(Σz² + ε), so ∂n/∂z = z/n = e):
    ///     ∂L/∂z = (ge − e (e·ge)) / n
    static func normalizeBackward(_ e: UnsafePointer<Float>, _ norms: UnsafePointer<Float>, _ ge: UnsafePointer<Float>,
                                  _ m: Int, _ d: Int, gz: UnsafeMutablePointer<Float>) {
        for r in 0..<m {
            let er = e + r * d, gr = ge + r * d, out = gz + r * d
            let c = dot(er, gr, d), inv = 1 / norms[r]
            for j in 0..<d { out[j] = (gr[j] - er[j] * c) * inv }
        }
    }

    // MARK: Dense products

    /// C[i][j] = Σ_k A[i][k]·B[j][k] (+ bias[j]) for i < m, j < n (rows of A against rows of B: y = x Wᵀ + b).
    /// Four rows of A share each row of B; every element is one 8-lane accumulator over k, its lane sum, then the
    /// scalar tail of k, then the bias — the same in the 4-row block and the 1-row tail.
    static func nt(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>,
                   _ ldc: Int, m: Int, n: Int, k: Int, bias: UnsafePointer<Float>?) {
        let k8 = k & ~7
        var i = 0
        while i + 4 <= m {
            let a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda
            for j in 0..<n {
                let bj = b + j * ldb
                var s0 = V8(), s1 = V8(), s2 = V8(), s3 = V8()
                var kk = 0
                while kk < k8 {
                    let bv = load(bj + kk)
                    s0 = load(a0 + kk) * bv + s0
                    s1 = load(a1 + kk) * bv + s1
                    s2 = load(a2 + kk) * bv + s2
                    s3 = load(a3 + kk) * bv + s3
                    kk += 8
                }
                var t0 = s0.sum(), t1 = s1.sum(), t2 = s2.sum(), t3 = s3.sum()
                while kk < k {
                    let bk = bj[kk]
                    t0 = a0[kk] * bk + t0; t1 = a1[kk] * bk + t1; t2 = a2[kk] * bk + t2; t3 = a3[kk] * bk + t3
                    kk += 1
                }
                if let bias {
                    let bb = bias[j]
                    t0 = t0 + bb; t1 = t1 + bb; t2 = t2 + bb; t3 = t3 + bb
                }
                c[i * ldc + j] = t0; c[(i + 1) * ldc + j] = t1; c[(i + 2) * ldc + j] = t2; c[(i + 3) * ldc + j] = t3
            }
            i += 4
        }
        while i < m {
            let a0 = a + i * lda
            for j in 0..<n {
                let bj = b + j * ldb
                var s0 = V8()
                var kk = 0
                while kk < k8 { s0 = load(a0 + kk) * load(bj + kk) + s0; kk += 8 }
                var t0 = s0.sum()
                while kk < k { t0 = a0[kk] * bj[kk] + t0; kk += 1 }
                if let bias { t0 = t0 + bias[j] }
                c[i * ldc + j] = t0
            }
            i += 1
        }
    }

    /// C[i][c] (+)= Σ_(k < kCount) A(i, k) · B[k][c] for i < m, c < n, with A(i, k) = a[i·ai + k·ak] (ai = lda,
    /// ak = 1: C = A B; ai = 1, ak = lda: C = Aᵀ B). Register blocks of 4 rows × 8 columns held across the whole
    /// sweep over k; every element accumulates in k order from its start (0, or C when `accumulate`), in the
    /// blocks, the column tail and the row tail alike.
    static func mm(_ a: UnsafePointer<Float>, ai: Int, ak: Int, _ b: UnsafePointer<Float>, ldb: Int,
                   _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, kCount: Int, accumulate: Bool) {
        let n8 = n & ~7
        var i = 0
        while i + 4 <= m {
            let a0 = a + i * ai, a1 = a0 + ai, a2 = a1 + ai, a3 = a2 + ai
            let c0 = c + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc
            var col = 0
            while col < n8 {
                var s0 = V8(), s1 = V8(), s2 = V8(), s3 = V8()
                if accumulate { s0 = load(c0 + col); s1 = load(c1 + col); s2 = load(c2 + col); s3 = load(c3 + col) }
                var bp = b + col
                var ko = 0
                for _ in 0..<kCount {
                    let bv = load(bp)
                    s0 = V8(repeating: a0[ko]) * bv + s0
                    s1 = V8(repeating: a1[ko]) * bv + s1
                    s2 = V8(repeating: a2[ko]) * bv + s2
                    s3 = V8(repeating: a3[ko]) * bv + s3
                    bp += ldb; ko += ak
                }
                store(s0, c0 + col); store(s1, c1 + col); store(s2, c2 + col); store(s3, c3 + col)
                col += 8
            }
            while col < n {
                var t0: Float = accumulate ? c0[col] : 0, t1: Float = accumulate ? c1[col] : 0
                var t2: Float = accumulate ? c2[col] : 0, t3: Float = accumulate ? c3[col] : 0
                var ko = 0
                for kk in 0..<kCount {
                    let bk = b[kk * ldb + col]
                    t0 = a0[ko] * bk + t0; t1 = a1[ko] * bk + t1; t2 = a2[ko] * bk + t2; t3 = a3[ko] * bk + t3
                    ko += ak
                }
                c0[col] = t0; c1[col] = t1; c2[col] = t2; c3[col] = t3
                col += 1
            }
            i += 4
        }
        while i < m {
            let a0 = a + i * ai, c0 = c + i * ldc
            var col = 0
            while col < n8 {
                var s0 = accumulate ? load(c0 + col) : V8()
                var bp = b + col
                var ko = 0
                for _ in 0..<kCount { s0 = V8(repeating: a0[ko]) * load(bp) + s0; bp += ldb; ko += ak }
                store(s0, c0 + col)
                col += 8
            }
            while col < n {
                var t0: Float = accumulate ? c0[col] : 0
                var ko = 0
                for kk in 0..<kCount { t0 = a0[ko] * b[kk * ldb + col] + t0; ko += ak }
                c0[col] = t0
                col += 1
            }
            i += 1
        }
    }

    // MARK: Vectors

    /// Σ a_i b_i: one 8-lane accumulator, its lane sum, then the scalar tail.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s = V8()
        var i = 0
        while i + 8 <= n { s = load(a + i) * load(b + i) + s; i += 8 }
        var t = s.sum()
        while i < n { t = a[i] * b[i] + t; i += 1 }
        return t
    }

    /// e^x for 8 lanes (Cephes expf: x = n ln2 + r, |r| ≤ ln2/2, e^r by a degree-7 polynomial, 2ⁿ through the
    /// exponent bits; ~1 ulp). Rounding to n by the 1.5·2²³ trick (no SSE4.1 needed); x < −87 (and −∞) gives 0.
    @inline(__always)
    static func exp(_ x: V8) -> V8 {
        let lo = V8(repeating: -87), hi = V8(repeating: 88)
        let xc = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        let magic = V8(repeating: 12_582_912)
        let t = xc * V8(repeating: 1.442_695_040_888_963_4) + magic
        let n = t - magic
        let r = (xc - n * V8(repeating: 0.693_359_375)) - n * V8(repeating: -2.121_944_4e-4)
        var p = V8(repeating: 1.987_569_15e-4)
        p = p * r + V8(repeating: 1.398_199_950_7e-3)
        p = p * r + V8(repeating: 8.333_451_907_3e-3)
        p = p * r + V8(repeating: 4.166_579_589_4e-2)
        p = p * r + V8(repeating: 1.666_666_545_9e-1)
        p = p * r + V8(repeating: 5.000_000_120_1e-1)
        p = p * (r * r) + r + V8(repeating: 1)
        let k = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        let scale = unsafeBitCast((k &+ 127) &<< 23, to: V8.self)
        return (p * scale).replacing(with: 0, where: x .< lo)
    }

    /// Consumes a value so the loads behind it are not optimized away (touching memory before it is used).
    @inline(never)
    static func keep(_ x: Float) { if x == .greatestFiniteMagnitude { sink = x } }
    nonisolated(unsafe) static var sink: Float = 0

    /// y += α x
    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = V8(repeating: alpha)
        var i = 0
        while i + 8 <= n { store(av * load(x + i) + load(y + i), y + i); i += 8 }
        while i < n { y[i] = alpha * x[i] + y[i]; i += 1 }
    }

    /// y += x
    @inline(__always)
    static func addTo(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store(load(y + i) + load(x + i), y + i); i += 8 }
        while i < n { y[i] += x[i]; i += 1 }
    }
}
