import Foundation
import HomefeedCore

/// Training (or validation) data for a ranker: one query group per user. Group g is rows offsets[g]..<offsets[g+1]
/// of a row-major n × d feature matrix (one row per (user, candidate)); each row has a label ≥ 0: 1 = the user engaged
/// with the candidate later, 0 = not, graded values (e.g. 2 for a like) weight the row's share of the target.
public struct RankingExamples: Sendable {
    public let features: [Float]
    public let dimension: Int
    public let offsets: [Int]
    public let labels: [Float]

    /// Stops the program with a message naming the first problem when the arrays do not fit together (or a value is
    /// not finite, or a label is negative); `validate` returns the same message without stopping.
    public init(features: [Float], dimension: Int, offsets: [Int], labels: [Float]) {
        let problem = RankingExamples.validate(features: features, dimension: dimension, offsets: offsets, labels: labels)
        precondition(problem == nil, problem ?? "")
        self.features = features; self.dimension = dimension; self.offsets = offsets; self.labels = labels
    }

    /// nil when the arrays describe valid examples, else what is wrong (O(n·d)).
    public static func validate(features: [Float], dimension: Int, offsets: [Int], labels: [Float]) -> String? {
        guard dimension >= 1 else { return "RankingExamples: dimension must be ≥ 1, got \(dimension)" }
        guard features.count == labels.count * dimension else {
            return "RankingExamples: \(features.count) feature values for \(labels.count) rows × \(dimension)"
        }
        guard let first = offsets.first, first == 0, offsets.last == labels.count else {
            return "RankingExamples: offsets must run from 0 to the row count \(labels.count), got \(offsets.first ?? -1)…\(offsets.last ?? -1)"
        }
        for g in 0..<(offsets.count - 1) where offsets[g] > offsets[g + 1] {
            return "RankingExamples: offsets decrease at group \(g) (\(offsets[g]) > \(offsets[g + 1]))"
        }
        if let r = labels.firstIndex(where: { !($0 >= 0 && $0.isFinite) }) {
            return "RankingExamples: row \(r) has label \(labels[r]) (labels must be finite and ≥ 0)"
        }
        if let i = features.firstIndex(where: { !$0.isFinite }) {
            return "RankingExamples: row \(i / dimension) feature \(i % dimension) is \(features[i])"
        }
        return nil
    }

    public var groupCount: Int { offsets.count - 1 }
    public var rowCount: Int { labels.count }
    public var maxGroupSize: Int {
        var m = 0
        for g in 0..<groupCount { m = max(m, offsets[g + 1] - offsets[g]) }
        return m
    }

    /// Group boundaries of work blocks of ≥ `rows` rows each (the last may be smaller): a function of the offsets
    /// only, so block-ordered sums are the same for any thread count.
    func blocks(rows: Int) -> [Int] {
        var bounds = [0]
        var acc = 0
        for g in 0..<groupCount {
            acc += offsets[g + 1] - offsets[g]
            if acc >= rows { bounds.append(g + 1); acc = 0 }
        }
        if bounds.last != groupCount { bounds.append(groupCount) }
        return bounds
    }
}

public struct RankerConfig: Codable, Sendable, Equatable {
    /// λ of the penalty λ‖w‖²/2 on the weights of the standardized terms.
    public var regularization = 1e-3
    /// L-BFGS iterations at most (each one gradient evaluation, more when the line search backtracks).
    public var maxIterations = 100
    /// Converged when an iteration lowers the loss by less than `tolerance` · max(1, loss) …
    public var tolerance = 1e-8
    /// … or when ‖∇L‖∞ ≤ `gradientTolerance`.
    public var gradientTolerance = 1e-6
    /// L-BFGS memory (correction pairs kept).
    public var history = 10
    /// Pairwise products of named features, added as terms (each product of the two standardized features,
    /// standardized again).
    public var products: [Pair] = []
    /// Worker threads (≤ 0: all cores); the fit is the same for any value.
    public var threads = 0

    public struct Pair: Sendable, Equatable, Codable {
        public var first: String
        public var second: String
        public init(_ first: String, _ second: String) { self.first = first; self.second = second }
    }

    public init() {}
}

/// How a fit went: the loss at the start (w = 0, every candidate equally likely) and after each iteration.
public struct RankerReport: Codable, Sendable, Equatable {
    /// losses[0] at w = 0, losses[i] after iteration i (non-increasing).
    public var losses: [Double] = []
    public var finalLoss = 0.0
    public var iterations = 0
    /// Objective evaluations (iterations plus line-search backtracks, plus the start).
    public var evaluations = 0
    /// ‖∇L‖∞ at the returned weights.
    public var gradientNorm = 0.0
    public var converged = false
    /// Groups with at least one positive (the loss is their mean) and groups without (skipped: no signal).
    public var groups = 0
    public var skippedGroups = 0
    public var rows = 0
    public var seconds = 0.0
    public init() {}
}

/// A linear scoring model over standardized features, fitted with a listwise softmax loss: orders one user's
/// merged candidates (MF, two-tower, popular, fresh) from the two-tower score, the MF score and cheap features.
///
/// Terms: the d input features, then optional products; term k is standardized as z_k = (x_k − mean_k) · scale_k
/// with the training rows' mean and 1/standard deviation (scale 0 for a constant term, so it never counts), and a
/// product term is z = (z_a · z_b − mean) · scale. score = Σ_k w_k z_k.
public struct LinearRanker: Codable, Sendable, Equatable {
    /// The input features in the order the pipeline writes them (for reports, and to check that order at load).
    public var names: [String]
    /// Product terms (indices into `names`), after the d linear terms.
    public var products: [Product]
    /// Per term (d linear, then the products).
    public var mean: [Float]
    public var scale: [Float]
    public var weights: [Float]

    public struct Product: Codable, Sendable, Equatable {
        public var first: Int
        public var second: Int
        public init(_ first: Int, _ second: Int) { self.first = first; self.second = second }
    }

    public init(names: [String], mean: [Float], scale: [Float], weights: [Float], products: [Product] = []) {
        let problem = LinearRanker.validate(names: names, products: products, mean: mean, scale: scale, weights: weights)
        precondition(problem == nil, problem ?? "")
        self.names = names; self.products = products; self.mean = mean; self.scale = scale; self.weights = weights
    }

    static func validate(names: [String], products: [Product], mean: [Float], scale: [Float], weights: [Float]) -> String? {
        let terms = names.count + products.count
        guard mean.count == terms, scale.count == terms, weights.count == terms else {
            return "LinearRanker: \(names.count) features + \(products.count) products need \(terms) means, scales and "
                + "weights, got \(mean.count), \(scale.count), \(weights.count)"
        }
        for p in products where !(0..<names.count).contains(p.first) || !(0..<names.count).contains(p.second) {
            return "LinearRanker: product (\(p.first), \(p.second)) outside the \(names.count) features"
        }
        return nil
    }

    private enum CodingKeys: String, CodingKey { case names, products, mean, scale, weights }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        names = try c.decode([String].self, forKey: .names)
        products = try c.decodeIfPresent([Product].self, forKey: .products) ?? []
        mean = try c.decode([Float].self, forKey: .mean)
        scale = try c.decode([Float].self, forKey: .scale)
        weights = try c.decode([Float].self, forKey: .weights)
        if let problem = LinearRanker.validate(names: names, products: products, mean: mean, scale: scale, weights: weights) {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem))
        }
    }

    /// The terms' names for reports: the features, then "a*b" per product.
    public var termNames: [String] { names + products.map { "\(names[$0.first])*\(names[$0.second])" } }

    /// nil when `pipelineNames` is the feature order this ranker was fitted on, else a message naming the first
    /// difference (check at load: a reordered feature vector would be scored silently wrong).
    public func mismatch(with pipelineNames: [String]) -> String? {
        if pipelineNames == names { return nil }
        if let i = zip(names, pipelineNames).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            return "ranker feature \(i) is \"\(names[i])\" but the pipeline writes \"\(pipelineNames[i])\" there"
        }
        return "the ranker has \(names.count) features, the pipeline writes \(pipelineNames.count)"
    }

    /// score = Σ_k w_k · (x_k − mean_k) · scale_k (+ the product terms) for one row of d features.
    @inlinable
    public func score(_ x: UnsafePointer<Float>) -> Float {
        let d = names.count
        if d == 0 { return 0 }
        return weights.withUnsafeBufferPointer { w in
            mean.withUnsafeBufferPointer { m in
                scale.withUnsafeBufferPointer { c in
                    // Four lanes at a time (four independent sums), then the tail.
                    typealias V4 = SIMD4<Float>
                    func load(_ p: UnsafePointer<Float>, _ k: Int) -> V4 { UnsafeRawPointer(p + k).loadUnaligned(as: V4.self) }
                    let wp = w.baseAddress!, mp = m.baseAddress!, cp = c.baseAddress!
                    var acc = V4()
                    var k = 0
                    while k + 4 <= d {
                        acc += load(wp, k) * ((load(x, k) - load(mp, k)) * load(cp, k))
                        k += 4
                    }
                    var s = acc.sum()
                    while k < d { s += w[k] * ((x[k] - m[k]) * c[k]); k += 1 }
                    if !products.isEmpty {
                        for (p, t) in products.enumerated() {
                            let a = t.first, b = t.second, k = d + p
                            let z = ((x[a] - m[a]) * c[a]) * ((x[b] - m[b]) * c[b])
                            s += w[k] * ((z - m[k]) * c[k])
                        }
                    }
                    return s
                }
            }
        }
    }

    /// The score of every row of `examples`.
    public func scores(_ examples: RankingExamples) -> [Float] {
        precondition(examples.dimension == names.count,
                     "LinearRanker: examples have \(examples.dimension) features, the ranker \(names.count)")
        let d = names.count
        return [Float](unsafeUninitializedCapacity: examples.rowCount) { out, count in
            examples.features.withUnsafeBufferPointer { x in
                for r in 0..<examples.rowCount { out[r] = score(x.baseAddress! + r * d) }
            }
            count = examples.rowCount
        }
    }

    /// Mean nDCG@k over the groups with at least one positive label, of this ranker's order within each group:
    /// gain = label, discount 1 / ln(1 + rank), ideal DCG from the labels sorted; equal scores keep the rows' order.
    /// Group-ordered sums: the same for any `threads` (≤ 0: all cores). 0 when no group has a positive.
    public func meanNDCG(_ examples: RankingExamples, k: Int, threads: Int = 0) -> Double {
        let each = groupNDCG(examples, k: k, threads: threads)
        return each.isEmpty ? 0 : each.reduce(0, +) / Double(each.count)
    }

    /// nDCG@k of every group with a positive label, in group order (for paired comparisons of two rankers).
    public func groupNDCG(_ examples: RankingExamples, k: Int, threads: Int = 0) -> [Double] {
        precondition(k >= 1, "groupNDCG: k must be ≥ 1")
        precondition(examples.dimension == names.count,
                     "LinearRanker: examples have \(examples.dimension) features, the ranker \(names.count)")
        let blocks = examples.blocks(rows: 8192)
        let partials = SlotBuffer(repeating: [Double](), count: blocks.count - 1)
        let discount = (1...k).map { 1 / Foundation.log(Double(1 + $0)) }
        let maxGroup = examples.maxGroupSize, d = names.count
        let model = self
        examples.features.withUnsafeBufferPointer { xb in
            examples.labels.withUnsafeBufferPointer { yb in
                examples.offsets.withUnsafeBufferPointer { ob in
                    let x = SendablePointer(base(xb)), y = SendablePointer(base(yb)), off = SendablePointer(base(ob))
                    parallelFor(blocks.count - 1, threads: effectiveThreads(threads), chunk: 1) { _, range in
                        var order = [Int32](repeating: 0, count: maxGroup)
                        var s = [Float](repeating: 0, count: maxGroup), gains = [Float](repeating: 0, count: maxGroup)
                        for b in range {
                            var each: [Double] = []
                            for g in blocks[b]..<blocks[b + 1] {
                                let r0 = off.p[g], n = off.p[g + 1] - r0
                                var positive = false
                                for j in 0..<n where y.p[r0 + j] > 0 { positive = true; break }
                                if !positive { continue }
                                for j in 0..<n { s[j] = model.score(x.p + (r0 + j) * d); order[j] = Int32(j) }
                                order.withUnsafeMutableBufferPointer { o in
                                    s.withUnsafeBufferPointer { sp in
                                        o[0..<n].sort { sp[Int($0)] != sp[Int($1)] ? sp[Int($0)] > sp[Int($1)] : $0 < $1 }
                                    }
                                }
                                var dcg = 0.0
                                for r in 0..<min(k, n) { dcg += Double(y.p[r0 + Int(order[r])]) * discount[r] }
                                for j in 0..<n { gains[j] = y.p[r0 + j] }
                                gains.withUnsafeMutableBufferPointer { $0[0..<n].sort(by: >) }
                                var ideal = 0.0
                                for r in 0..<min(k, n) { ideal += Double(gains[r]) * discount[r] }
                                each.append(dcg / ideal)
                            }
                            partials[b] = each
                        }
                    }
                }
            }
        }
        return (0..<partials.count).flatMap { partials[$0] }
    }

    /// Fits the standardization and the weights on `examples` (d = names.count features per row).
    ///
    /// Loss (listwise softmax cross-entropy, ListNet/"softmax loss"): see `RankerObjective`. Minimized from w = 0 by
    /// L-BFGS (two-loop recursion, `config.history` pairs) with a backtracking Armijo line search; the objective is
    /// convex (strictly with λ > 0), so the result does not depend on the start. The gradient is summed over fixed
    /// blocks of groups in block order: the fit is the same for any `config.threads`.
    public static func fit(_ examples: RankingExamples, names: [String], config: RankerConfig = RankerConfig())
        -> (LinearRanker, RankerReport) {
        let start = TimeFormat.monotonic()
        precondition(names.count == examples.dimension,
                     "LinearRanker.fit: \(names.count) names for \(examples.dimension) features")
        let products: [Product] = config.products.map { pair in
            guard let a = names.firstIndex(of: pair.first), let b = names.firstIndex(of: pair.second) else {
                preconditionFailure("LinearRanker.fit: product \(pair.first)*\(pair.second) names an unknown feature")
            }
            return Product(a, b)
        }
        let threads = effectiveThreads(config.threads)
        let (mean, scale) = standardization(examples, products: products, threads: threads)
        let objective = RankerObjective(examples, products: products, mean: mean, scale: scale,
                                        regularization: config.regularization, threads: threads)
        var report = RankerReport()
        report.rows = examples.rowCount
        report.groups = objective.usedGroups
        report.skippedGroups = examples.groupCount - objective.usedGroups
        let w = minimize(objective, config: config, report: &report)
        report.seconds = TimeFormat.monotonic() - start
        let model = LinearRanker(names: names, mean: mean, scale: scale, weights: w.map { Float($0) }, products: products)
        return (model, report)
    }

    /// L-BFGS from w = 0 (Nocedal & Wright, algorithm 7.4/7.5): direction −H∇L from the two-loop recursion over the
    /// last `history` pairs (s = Δw, y = Δ∇L, kept when sᵀy > 0), initial H = (sᵀy / yᵀy)·I (first step: ∇L
    /// normalized to length ≤ 1); step 1, halved until L(w + t·p) ≤ L(w) + 10⁻⁴·t·∇Lᵀp.
    static func minimize(_ objective: RankerObjective, config: RankerConfig, report: inout RankerReport) -> [Double] {
        let n = objective.terms
        func dot(_ a: [Double], _ b: [Double]) -> Double { var s = 0.0; for i in 0..<a.count { s += a[i] * b[i] }; return s }
        func maxNorm(_ a: [Double]) -> Double { a.reduce(0) { max($0, abs($1)) } }
        var w = [Double](repeating: 0, count: n)
        var (fx, g) = objective.evaluate(w)
        report.losses = [fx]
        report.evaluations = 1
        var sHistory: [[Double]] = [], yHistory: [[Double]] = [], rho: [Double] = []
        var converged = maxNorm(g) <= config.gradientTolerance
        var iterations = 0
        while !converged && iterations < config.maxIterations {
            // Two-loop recursion: p = −H g.
            var q = g
            var alpha = [Double](repeating: 0, count: sHistory.count)
            for i in stride(from: sHistory.count - 1, through: 0, by: -1) {
                alpha[i] = rho[i] * dot(sHistory[i], q)
                for j in 0..<n { q[j] -= alpha[i] * yHistory[i][j] }
            }
            let gamma = sHistory.isEmpty ? 1 / max(1, dot(g, g).squareRoot())
                : dot(sHistory.last!, yHistory.last!) / dot(yHistory.last!, yHistory.last!)
            for j in 0..<n { q[j] *= gamma }
            for i in 0..<sHistory.count {
                let beta = rho[i] * dot(yHistory[i], q)
                for j in 0..<n { q[j] += (alpha[i] - beta) * sHistory[i][j] }
            }
            var p = q.map { -$0 }
            var slope = dot(g, p)
            if !(slope < 0) {   // not a descent direction (rounding): restart from steepest descent
                sHistory.removeAll(); yHistory.removeAll(); rho.removeAll()
                let scaleDown = 1 / max(1, dot(g, g).squareRoot())
                p = g.map { -$0 * scaleDown }
                slope = dot(g, p)
            }
            var t = 1.0
            var accepted: (w: [Double], f: Double, g: [Double])?
            for _ in 0..<50 {
                var trial = w
                for j in 0..<n { trial[j] += t * p[j] }
                let (ft, gt) = objective.evaluate(trial)
                report.evaluations += 1
                if ft <= fx + 1e-4 * t * slope { accepted = (trial, ft, gt); break }
                t *= 0.5
            }
            // No step lowers the loss at Double precision: w is the minimum as far as it can be resolved.
            guard let next = accepted else { converged = true; break }
            var s = next.w, y = next.g
            for j in 0..<n { s[j] -= w[j]; y[j] -= g[j] }
            let sy = dot(s, y)
            if sy > 1e-12 * dot(y, y).squareRoot() * dot(s, s).squareRoot() {
                sHistory.append(s); yHistory.append(y); rho.append(1 / sy)
                if sHistory.count > max(1, config.history) {
                    sHistory.removeFirst(); yHistory.removeFirst(); rho.removeFirst()
                }
            }
            let decrease = fx - next.f
            (w, fx, g) = (next.w, next.f, next.g)
            iterations += 1
            report.losses.append(fx)
            converged = maxNorm(g) <= config.gradientTolerance || decrease <= config.tolerance * max(1, abs(fx))
        }
        report.iterations = iterations
        report.finalLoss = fx
        report.gradientNorm = maxNorm(g)
        report.converged = converged
        return w
    }

    /// Mean and 1/standard deviation (population) of every term over all rows; scale 0 when a term is constant
    /// (min = max, checked exactly). Per block: two passes (sum, then squared deviations from the block mean); blocks
    /// merged in order (Chan et al.): the same for any thread count. Products are measured after the linear terms,
    /// from the standardized features as `score` computes them.
    static func standardization(_ examples: RankingExamples, products: [Product], threads: Int) -> ([Float], [Float]) {
        let d = examples.dimension
        let (m, c) = moments(examples, terms: d, threads: threads) { x, out in
            for k in 0..<d { out[k] = Double(x[k]) }
        }
        guard !products.isEmpty else { return (m, c) }
        let pa = products.map { $0.first }, pb = products.map { $0.second }
        let (pm, pc) = moments(examples, terms: products.count, threads: threads) { x, out in
            for p in 0..<pa.count {
                let a = pa[p], b = pb[p]
                out[p] = Double(((x[a] - m[a]) * c[a]) * ((x[b] - m[b]) * c[b]))
            }
        }
        return (m + pm, c + pc)
    }

    static func moments(_ examples: RankingExamples, terms: Int, threads: Int,
                        _ values: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Double>) -> Void) -> ([Float], [Float]) {
        let d = examples.dimension
        let rowBounds = examples.blocks(rows: 8192).map { examples.offsets[$0] }
        let blocks = rowBounds.count - 1
        // Per block and term: count, mean, M2 = Σ (v − mean)², min, max.
        let stats = SlotBuffer(repeating: 0.0, count: max(1, blocks) * terms * 4)
        examples.features.withUnsafeBufferPointer { xb in
            let x = SendablePointer(base(xb))
            parallelFor(blocks, threads: threads, chunk: 1) { _, range in
                let v = UnsafeMutablePointer<Double>.allocate(capacity: terms)
                defer { v.deallocate() }
                for b in range {
                    let r0 = rowBounds[b], r1 = rowBounds[b + 1]
                    var sum = [Double](repeating: 0, count: terms)
                    var lo = [Double](repeating: .infinity, count: terms), hi = [Double](repeating: -.infinity, count: terms)
                    for r in r0..<r1 {
                        values(x.p + r * d, v)
                        for k in 0..<terms { sum[k] += v[k]; lo[k] = min(lo[k], v[k]); hi[k] = max(hi[k], v[k]) }
                    }
                    let n = Double(r1 - r0)
                    let mean = sum.map { $0 / n }
                    var m2 = [Double](repeating: 0, count: terms)
                    for r in r0..<r1 {
                        values(x.p + r * d, v)
                        for k in 0..<terms { let e = v[k] - mean[k]; m2[k] += e * e }
                    }
                    for k in 0..<terms {
                        let o = (b * terms + k) * 4
                        stats[o] = mean[k]; stats[o + 1] = m2[k]; stats[o + 2] = lo[k]; stats[o + 3] = hi[k]
                    }
                }
            }
        }
        var mean = [Float](repeating: 0, count: terms), scale = [Float](repeating: 0, count: terms)
        for k in 0..<terms {
            var n = 0.0, mu = 0.0, m2 = 0.0, lo = Double.infinity, hi = -Double.infinity
            for b in 0..<blocks {
                let o = (b * terms + k) * 4, nb = Double(rowBounds[b + 1] - rowBounds[b])
                let delta = stats[o] - mu, total = n + nb
                mu += delta * nb / total
                m2 += stats[o + 1] + delta * delta * n * nb / total
                n = total
                lo = min(lo, stats[o + 2]); hi = max(hi, stats[o + 3])
            }
            if n == 0 { continue }
            mean[k] = Float(mu)
            let sd = (m2 / n).squareRoot()
            scale[k] = lo < hi && sd > 0 ? Float(1 / sd) : 0
        }
        return (mean, scale)
    }
}

/// The fit's objective over standardized terms z (d features, then products), in Double.
///
/// For group g with rows j, scores s_j = Σ_k w_k z_jk, labels y_j ≥ 0, Y_g = Σ_j y_j and target t_j = y_j / Y_g
/// (binary labels: 1/|P_g| on each positive p ∈ P_g):
///
///     L_g = −Σ_j t_j log softmax_j(s) = log Σ_j e^{s_j} − Σ_j t_j s_j        ( = −(1/|P_g|) Σ_{p∈P_g} log(e^{s_p} / Σ_j e^{s_j}) )
///     L   = (1/G) Σ_{g: Y_g > 0} L_g + (λ/2) ‖w‖²                           (G = number of groups with Y_g > 0)
///
///     ∂L_g/∂s_j = softmax_j(s) − t_j,    ∇_w L = (1/G) Σ_g Σ_j (softmax_j(s) − t_j) z_j + λ w
///
/// Groups without a positive have t undefined and carry no signal: skipped. log Σ e^s is computed as
/// max s + log Σ e^{s − max s}. Groups are summed in fixed blocks (≥ 8192 rows each), the blocks in order.
struct RankerObjective: Sendable {
    let examples: RankingExamples
    let d: Int
    let terms: Int
    let productA: [Int], productB: [Int]
    let mean: [Double], scale: [Double]
    let regularization: Double
    let threads: Int
    let blocks: [Int]
    /// Y_g per group.
    let labelSum: [Double]
    let usedGroups: Int
    let maxGroup: Int

    init(_ examples: RankingExamples, products: [LinearRanker.Product], mean: [Float], scale: [Float],
         regularization: Double, threads: Int) {
        self.examples = examples
        d = examples.dimension
        terms = d + products.count
        precondition(mean.count == terms && scale.count == terms, "RankerObjective: \(terms) terms")
        productA = products.map { $0.first }; productB = products.map { $0.second }
        self.mean = mean.map { Double($0) }; self.scale = scale.map { Double($0) }
        self.regularization = regularization
        self.threads = threads
        blocks = examples.blocks(rows: 8192)
        labelSum = (0..<examples.groupCount).map { g in
            var s = 0.0
            for r in examples.offsets[g]..<examples.offsets[g + 1] { s += Double(examples.labels[r]) }
            return s
        }
        usedGroups = labelSum.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        maxGroup = examples.maxGroupSize
    }

    /// (L(w), ∇L(w)).
    func evaluate(_ w: [Double]) -> (Double, [Double]) {
        precondition(w.count == terms, "RankerObjective: \(w.count) weights for \(terms) terms")
        let terms = self.terms, d = self.d, stride = terms + 1, maxGroup = self.maxGroup, blocks = self.blocks
        let productA = self.productA, productB = self.productB
        let blockCount = blocks.count - 1
        // partials[b·(terms+1)]: block b's Σ L_g, then its Σ ∂L_g/∂w.
        let partials = UnsafeMutablePointer<Double>.allocate(capacity: max(1, blockCount * stride))
        partials.initialize(repeating: 0, count: max(1, blockCount * stride))
        defer { partials.deallocate() }
        let shared = SendablePointer(UnsafePointer(partials))
        // Per group g with Y_g > 0 (see the type's comment):
        //     z_j = standardized terms of row j,   s_j = Σ_k w_k z_jk,   M = max_j s_j,   Z = Σ_j e^{s_j − M}
        //     L_g = M + log Z − Σ_j (y_j / Y_g) s_j,      ∂L_g/∂w_k = Σ_j (e^{s_j − M} / Z − y_j / Y_g) z_jk
        examples.features.withUnsafeBufferPointer { xb in
            examples.labels.withUnsafeBufferPointer { yb in
                examples.offsets.withUnsafeBufferPointer { ob in
                    labelSum.withUnsafeBufferPointer { tb in
                        mean.withUnsafeBufferPointer { mb in
                            scale.withUnsafeBufferPointer { cb in
                                w.withUnsafeBufferPointer { wb in
                                    let x = SendablePointer(base(xb)), y = SendablePointer(base(yb))
                                    let off = SendablePointer(base(ob)), ysum = SendablePointer(base(tb))
                                    let m = SendablePointer(base(mb)), c = SendablePointer(base(cb)), wp = SendablePointer(base(wb))
                                    parallelFor(blockCount, threads: threads, chunk: 1) { _, range in
                                        // z: the group's standardized terms (n × terms), e: its scores, then e^{s − max}.
                                        let z = UnsafeMutablePointer<Double>.allocate(capacity: max(1, maxGroup * terms))
                                        let e = UnsafeMutablePointer<Double>.allocate(capacity: max(1, maxGroup))
                                        defer { z.deallocate(); e.deallocate() }
                                        for b in range {
                                            // Block b owns partials[b·stride, (b+1)·stride).
                                            let out = UnsafeMutablePointer(mutating: shared.p + b * stride)
                                            let grad = out + 1
                                            for g in blocks[b]..<blocks[b + 1] {
                                                let total = ysum.p[g]
                                                if !(total > 0) { continue }
                                                let r0 = off.p[g], n = off.p[g + 1] - r0
                                                var top = -Double.infinity, targetScore = 0.0
                                                for j in 0..<n {
                                                    let row = x.p + (r0 + j) * d, zj = z + j * terms
                                                    for k in 0..<d { zj[k] = (Double(row[k]) - m.p[k]) * c.p[k] }
                                                    for p in 0..<productA.count {
                                                        let k = d + p
                                                        zj[k] = (zj[productA[p]] * zj[productB[p]] - m.p[k]) * c.p[k]
                                                    }
                                                    var s = 0.0
                                                    for k in 0..<terms { s += wp.p[k] * zj[k] }
                                                    e[j] = s
                                                    top = max(top, s)
                                                    targetScore += Double(y.p[r0 + j]) * s
                                                }
                                                var partition = 0.0
                                                for j in 0..<n { let v = Foundation.exp(e[j] - top); e[j] = v; partition += v }
                                                out[0] += top + Foundation.log(partition) - targetScore / total
                                                let invPartition = 1 / partition, invTotal = 1 / total
                                                for j in 0..<n {
                                                    let coef = e[j] * invPartition - Double(y.p[r0 + j]) * invTotal
                                                    let zj = z + j * terms
                                                    for k in 0..<terms { grad[k] += coef * zj[k] }
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
        var loss = 0.0
        var gradient = [Double](repeating: 0, count: terms)
        for b in 0..<blockCount {
            loss += partials[b * stride]
            for k in 0..<terms { gradient[k] += partials[b * stride + 1 + k] }
        }
        if usedGroups > 0 {
            let inv = 1 / Double(usedGroups)
            loss *= inv
            for k in 0..<terms { gradient[k] *= inv }
        }
        for k in 0..<terms {
            loss += regularization / 2 * w[k] * w[k]
            gradient[k] += regularization * w[k]
        }
        return (loss, gradient)
    }
}
