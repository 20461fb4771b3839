import Foundation
import Testing
@testable import HomefeedCore
@testable import HomefeedModels

/// A standard normal draw (Box–Muller).
func gaussian(_ rng: inout SeededRandom) -> Double {
    let u = max(rng.nextDouble(), 1e-300), v = rng.nextDouble()
    return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
}

/// A planted ranking problem: `groups` groups of `size` candidates; feature k is mean[k] + sd[k]·N(0, 1); the true
/// score is Σ_k w[k]·(x_k − mean[k]) / sd[k] (+ `interaction` · z_0·z_1), and each group's one positive is drawn from
/// the softmax of the true scores, exactly the model the ranker fits.
func plantedExamples(groups: Int, size: Int, weights: [Double], mean: [Double], sd: [Double], interaction: Double = 0,
                     seed: UInt64) -> RankingExamples {
    let d = weights.count
    var rng = SeededRandom(seed: seed)
    var features: [Float] = [], labels: [Float] = [], offsets = [0]
    var p = [Double](repeating: 0, count: size)
    for _ in 0..<groups {
        for j in 0..<size {
            var s = 0.0, z = [Double](repeating: 0, count: d)
            for k in 0..<d {
                z[k] = gaussian(&rng)
                features.append(Float(mean[k] + sd[k] * z[k]))
                s += weights[k] * z[k]
            }
            p[j] = s + interaction * z[0] * z[1]
        }
        let top = p.max()!
        var total = 0.0
        for j in 0..<size { p[j] = Foundation.exp(p[j] - top); total += p[j] }
        var u = rng.nextDouble() * total, pick = size - 1
        for j in 0..<size { u -= p[j]; if u < 0 { pick = j; break } }
        for j in 0..<size { labels.append(j == pick ? 1 : 0) }
        offsets.append(offsets.last! + size)
    }
    return RankingExamples(features: features, dimension: d, offsets: offsets, labels: labels)
}

/// The same examples with feature `k` mapped through `f`, or with extra columns appended.
func mapFeature(_ e: RankingExamples, _ k: Int, _ f: (Float) -> Float) -> RankingExamples {
    var x = e.features
    for r in 0..<e.rowCount { x[r * e.dimension + k] = f(x[r * e.dimension + k]) }
    return RankingExamples(features: x, dimension: e.dimension, offsets: e.offsets, labels: e.labels)
}

func appendColumns(_ e: RankingExamples, _ columns: [(Int, Int) -> Float]) -> RankingExamples {
    var x: [Float] = []
    for g in 0..<e.groupCount {
        for r in e.offsets[g]..<e.offsets[g + 1] {
            x.append(contentsOf: e.features[(r * e.dimension)..<((r + 1) * e.dimension)])
            for c in columns { x.append(c(g, r)) }
        }
    }
    return RankingExamples(features: x, dimension: e.dimension + columns.count, offsets: e.offsets, labels: e.labels)
}

/// Per group, the rows in the ranker's order (best first, ties by row).
func groupOrders(_ ranker: LinearRanker, _ e: RankingExamples) -> [[Int]] {
    let s = ranker.scores(e)
    return (0..<e.groupCount).map { g in
        Array(e.offsets[g]..<e.offsets[g + 1]).sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }
    }
}

/// A ranker scoring by one raw feature (sign ±1).
func singleFeature(_ k: Int, sign: Float, names: [String]) -> LinearRanker {
    var w = [Float](repeating: 0, count: names.count)
    w[k] = sign
    return LinearRanker(names: names, mean: [Float](repeating: 0, count: names.count),
                        scale: [Float](repeating: 1, count: names.count), weights: w)
}

@Suite struct LinearRankerTests {
    static let truth = [1.5, -1.0, 0.6, 0.25, 0]
    static let means = [0.0, 100, -5, 10_000, 3]
    static let sds = [1.0, 20, 0.1, 5000, 2]
    static let names = ["two_tower", "mf", "region_rank", "popularity", "freshness"]

    /// A small irregular problem: groups of sizes 5, 1, 7, 0, 4, 9 (one without a positive, graded labels), a constant
    /// feature and a product term.
    func smallProblem() -> (RankingExamples, RankerObjective) {
        var rng = SeededRandom(seed: 11)
        let sizes = [5, 1, 7, 0, 4, 9], d = 4
        var x: [Float] = [], y: [Float] = [], offsets = [0]
        for (g, n) in sizes.enumerated() {
            for j in 0..<n {
                x.append(Float(gaussian(&rng)))
                x.append(Float(50 + 10 * gaussian(&rng)))
                x.append(2.5)                                    // constant
                x.append(Float(rng.nextInt(3)))
                y.append(g == 2 ? 0 : Float(j % 3 == 0 ? rng.nextInt(3) : 0))
            }
            offsets.append(offsets.last! + n)
        }
        y[offsets[0]] = 1; y[offsets[1]] = 1; y[offsets[4]] = 2; y[offsets[5] + 3] = 1   // positives, graded too
        let e = RankingExamples(features: x, dimension: d, offsets: offsets, labels: y)
        let products = [LinearRanker.Product(0, 3), LinearRanker.Product(1, 1)]
        let (m, c) = LinearRanker.standardization(e, products: products, threads: 1)
        return (e, RankerObjective(e, products: products, mean: m, scale: c, regularization: 0.3, threads: 1))
    }

    /// The objective's loss against the definition (−(1/|P|) Σ_p log softmax_p with graded weights, mean over the
    /// groups with a positive, + λ‖w‖²/2), and its gradient against central differences, in Double.
    @Test func lossAndGradientMatchTheDefinition() {
        let (e, objective) = smallProblem()
        var rng = SeededRandom(seed: 5)
        let w = (0..<objective.terms).map { _ in gaussian(&rng) }
        let (loss, gradient) = objective.evaluate(w)

        // Standardization from the definition: population mean and sd; the constant feature gets scale 0.
        #expect(objective.scale[2] == 0)
        for k in [0, 1, 3] {
            let v = (0..<e.rowCount).map { Double(e.features[$0 * 4 + k]) }
            let mu = v.reduce(0, +) / Double(v.count)
            let sd = (v.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(v.count)).squareRoot()
            #expect(abs(objective.mean[k] - mu) <= 1e-6 * max(1, abs(mu)))
            #expect(abs(objective.scale[k] * sd - 1) <= 1e-6)
        }
        // The loss from the definition.
        var want = 0.0, groups = 0
        for g in 0..<e.groupCount {
            let rows = Array(e.offsets[g]..<e.offsets[g + 1])
            let total = rows.reduce(0.0) { $0 + Double(e.labels[$1]) }
            if total == 0 { continue }
            let s = rows.map { r -> Double in
                var z = (0..<4).map { k in (Double(e.features[r * 4 + k]) - objective.mean[k]) * objective.scale[k] }
                z.append((z[0] * z[3] - objective.mean[4]) * objective.scale[4])
                z.append((z[1] * z[1] - objective.mean[5]) * objective.scale[5])
                return zip(w, z).reduce(0) { $0 + $1.0 * $1.1 }
            }
            let partition = s.reduce(0) { $0 + Foundation.exp($1) }
            for (j, r) in rows.enumerated() where e.labels[r] > 0 {
                want -= Double(e.labels[r]) / total * Foundation.log(Foundation.exp(s[j]) / partition)
            }
            groups += 1
        }
        #expect(groups == 4 && objective.usedGroups == 4)
        want = want / Double(groups) + 0.3 / 2 * w.reduce(0) { $0 + $1 * $1 }
        #expect(abs(loss - want) <= 1e-12 * max(1, want), "\(loss) vs \(want)")

        // Central differences.
        let h = 1e-5
        for k in 0..<objective.terms {
            var plus = w, minus = w
            plus[k] += h; minus[k] -= h
            let numeric = (objective.evaluate(plus).0 - objective.evaluate(minus).0) / (2 * h)
            #expect(abs(numeric - gradient[k]) <= 1e-7 * max(1, abs(numeric)), "term \(k): \(gradient[k]) vs \(numeric)")
        }
        // The constant feature's gradient is exactly its penalty.
        #expect(gradient[2] == 0.3 * w[2])
    }

    /// Labels drawn from a known weight vector through the softmax: the fit recovers the weights (in standardized
    /// units: signs, ordering by magnitude, values within a few standard errors) whatever the features' units, and on
    /// fresh groups it beats the best single feature's nDCG@10 (either sign).
    @Test func recoversPlantedWeights() {
        let train = plantedExamples(groups: 3000, size: 40, weights: Self.truth, mean: Self.means, sd: Self.sds, seed: 1)
        let (ranker, report) = LinearRanker.fit(train, names: Self.names)
        let w = ranker.weights.map { Double($0) }
        for k in 0..<4 {
            #expect((w[k] > 0) == (Self.truth[k] > 0), "weight \(k): \(w)")
            #expect(abs(w[k] - Self.truth[k]) < 0.15, "weight \(k): \(w)")
        }
        #expect(abs(w[4]) < 0.1, "\(w)")
        let magnitudes = w.map { abs($0) }
        #expect(magnitudes == magnitudes.sorted(by: >), "\(w)")
        #expect(report.converged && report.iterations > 1 && report.groups == 3000 && report.skippedGroups == 0)
        #expect(abs(report.losses.first! - Foundation.log(40.0)) < 1e-12)   // w = 0: every candidate equally likely
        for (a, b) in zip(report.losses, report.losses.dropFirst()) { #expect(b <= a) }
        #expect(report.finalLoss == report.losses.last! && report.finalLoss < report.losses.first! - 0.3)
        #expect(ranker.termNames == Self.names)

        let valid = plantedExamples(groups: 1000, size: 40, weights: Self.truth, mean: Self.means, sd: Self.sds, seed: 2)
        let fitted = ranker.meanNDCG(valid, k: 10)
        var bestSingle = 0.0
        for k in 0..<5 {
            for sign: Float in [1, -1] {
                bestSingle = max(bestSingle, singleFeature(k, sign: sign, names: Self.names).meanNDCG(valid, k: 10))
            }
        }
        let random = singleFeature(0, sign: 0, names: Self.names).meanNDCG(valid, k: 10)   // all ties: row order
        #expect(fitted > bestSingle + 0.02, "fitted \(fitted), best single feature \(bestSingle), random \(random)")
        #expect(bestSingle > random)
        // The planted weights themselves are the best possible ranker; the fit is close to it.
        let oracle = LinearRanker(names: Self.names, mean: Self.means.map { Float($0) }, scale: Self.sds.map { Float(1 / $0) },
                                  weights: Self.truth.map { Float($0) })
        #expect(abs(fitted - oracle.meanNDCG(valid, k: 10)) < 0.01)
    }

    /// Multiplying a feature by 1000 changes its mean and scale, not the weights or the order (standardization);
    /// by 1024 (exact in binary) the weights are bit for bit the same.
    @Test func invariantToAFeaturesUnits() {
        let e = plantedExamples(groups: 300, size: 30, weights: Self.truth, mean: Self.means, sd: Self.sds, seed: 3)
        let (base, _) = LinearRanker.fit(e, names: Self.names)
        let scaled = mapFeature(e, 0, { $0 * 1000 })
        let (r1000, _) = LinearRanker.fit(scaled, names: Self.names)
        for k in 0..<5 { #expect(abs(r1000.weights[k] - base.weights[k]) <= 1e-4 * max(1, abs(base.weights[k]))) }
        #expect(abs(r1000.mean[0] - 1000 * base.mean[0]) <= 1e-3 * max(1, abs(r1000.mean[0])))
        #expect(groupOrders(r1000, scaled) == groupOrders(base, e))
        #expect(abs(r1000.meanNDCG(scaled, k: 10) - base.meanNDCG(e, k: 10)) < 1e-12)

        let (r1024, _) = LinearRanker.fit(mapFeature(e, 0, { $0 * 1024 }), names: Self.names)
        #expect(r1024.weights == base.weights)
        #expect(r1024.scale[0] == base.scale[0] / 1024)
    }

    /// A constant feature gets scale 0 and weight exactly 0 and changes nothing else; a feature constant within each
    /// group (a property of the user) cannot change an order, so it gets weight ~0. All features constant: the
    /// fit stops at w = 0.
    @Test func constantFeatures() {
        let e = plantedExamples(groups: 500, size: 20, weights: Self.truth, mean: Self.means, sd: Self.sds, seed: 4)
        let (plain, _) = LinearRanker.fit(e, names: Self.names)
        let withConstants = appendColumns(e, [{ _, _ in 7.5 }, { g, _ in Float(g % 17) * 3 }])
        let (ranker, report) = LinearRanker.fit(withConstants, names: Self.names + ["constant", "user_activity"])
        #expect(ranker.scale[5] == 0 && ranker.weights[5] == 0 && ranker.mean[5] == 7.5)
        #expect(ranker.scale[6] > 0 && abs(ranker.weights[6]) < 1e-5, "\(ranker.weights)")
        for k in 0..<5 { #expect(abs(ranker.weights[k] - plain.weights[k]) < 1e-4, "\(ranker.weights) vs \(plain.weights)") }
        #expect(report.converged)
        #expect(groupOrders(ranker, withConstants) == groupOrders(plain, e))

        let flat = RankingExamples(features: [Float](repeating: 1, count: 2 * 12), dimension: 2, offsets: [0, 4, 12],
                                   labels: [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        let (zero, flatReport) = LinearRanker.fit(flat, names: ["a", "b"])
        #expect(zero.weights == [0, 0] && zero.scale == [0, 0])
        #expect(flatReport.iterations == 0 && flatReport.converged && flatReport.groups == 2)
        #expect(abs(flatReport.finalLoss - (Foundation.log(4.0) + Foundation.log(8.0)) / 2) < 1e-12)
    }

    /// Groups without a positive carry no signal: skipped by the loss and by nDCG; with none at all the fit is w = 0.
    @Test func groupsWithoutPositives() {
        let e = plantedExamples(groups: 200, size: 10, weights: Self.truth, mean: Self.means, sd: Self.sds, seed: 6)
        var labels = e.labels
        for g in stride(from: 0, to: 200, by: 4) { for r in e.offsets[g]..<e.offsets[g + 1] { labels[r] = 0 } }
        let some = RankingExamples(features: e.features, dimension: 5, offsets: e.offsets, labels: labels)
        let (ranker, report) = LinearRanker.fit(some, names: Self.names)
        #expect(report.groups == 150 && report.skippedGroups == 50 && report.rows == 2000)
        #expect(ranker.meanNDCG(some, k: 5) > 0)
        let none = RankingExamples(features: e.features, dimension: 5, offsets: e.offsets,
                                   labels: [Float](repeating: 0, count: e.rowCount))
        let (zero, noneReport) = LinearRanker.fit(none, names: Self.names)
        #expect(zero.weights.allSatisfy { $0 == 0 } && noneReport.groups == 0 && noneReport.iterations == 0)
        #expect(zero.meanNDCG(none, k: 5) == 0)
        let empty = RankingExamples(features: [], dimension: 3, offsets: [0], labels: [])
        #expect(LinearRanker.fit(empty, names: ["a", "b", "c"]).0.weights == [0, 0, 0])
    }

    /// nDCG@k from the definition on a hand-made group: gains = labels, discount 1 / ln(1 + rank).
    @Test func ndcgMatchesTheDefinition() {
        // One feature; scores = feature. Order by score: rows 2 (0.9), 0 (0.5), 3 (0.3), 1 (0.1).
        let e = RankingExamples(features: [0.5, 0.1, 0.9, 0.3, 1, 2], dimension: 1, offsets: [0, 4, 6],
                                labels: [1, 2, 0, 1, 0, 0])
        let r = singleFeature(0, sign: 1, names: ["x"])
        func disc(_ rank: Int) -> Double { 1 / Foundation.log(Double(1 + rank)) }
        let dcg = 1 * disc(2) + 1 * disc(3), ideal = 2 * disc(1) + 1 * disc(2) + 1 * disc(3)
        #expect(abs(r.meanNDCG(e, k: 3) - dcg / ideal) < 1e-12)    // the second group has no positive
        #expect(r.meanNDCG(e, k: 1) == 0)                          // the top row has label 0
        let dcg2 = 1 * disc(2), ideal2 = 2 * disc(1) + 1 * disc(2)
        #expect(abs(r.meanNDCG(e, k: 2) - dcg2 / ideal2) < 1e-12)
        // Reversed (rows 1, 3, 0, 2): the ideal order.
        #expect(abs(singleFeature(0, sign: -1, names: ["x"]).meanNDCG(e, k: 10) - 1) < 1e-12)
        // Ties keep the rows' order (0, 1, 2, 3): labels 1, 2, 0, 1.
        let tied = singleFeature(0, sign: 0, names: ["x"])
        #expect(abs(tied.meanNDCG(e, k: 4) - (disc(1) + 2 * disc(2) + disc(4)) / ideal) < 1e-12)
    }

    /// The same model and losses on 1, 2 and 5 threads (several blocks of groups, uneven group sizes, a product).
    @Test func sameFitWhateverTheThreads() {
        var rng = SeededRandom(seed: 8)
        let e = plantedExamples(groups: 900, size: 45, weights: Self.truth, mean: Self.means, sd: Self.sds, seed: 7)
        // Uneven groups: split the rows at random points.
        var offsets = [0]
        while offsets.last! < e.rowCount { offsets.append(min(e.rowCount, offsets.last! + 1 + rng.nextInt(90))) }
        let uneven = RankingExamples(features: e.features, dimension: 5, offsets: offsets, labels: e.labels)
        #expect(uneven.blocks(rows: 8192).count > 4)
        var config = RankerConfig()
        config.products = [.init("two_tower", "mf")]
        var results: [(LinearRanker, RankerReport)] = []
        for threads in [1, 2, 5] {
            config.threads = threads
            results.append(LinearRanker.fit(uneven, names: Self.names, config: config))
        }
        for r in results.dropFirst() {
            #expect(r.0 == results[0].0)
            #expect(r.1.losses == results[0].1.losses)
        }
        let ndcg = [1, 2, 5].map { results[0].0.meanNDCG(uneven, k: 10, threads: $0) }
        #expect(ndcg[1] == ndcg[0] && ndcg[2] == ndcg[0])
        #expect(results[0].0.termNames == Self.names + ["two_tower*mf"])
    }

    /// A planted interaction z_0·z_1 is learned through a product term (and a linear model without it cannot).
    @Test func productTermsCaptureAnInteraction() {
        let w = [0.5, 0.0, 0.8]
        let train = plantedExamples(groups: 1500, size: 30, weights: w, mean: [0, 0, 0], sd: [1, 1, 1], interaction: 1.5, seed: 9)
        let valid = plantedExamples(groups: 500, size: 30, weights: w, mean: [0, 0, 0], sd: [1, 1, 1], interaction: 1.5, seed: 10)
        let names = ["a", "b", "c"]
        var config = RankerConfig()
        let (linear, _) = LinearRanker.fit(train, names: names, config: config)
        config.products = [.init("a", "b")]
        let (withProduct, _) = LinearRanker.fit(train, names: names, config: config)
        #expect(withProduct.weights.count == 4 && abs(withProduct.weights[3] - 1.5) < 0.25, "\(withProduct.weights)")
        #expect(withProduct.meanNDCG(valid, k: 10) > linear.meanNDCG(valid, k: 10) + 0.05)
        // score() agrees with the definition over the standardized terms.
        valid.features.withUnsafeBufferPointer { x in
            for r in [0, 7, 100] {
                let row = Array(x[(r * 3)..<(r * 3 + 3)])
                var z = (0..<3).map { (row[$0] - withProduct.mean[$0]) * withProduct.scale[$0] }
                z.append((z[0] * z[1] - withProduct.mean[3]) * withProduct.scale[3])
                let want = zip(withProduct.weights, z).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                #expect(abs(withProduct.score(x.baseAddress! + r * 3) - want) < 1e-5)
            }
        }
    }

    /// JSON round trip (the model file); a damaged file is an error, not a crash; feature-order check at load.
    @Test func codableRoundTripAndFeatureOrderCheck() throws {
        let e = plantedExamples(groups: 100, size: 20, weights: Self.truth, mean: Self.means, sd: Self.sds, seed: 12)
        var config = RankerConfig()
        config.products = [.init("mf", "popularity")]
        let (ranker, report) = LinearRanker.fit(e, names: Self.names, config: config)
        let data = try JSONEncoder().encode(ranker)
        let back = try JSONDecoder().decode(LinearRanker.self, from: data)
        #expect(back == ranker)
        #expect(back.scores(e) == ranker.scores(e))
        let reportBack = try JSONDecoder().decode(RankerReport.self, from: try JSONEncoder().encode(report))
        #expect(reportBack == report)

        // Without products (a model written before they existed) it still loads.
        let plain = LinearRanker(names: ["a", "b"], mean: [1, 2], scale: [0.5, 0], weights: [0.25, -1])
        var object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(plain)) as! [String: Any]
        object.removeValue(forKey: "products")
        #expect(try JSONDecoder().decode(LinearRanker.self, from: try JSONSerialization.data(withJSONObject: object)) == plain)
        object["weights"] = [0.25]
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(LinearRanker.self, from: try JSONSerialization.data(withJSONObject: object))
        }

        #expect(ranker.mismatch(with: Self.names) == nil)
        let swapped = ["mf", "two_tower"] + Self.names.dropFirst(2)
        #expect(ranker.mismatch(with: swapped) == "ranker feature 0 is \"two_tower\" but the pipeline writes \"mf\" there")
        #expect(ranker.mismatch(with: Array(Self.names.prefix(3)))?.contains("5 features") == true)
    }

    /// Bad example arrays are named, not crashed on later.
    @Test func validation() {
        #expect(RankingExamples.validate(features: [1, 2], dimension: 2, offsets: [0, 1], labels: [1]) == nil)
        #expect(RankingExamples.validate(features: [1, 2, 3], dimension: 2, offsets: [0, 1], labels: [1])?
            .contains("3 feature values") == true)
        #expect(RankingExamples.validate(features: [1, 2], dimension: 2, offsets: [0, 2], labels: [1])?
            .contains("offsets") == true)
        #expect(RankingExamples.validate(features: [1, 2, 3, 4], dimension: 2, offsets: [0, 2, 1, 2], labels: [1, 0])?
            .contains("decrease") == true)
        #expect(RankingExamples.validate(features: [1, 2], dimension: 2, offsets: [0, 1], labels: [-1])?
            .contains("label") == true)
        #expect(RankingExamples.validate(features: [1, .nan], dimension: 2, offsets: [0, 1], labels: [1])?
            .contains("row 0 feature 1") == true)
    }
}
