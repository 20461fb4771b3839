import Foundation
import Testing
@testable import HomefeedCore
@testable import HomefeedModels

/// Test data and an independent Double reference of the two-tower model (plain loops from the documented formulas
/// and parameter order), for the gradient checks. Namespaced: the test target shares one module.
enum TT {
    typealias Entry = (field: Int, token: UInt32, weight: Float)

    /// Examples held in arrays.
    struct Examples: TwoTowerExamples {
        var users: [[Entry]]            // per example: the user side
        var positives: [Int]
        var videos: [[Entry]]           // per video
        var hard: [[Int32]] = []        // per example
        var weights: [Float] = []
        var userFields = 2, videoFields = 2

        var count: Int { positives.count }
        var videoCount: Int { videos.count }
        func userRow(_ example: Int, into rows: inout FeatureRows) {
            for e in users[example] { rows.add(e.field, e.token, e.weight) }
            rows.endRow()
        }
        func video(_ example: Int) -> Int { positives[example] }
        func videoRow(_ video: Int, into rows: inout FeatureRows) {
            for e in videos[video] { rows.add(e.field, e.token, e.weight) }
            rows.endRow()
        }
        func hardNegatives(_ example: Int, into out: inout [Int32]) {
            if example < hard.count { out.append(contentsOf: hard[example]) }
        }
        func weight(_ example: Int) -> Float { example < weights.count ? weights[example] : 1 }
    }

    static func rows(_ list: [[Entry]], fields: Int) -> FeatureRows {
        var r = FeatureRows(fields: fields)
        for row in list { for e in row { r.add(e.field, e.token, e.weight) }; r.endRow() }
        return r
    }

    static func random(_ n: Int, _ rng: inout SeededRandom, scale: Double = 1) -> [Float] {
        (0..<n).map { _ in Float((rng.nextDouble() * 2 - 1) * scale) }
    }

    /// ‖a − b‖ / max(‖a‖, ‖b‖, tiny).
    static func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        var d = 0.0, na = 0.0, nb = 0.0
        for i in a.indices { d += (a[i] - b[i]) * (a[i] - b[i]); na += a[i] * a[i]; nb += b[i] * b[i] }
        return d.squareRoot() / max(na.squareRoot(), nb.squareRoot(), 1e-12)
    }

    /// Central differences of f at x (Double).
    static func numericGradient(_ x: [Double], h: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
        var x = x
        return x.indices.map { k in
            let x0 = x[k]
            x[k] = x0 + h; let fp = f(x)
            x[k] = x0 - h; let fm = f(x)
            x[k] = x0
            return (fp - fm) / (2 * h)
        }
    }

    // MARK: Double reference

    /// One tower in Double from the flat parameters (documented order, tower starting at `start`): e = z/‖z‖.
    static func tower(_ t: TowerSpec, _ p: [Double], _ start: Int, _ entries: [Entry]) -> [Double] {
        var off = start, tables: [Int] = [], xOff: [Int] = [], inDim = 0
        for f in t.fields { tables.append(off); xOff.append(inDim); off += f.buckets * f.dim; inDim += f.dim }
        var x = [Double](repeating: 0, count: inDim)
        for e in entries {
            let f = t.fields[e.field], b = Int(e.token % UInt32(f.buckets))
            for j in 0..<f.dim { x[xOff[e.field] + j] += Double(e.weight) * p[tables[e.field] + b * f.dim + j] }
        }
        let w1 = off, b1 = w1 + t.hidden * inDim, w2 = b1 + t.hidden, b2 = w2 + t.output * t.hidden
        let h = (0..<t.hidden).map { j in max(0, (0..<inDim).reduce(p[b1 + j]) { $0 + p[w1 + j * inDim + $1] * x[$1] }) }
        let z = (0..<t.output).map { o in (0..<t.hidden).reduce(p[b2 + o]) { $0 + p[w2 + o * t.hidden + $1] * h[$1] } }
        let n = (z.reduce(0) { $0 + $1 * $1 } + 1e-12).squareRoot()
        return z.map { $0 / n }
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    static func logSumExp(_ v: [Double]) -> Double {
        let m = v.max()!
        return m + Foundation.log(v.reduce(0) { $0 + Foundation.exp($1 - m) })
    }

    /// The sampled-softmax loss from the definition, given embeddings: L = (1/B) Σ_i w_i CE_i, candidates = the
    /// rows' positives then `random` (as videos), masking accidental hits; `logQ(video)` per sampled candidate.
    static func loss(eu: [[Double]], ev: (Int) -> [Double], positives: [Int], random: [Int], hard: [[Int]],
                     weights: [Double], logQ: (Int) -> Double, tau: Double, kappa: Double, mask: Bool = true) -> Double {
        let b = positives.count
        let candidates = positives + random
        var total = 0.0
        for i in 0..<b {
            var logits: [Double] = []
            var own = 0.0
            for (j, v) in candidates.enumerated() {
                if mask && j != i && v == positives[i] { continue }
                let l = dot(eu[i], ev(v)) / tau - logQ(v)
                if j == i { own = l }
                logits.append(l)
            }
            for h in hard[i] where !mask || h != positives[i] { logits.append(dot(eu[i], ev(h)) / tau - kappa) }
            total += weights[i] * (logSumExp(logits) - own)
        }
        return total / Double(b)
    }

    /// The whole model's batch loss in Double: rows `rows` of `ex`, random videos `random`.
    static func modelLoss(_ spec: TwoTowerSpec, _ p: [Double], _ ex: Examples, rows: [Int], random: [Int],
                          logQ useLogQ: Bool = true, kappa: Double = 0) -> Double {
        let start = spec.user.parameterCount
        var counts = [Int](repeating: 0, count: ex.videoCount)
        for v in ex.positives { counts[v] += 1 }
        let b = Double(rows.count), r = Double(random.count), nv = Double(ex.videoCount), n = Double(ex.count)
        var cache: [Int: [Double]] = [:]
        let ev: (Int) -> [Double] = { v in
            if let e = cache[v] { return e }
            let e = tower(spec.video, p, start, ex.videos[v]); cache[v] = e; return e
        }
        return loss(eu: rows.map { tower(spec.user, p, 0, ex.users[$0]) }, ev: ev, positives: rows.map { ex.positives[$0] },
                    random: random, hard: rows.map { ex.hard.isEmpty ? [] : ex.hard[$0].map(Int.init) },
                    weights: rows.map { Double(ex.weight($0)) },
                    logQ: { useLogQ ? Foundation.log(b * Double(counts[$0]) / n + r / nv) : 0 },
                    tau: Double(spec.temperature), kappa: kappa)
    }

    // MARK: Planted data

    /// 4 user groups known only by a group token (field 0; field 1 a per-user token), 4 groups of 8 videos known by a
    /// tag token (field 0; field 1 the video's own token). Positives only within the group (or, with `shift`, in
    /// group g + shift: an anti-pattern for validation).
    static func planted(usersPerGroup: Int = 10, videosPerGroup: Int = 8, positivesPerUser: Int = 8, shift: Int = 0,
                        seed: UInt64 = 7) -> Examples {
        var rng = SeededRandom(seed: seed)
        let groups = 4
        var users: [[Entry]] = [], positives: [Int] = []
        let videos: [[Entry]] = (0..<(groups * videosPerGroup)).map { v in
            [(0, UInt32(1000 + v / videosPerGroup), 1), (1, UInt32(5000 + v), 1)]
        }
        for g in 0..<groups {
            for u in 0..<usersPerGroup {
                for _ in 0..<positivesPerUser {
                    users.append([(0, UInt32(100 + g), 1), (1, UInt32(7000 + g * usersPerGroup + u), 1)])
                    positives.append(((g + shift) % groups) * videosPerGroup + rng.nextInt(videosPerGroup))
                }
            }
        }
        return Examples(users: users, positives: positives, videos: videos)
    }

    static let plantedSpec = TwoTowerSpec(
        user: TowerSpec(fields: [FeatureField(name: "group", buckets: 64, dim: 8), FeatureField(name: "user", buckets: 97, dim: 8)],
                        hidden: 16, output: 8),
        video: TowerSpec(fields: [FeatureField(name: "tag", buckets: 64, dim: 8), FeatureField(name: "video", buckets: 89, dim: 8)],
                         hidden: 16, output: 8),
        temperature: 0.1)

    static func plantedConfig(threads: Int = 2, seed: UInt64 = 42) -> TwoTowerTrainConfig {
        var c = TwoTowerTrainConfig()
        c.epochs = 12; c.batchSize = 64; c.learningRate = 0.01; c.temperature = 0.1; c.randomNegatives = 16
        c.seed = seed; c.threads = threads
        return c
    }
}

@Suite struct TwoTowerTests {
    // MARK: Layers

    @Test func poolingGradientMatchesNumeric() {
        // Two fields (dims 3 and 9: the SIMD path and its tail), repeated tokens and bucket collisions, weights.
        let spec = TowerSpec(fields: [FeatureField(name: "a", buckets: 5, dim: 3), FeatureField(name: "b", buckets: 4, dim: 9)],
                             hidden: 2, output: 2)
        let layout = TowerLayout(spec, at: 0)
        var rng = SeededRandom(seed: 1)
        let p = TT.random(spec.parameterCount, &rng)
        let list: [[TT.Entry]] = [[(0, 7, 0.5), (1, 3, 1), (0, 2, -1.5), (1, 11, 2)], [], [(1, 0, 1), (1, 4, 0.25), (0, 12, 1)]]
        let rows = TT.rows(list, fields: 2)
        let g = TT.random(3 * layout.inDim, &rng)
        // Analytic: ∂(Σ g ⊙ x)/∂E through poolBackward.
        var analytic = [Double](repeating: 0, count: layout.w1)
        g.withUnsafeBufferPointer { gb in
            TwoTowerKernels.poolBackward(layout.poolFields, rows, 0..<3, gb.baseAddress!, inDim: layout.inDim) { _, offset, w, gx, dim in
                for j in 0..<dim { analytic[offset + j] += Double(w * gx[j]) }
            }
        }
        // Forward agrees with the reference pooling too.
        let x = [Float](unsafeUninitializedCapacity: 3 * layout.inDim) { buf, n in
            p.withUnsafeBufferPointer { pb in
                TwoTowerKernels.pool(layout, layout.poolFields, pb.baseAddress!, rows, 0..<3, into: buf.baseAddress!)
            }
            n = 3 * layout.inDim
        }
        func reference(_ e: [Double]) -> [Double] {
            var x: [Double] = []
            for row in list {
                var xr = [Double](repeating: 0, count: layout.inDim)
                for en in row {
                    let f = spec.fields[en.field], b = Int(en.token % UInt32(f.buckets))
                    for j in 0..<f.dim { xr[layout.xOffsets[en.field] + j] += Double(en.weight) * e[layout.tables[en.field] + b * f.dim + j] }
                }
                x += xr
            }
            return x
        }
        let e0 = p[0..<layout.w1].map(Double.init)
        #expect(TT.relativeError(x.map(Double.init), reference(e0)) < 1e-6)
        let numeric = TT.numericGradient(e0) { e in zip(reference(e), g).reduce(0) { $0 + $1.0 * Double($1.1) } }
        #expect(TT.relativeError(analytic, numeric) < 1e-5)
        // An untouched bucket (field a: tokens 7, 2, 12 all fall in bucket 2) gets no gradient.
        #expect(analytic[layout.tables[0] + 0 * 3] == 0)
    }

    /// f(x, W, b) = Σ G ⊙ act(x Wᵀ + b) for the dense layer (act = ReLU or identity), checked against central
    /// differences of a Double reference for W, b and x.
    func checkDense(m: Int, k: Int, n: Int, relu: Bool, seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        let x = TT.random(m * k, &rng), w = TT.random(n * k, &rng), b = TT.random(n, &rng, scale: 0.3), g = TT.random(m * n, &rng)
        var y = [Float](repeating: 0, count: m * n), gy = g
        var gW = [Float](repeating: 0, count: n * k), gb = [Float](repeating: 0, count: n), gx = [Float](repeating: 0, count: m * k)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                b.withUnsafeBufferPointer { bp in
                    y.withUnsafeMutableBufferPointer { yp in
                        TwoTowerKernels.nt(xp.baseAddress!, k, wp.baseAddress!, k, yp.baseAddress!, n, m: m, n: n, k: k, bias: bp.baseAddress!)
                        if relu { TwoTowerKernels.relu(yp.baseAddress!, m * n) }
                        gy.withUnsafeMutableBufferPointer { gp in
                            if relu { TwoTowerKernels.reluBackward(UnsafePointer(yp.baseAddress!), gp.baseAddress!, m * n) }
                            gW.withUnsafeMutableBufferPointer { gw in
                                gb.withUnsafeMutableBufferPointer { gbb in
                                    gx.withUnsafeMutableBufferPointer { gxx in
                                        TwoTowerKernels.denseBackward(x: xp.baseAddress!, w: wp.baseAddress!, gy: UnsafePointer(gp.baseAddress!),
                                                                      m: m, n: n, k: k, gW: gw.baseAddress!, gb: gbb.baseAddress!,
                                                                      gx: gxx.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Reference: all inputs in one vector [W | b | x].
        func f(_ v: [Double]) -> Double {
            var s = 0.0
            for r in 0..<m {
                for j in 0..<n {
                    var a = v[n * k + j]
                    for i in 0..<k { a += v[j * k + i] * v[n * k + n + r * k + i] }
                    s += Double(g[r * n + j]) * (relu ? max(a, 0) : a)
                }
            }
            return s
        }
        let v0 = (w + b + x).map(Double.init)
        let numeric = TT.numericGradient(v0, f)
        let analytic = (gW + gb + gx).map(Double.init)
        #expect(TT.relativeError(analytic, numeric) < 1e-5, "dense m \(m) k \(k) n \(n) relu \(relu)")
        // Forward value too.
        let fy = zip(y, g).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(fy - f(v0)) < 1e-5 * max(1, abs(f(v0))))
    }

    @Test func hiddenLayerGradientMatchesNumeric() {
        // 7 rows: one 4-row block and a 3-row tail; k = 19: two SIMD steps and a scalar tail; ReLU.
        checkDense(m: 7, k: 19, n: 6, relu: true, seed: 2)
    }

    @Test func outputLayerGradientMatchesNumeric() {
        // 5 rows, k = 16 (exact SIMD), n = 11 output columns (a block of 8 and a tail in ∂x = gy W), no activation.
        checkDense(m: 5, k: 16, n: 11, relu: false, seed: 3)
    }

    @Test func normalizationGradientMatchesNumeric() {
        let m = 3, d = 10
        var rng = SeededRandom(seed: 4)
        let z = TT.random(m * d, &rng), g = TT.random(m * d, &rng)
        var e = [Float](repeating: 0, count: m * d), norms = [Float](repeating: 0, count: m), gz = e
        z.withUnsafeBufferPointer { zp in
            e.withUnsafeMutableBufferPointer { ep in
                norms.withUnsafeMutableBufferPointer { np in
                    TwoTowerKernels.normalize(zp.baseAddress!, m, d, e: ep.baseAddress!, norms: np.baseAddress!)
                    g.withUnsafeBufferPointer { gp in
                        gz.withUnsafeMutableBufferPointer { gzp in
                            TwoTowerKernels.normalizeBackward(UnsafePointer(ep.baseAddress!), UnsafePointer(np.baseAddress!),
                                                              gp.baseAddress!, m, d, gz: gzp.baseAddress!)
                        }
                    }
                }
            }
        }
        for r in 0..<m {
            let n = (0..<d).reduce(0.0) { $0 + Double(e[r * d + $1]) * Double(e[r * d + $1]) }
            #expect(abs(n - 1) < 1e-5)
        }
        func f(_ v: [Double]) -> Double {
            var s = 0.0
            for r in 0..<m {
                let n = ((0..<d).reduce(0.0) { $0 + v[r * d + $1] * v[r * d + $1] } + 1e-12).squareRoot()
                for j in 0..<d { s += Double(g[r * d + j]) * v[r * d + j] / n }
            }
            return s
        }
        let numeric = TT.numericGradient(z.map(Double.init), f)
        #expect(TT.relativeError(gz.map(Double.init), numeric) < 1e-5)
    }

    @Test func sampledSoftmaxGradientMatchesNumeric() {
        // B = 5 rows, d = 4. Positives (as slots): rows 0 and 3 share video 0 (a masked in-batch hit); the random
        // candidates are videos 5, 1 (row 1's positive: an accidental hit for row 1) and 5 again; row 2 has two
        // hard negatives, one its own positive (masked), row 4 one.
        let d = 4, tau: Float = 0.3, kappa: Float = 0.7
        let positivesVideo = [0, 1, 2, 0, 4]
        let randomVideo = [5, 1, 5]
        let hardVideo: [[Int]] = [[], [], [2, 6], [], [3]]
        var batch = TwoTowerBatch()
        // Slots: video v ↦ slot v (videos 0…6; video 3 only as a hard negative).
        batch.examples = Array(0..<5); batch.weights = [1, 0.5, 2, 1, 1.5]
        batch.videos = (0..<7).map(Int32.init)
        batch.positive = positivesVideo.map(Int32.init)
        batch.columns = (positivesVideo + randomVideo).map(Int32.init)
        var rng = SeededRandom(seed: 5)
        batch.logQ = TT.random(batch.columns.count, &rng)
        // A column's log Q depends on its video only.
        var logQOf: [Int: Float] = [:]
        for (j, v) in (positivesVideo + randomVideo).enumerated() {
            if let q = logQOf[v] { batch.logQ[j] = q } else { logQOf[v] = batch.logQ[j] }
        }
        batch.hardOffsets = [0]; batch.hard = []
        for h in hardVideo { batch.hard += h.map(Int32.init); batch.hardOffsets.append(batch.hard.count) }
        let eu = TT.random(5 * d, &rng, scale: 0.8), ev = TT.random(7 * d, &rng, scale: 0.8)
        var geu = [Float](repeating: 0, count: 5 * d), gev = [Float](repeating: 0, count: 7 * d)
        let sum = eu.withUnsafeBufferPointer { eup in
            ev.withUnsafeBufferPointer { evp in
                geu.withUnsafeMutableBufferPointer { g1 in
                    gev.withUnsafeMutableBufferPointer { g2 in
                        TwoTowerLoss.run(eu: eup.baseAddress!, ev: evp.baseAddress!, d: d, batch: batch, temperature: tau,
                                         hardCorrection: kappa, geu: g1.baseAddress!, gev: g2.baseAddress!,
                                         scratch: TwoTowerLossScratch(), threads: 2)
                    }
                }
            }
        }
        func f(_ v: [Double]) -> Double {
            TT.loss(eu: (0..<5).map { Array(v[($0 * d)..<($0 * d + d)]) }, ev: { Array(v[(5 * d + $0 * d)..<(5 * d + $0 * d + d)]) },
                    positives: positivesVideo, random: randomVideo, hard: hardVideo, weights: batch.weights.map(Double.init),
                    logQ: { Double(logQOf[$0]!) }, tau: Double(tau), kappa: Double(kappa))
        }
        let v0 = (eu + ev).map(Double.init)
        // The value: Σ w_i CE_i = B · L.
        #expect(abs(sum / 5 - f(v0)) < 1e-5 * max(1, f(v0)))
        let numeric = TT.numericGradient(v0, f)
        #expect(TT.relativeError((geu + gev).map(Double.init), numeric) < 1e-4)
        // The batch has accidental hits: without masking the loss would differ (so the value check above sees it).
        let unmasked = TT.loss(eu: (0..<5).map { Array(v0[($0 * d)..<($0 * d + d)]) }, ev: { Array(v0[(5 * d + $0 * d)..<(5 * d + $0 * d + d)]) },
                               positives: positivesVideo, random: randomVideo, hard: hardVideo, weights: batch.weights.map(Double.init),
                               logQ: { Double(logQOf[$0]!) }, tau: Double(tau), kappa: Double(kappa), mask: false)
        #expect(abs(unmasked - f(v0)) > 1e-2)
    }

    // MARK: End to end

    /// A tiny model with field dims 3 and 9 (SIMD tails), hidden 6/5, output 3.
    static let tinySpec = TwoTowerSpec(
        user: TowerSpec(fields: [FeatureField(name: "a", buckets: 5, dim: 3), FeatureField(name: "b", buckets: 4, dim: 9)],
                        hidden: 6, output: 3),
        video: TowerSpec(fields: [FeatureField(name: "tag", buckets: 6, dim: 4), FeatureField(name: "id", buckets: 7, dim: 3)],
                         hidden: 5, output: 3),
        temperature: 0.25)

    static func tinyExamples(count: Int, seed: UInt64) -> TT.Examples {
        var rng = SeededRandom(seed: seed)
        let videos: [[TT.Entry]] = (0..<9).map { v in
            [(0, UInt32(rng.nextInt(1000)), 1), (0, UInt32(rng.nextInt(1000)), 0.5), (1, UInt32(v), 1)]
        }
        var users: [[TT.Entry]] = [], positives: [Int] = [], hard: [[Int32]] = [], weights: [Float] = []
        for _ in 0..<count {
            var u: [TT.Entry] = []
            for _ in 0..<(1 + rng.nextInt(4)) { u.append((rng.nextInt(2), UInt32(rng.nextInt(1000)), Float(0.25 + rng.nextDouble()))) }
            users.append(u)
            positives.append(rng.nextInt(6))      // videos 6…8 only ever as random or hard negatives
            hard.append((0..<rng.nextInt(3)).map { _ in Int32(rng.nextInt(9)) })
            weights.append(Float(0.5 + rng.nextDouble()))
        }
        return TT.Examples(users: users, positives: positives, videos: videos, hard: hard, weights: weights)
    }

    /// The engine's gradient (both towers, loss, sparse rows) against central differences of the Double reference
    /// on the given batch; `sample` = parameters checked (nil: all).
    func checkModel(rows: [Int], examples ex: TT.Examples, random: [Int], sample: [Int]?, kappa: Float, logQ: Bool, seed: UInt64) {
        let spec = Self.tinySpec
        let model = TwoTowerModel(spec, seed: seed)
        var config = TwoTowerTrainConfig()
        config.randomNegatives = random.count; config.logQCorrection = logQ
        let sampler = TwoTowerSampler(ex, config: config)
        var batch = TwoTowerBatch()
        sampler.build(&batch, rows: rows, random: random)
        let engine = TwoTowerEngine(spec, threads: 2, hardCorrection: kappa)
        let sum = model.parameters.withUnsafeBufferPointer { engine.forwardBackward(batch, ex, $0.baseAddress!, gradients: true) }
        let grad = engine.fullGradient()
        let p0 = model.parameters.map(Double.init)
        let f = { (p: [Double]) in TT.modelLoss(spec, p, ex, rows: rows, random: random, logQ: logQ, kappa: Double(kappa)) }
        #expect(abs(sum / Double(rows.count) - f(p0)) < 1e-5 * max(1, f(p0)))
        let indices = sample ?? Array(p0.indices)
        var p = p0
        let numeric = indices.map { k in
            let h = 1e-5
            p[k] = p0[k] + h; let fp = f(p)
            p[k] = p0[k] - h; let fm = f(p)
            p[k] = p0[k]
            return (fp - fm) / (2 * h)
        }
        let analytic = indices.map { Double(grad[$0]) }
        #expect(TT.relativeError(analytic, numeric) < 2e-4)
        // Every part of the model gets gradient (a missing layer would leave zeros).
        let layoutU = TowerLayout(spec.user, at: 0), layoutV = TowerLayout(spec.video, at: spec.user.parameterCount)
        for r in [layoutU.w1..<layoutU.b1, layoutU.w2..<layoutU.b2, layoutV.w1..<layoutV.b1, layoutV.w2..<layoutV.b2,
                  0..<layoutU.w1, layoutV.start..<layoutV.w1] {
            #expect(grad[r].contains { $0 != 0 })
        }
    }

    @Test func modelGradientMatchesNumericEndToEnd() {
        let ex = Self.tinyExamples(count: 12, seed: 11)
        // Rows with a repeated positive, hard negatives, and random videos incl. positives of other rows.
        checkModel(rows: [0, 3, 5, 7, 8, 10], examples: ex, random: [6, ex.positives[3], 8, 6], sample: nil, kappa: 0.3,
                   logQ: true, seed: 12)
    }

    @Test func modelGradientAcrossChunksMatchesNumeric() {
        // 45 rows: two user chunks and several video chunks reduced in order; a sample of the parameters.
        let ex = Self.tinyExamples(count: 60, seed: 13)
        var rng = SeededRandom(seed: 14)
        let sample = (0..<40).map { _ in rng.nextInt(Self.tinySpec.parameterCount) }
        checkModel(rows: Array(5..<50), examples: ex, random: [7, 2, 8], sample: sample, kappa: 0, logQ: false, seed: 15)
    }

    @Test func embeddingsMatchReferenceAndIgnoreChunking() throws {
        let spec = Self.tinySpec
        let model = TwoTowerModel(spec, seed: 21)
        let ex = Self.tinyExamples(count: 150, seed: 22)
        let rows = TT.rows(ex.users, fields: 2)
        let e1 = model.embedUsers(rows, threads: 1), e2 = model.embedUsers(rows, threads: 2)
        #expect(e1 == e2)
        #expect(e1.rows == 150 && e1.cols == 3)
        // A row alone gives bit-identical values (no dependence on its neighbours).
        let single = model.embedUsers(TT.rows([ex.users[77]], fields: 2), threads: 1)
        #expect(Array(single.row(0)) == Array(e1.row(77)))
        let p = model.parameters.map(Double.init)
        for r in [0, 77, 149] {
            let ref = TT.tower(spec.user, p, 0, ex.users[r])
            for j in 0..<3 { #expect(abs(ref[j] - Double(e1[r, j])) < 1e-5) }
        }
        let v = model.embedVideos(TT.rows(ex.videos, fields: 2), threads: 2)
        let ref = TT.tower(spec.video, p, spec.user.parameterCount, ex.videos[4])
        for j in 0..<3 { #expect(abs(ref[j] - Double(v[4, j])) < 1e-5) }
    }

    // MARK: Training

    @Test func trainingRecoversPlantedGroups() {
        let ex = TT.planted()
        let (model, report) = TwoTowerTrainer.train(TT.plantedSpec, examples: ex, config: TT.plantedConfig())
        #expect(report.epochs.count == 12 && report.bestEpoch == 11 && !report.stoppedEarly)
        let first = report.epochs.first!.trainLoss, last = report.epochs.last!.trainLoss
        #expect(last < 0.7 * first, "train loss \(first) → \(last)")
        #expect(model.temperature == 0.1)
        // Each user's top 5 videos by the model: of their own group (chance: 8 of 32).
        var userRows: [[TT.Entry]] = []
        for g in 0..<4 { for u in 0..<10 { userRows.append([(0, UInt32(100 + g), 1), (1, UInt32(7000 + g * 10 + u), 1)]) } }
        let eu = model.embedUsers(TT.rows(userRows, fields: 2), threads: 2)
        let ev = model.embedVideos(TT.rows(ex.videos, fields: 2), threads: 2)
        var inGroup = 0
        for u in 0..<40 {
            let scores = (0..<32).map { v in (0..<8).reduce(Float(0)) { $0 + eu[u, $1] * ev[v, $1] } }
            let top = scores.indices.sorted { scores[$0] > scores[$1] }.prefix(5)
            inGroup += top.filter { $0 / 8 == u / 10 }.count
        }
        #expect(Double(inGroup) / 200 >= 0.95, "\(inGroup) of 200 top-5 slots in the user's group")
    }

    @Test func trainingIsDeterministicAcrossThreads() {
        let ex = TT.planted(usersPerGroup: 6, positivesPerUser: 6)
        var config = TT.plantedConfig(threads: 1)
        config.epochs = 2; config.batchSize = 100   // 4 user chunks per batch
        let one = TwoTowerTrainer.train(TT.plantedSpec, examples: ex, config: config).model
        config.threads = 2
        let two = TwoTowerTrainer.train(TT.plantedSpec, examples: ex, config: config).model
        #expect(one.parameters == two.parameters)
        config.seed = 43
        let other = TwoTowerTrainer.train(TT.plantedSpec, examples: ex, config: config).model
        #expect(one.parameters != other.parameters)
        #expect(TwoTowerModel(TT.plantedSpec, seed: 1).parameters != TwoTowerModel(TT.plantedSpec, seed: 2).parameters)
    }

    @Test func earlyStoppingKeepsTheBestEpoch() {
        // Validation positives are in the next group: what the model learns from training makes it worse.
        let train = TT.planted()
        let validation = TT.planted(usersPerGroup: 3, shift: 1, seed: 8)
        var config = TT.plantedConfig()
        config.epochs = 20; config.patience = 2
        let (model, report) = TwoTowerTrainer.train(TT.plantedSpec, examples: train, validation: validation, config: config)
        let losses = report.epochs.map { $0.validationLoss! }
        #expect(report.stoppedEarly)
        #expect(report.epochs.count == report.bestEpoch + 1 + config.patience)
        #expect(losses[report.bestEpoch] == losses.min()!)
        #expect(losses.last! > losses[report.bestEpoch])
        // The returned weights are the best epoch's: their validation loss is exactly the recorded one.
        #expect(TwoTowerTrainer.validationLoss(model, validation, config: config) == losses[report.bestEpoch])
        // Without early stopping all epochs run and the last weights come back.
        config.patience = 0; config.epochs = 4
        let all = TwoTowerTrainer.train(TT.plantedSpec, examples: train, validation: validation, config: config).report
        #expect(all.epochs.count == 4 && !all.stoppedEarly)
        let noValidation = TwoTowerTrainer.train(TT.plantedSpec, examples: train, validation: nil, config: config).report
        #expect(noValidation.bestEpoch == 3 && noValidation.epochs.allSatisfy { $0.validationLoss == nil })
    }

    // MARK: Persistence

    @Test func serializationRoundTrip() throws {
        let ex = TT.planted(usersPerGroup: 4, positivesPerUser: 4)
        var config = TT.plantedConfig(); config.epochs = 1
        let model = TwoTowerTrainer.train(TT.plantedSpec, examples: ex, config: config).model
        let json = try JSONEncoder().encode(model.description)
        let spec = try JSONDecoder().decode(TwoTowerSpec.self, from: json)
        #expect(spec == model.description)
        let back = try TwoTowerModel(spec, parameters: model.parameters)
        let users = TT.rows(ex.users, fields: 2), videos = TT.rows(ex.videos, fields: 2)
        #expect(back.embedUsers(users, threads: 2) == model.embedUsers(users, threads: 2))
        #expect(back.embedVideos(videos, threads: 1) == model.embedVideos(videos, threads: 2))
        #expect(back.temperature == model.temperature)
        // A wrong size throws and names both counts.
        let need = spec.parameterCount
        do {
            _ = try TwoTowerModel(spec, parameters: Array(model.parameters.dropLast()))
            Issue.record("no error for a short parameter array")
        } catch {
            let message = "\(error)"
            #expect(message.contains("\(need - 1)") && message.contains("\(need)"), "\(message)")
        }
        var bad = spec
        bad.video.output = 4
        #expect(throws: HomefeedError.self) { try TwoTowerModel(bad, parameters: model.parameters) }
    }

    @Test func vectorExpIsAccurate() {
        // The softmax's e^x: ≤ 4 ulp-ish relative error over the range, exactly 0 for −∞ (masked logits).
        var worst = 0.0
        var x: Float = -86.9
        while x < 88 {
            let lanes = TwoTowerKernels.exp(SIMD8<Float>((0..<8).map { x + Float($0) * 0.013 }))
            for l in 0..<8 {
                let ref = Foundation.exp(Double(x + Float(l) * 0.013))
                worst = max(worst, abs(Double(lanes[l]) - ref) / ref)
            }
            x += 0.377
        }
        #expect(worst < 5e-7, "worst relative error \(worst)")
        let edge = TwoTowerKernels.exp(SIMD8<Float>(-.infinity, -100, -87.5, 0, 1, -1, 10, -10))
        #expect(edge[0] == 0 && edge[1] == 0 && edge[2] == 0 && edge[3] == 1)
        #expect(abs(edge[4] - Float(M_E)) < 1e-6 && abs(edge[6] - 22026.465) < 0.01)
    }

    @Test func featureRowsBuildRows() {
        var rows = FeatureRows(fields: 3)
        rows.add(0, 5); rows.add(2, 7, 0.5); rows.endRow()
        rows.endRow()
        rows.add(1, 9, 2); rows.endRow()
        #expect(rows.count == 3 && rows.entryCount == 3)
        #expect(rows.entries(ofRow: 0).map(\.token) == [5, 7] && rows.entries(ofRow: 1).isEmpty)
        #expect(rows.entries(ofRow: 2).first!.weight == 2)
        rows.removeAll()
        #expect(rows.count == 0 && rows.entryCount == 0)
    }
}
