import Testing
@testable import HomefeedCore
@testable import HomefeedPipeline

@Suite struct RankerPoolTests {
    @Test func kthLargestMatchesSorting() {
        var rng = SeededRandom(seed: 9)
        for n in [1, 2, 7, 100, 1000] {
            // Few distinct values, so ties at the cut are common.
            let v = (0..<n).map { _ in Float(Int(rng.nextDouble() * 20)) }
            let sorted = v.sorted(by: >)
            for k in Set([1, 2, n / 2 + 1, n].filter { $0 >= 1 && $0 <= n }) {
                var w = v
                #expect(Refresh.kthLargest(&w, k) == sorted[k - 1], "n \(n), k \(k)")
            }
        }
    }

    /// The pool is the union of the best `pool` by mf_ranking and by the two-tower score (ties at the cut included);
    /// pool 0 or ≥ the candidates keeps every candidate.
    @Test func poolIsTheBestByEitherModel() {
        let dim = RankingFeatures.count
        let mfRanking = RankingFeatures.mfRanking, twoTower = RankingFeatures.twoTower
        #expect(RankingFeatures.names[mfRanking] == "mf_ranking" && RankingFeatures.names[twoTower] == "two_tower")
        let mf: [Float] = [5, 1, 4, 4, 0, 2], tt: [Float] = [0, 9, 1, 2, 8, 3]
        var f = [Float](repeating: 0, count: mf.count * dim)
        for i in mf.indices { f[i * dim + mfRanking] = mf[i]; f[i * dim + twoTower] = tt[i] }
        var mask: [Bool] = [], scratch: [Float] = []
        Refresh.rankerPool(f, count: mf.count, pool: 2, into: &mask, scratch: &scratch)
        // mf best 2: 5 (0) and the tie 4, 4 (2, 3); two-tower best 2: 9 (1), 8 (4).
        #expect(mask == [true, true, true, true, true, false])
        Refresh.rankerPool(f, count: mf.count, pool: 1, into: &mask, scratch: &scratch)
        #expect(mask == [true, true, false, false, false, false])
        Refresh.rankerPool(f, count: mf.count, pool: 0, into: &mask, scratch: &scratch)
        #expect(mask == [Bool](repeating: true, count: 6))
        Refresh.rankerPool(f, count: mf.count, pool: 6, into: &mask, scratch: &scratch)
        #expect(mask == [Bool](repeating: true, count: 6))
    }

    @Test func pairedGainIsTheMeanDifferenceAndItsStandardError() {
        // d = [0.1, 0.3, -0.1, 0.1]: mean 0.1, sample variance ((0)² + 0.2² + 0.2² + 0²) / 3 = 0.08 / 3, SE = √(0.08/3/4).
        let g = RankerFit.PairedGain([0.5, 0.7, 0.2, 0.4], [0.4, 0.4, 0.3, 0.3])
        #expect(abs(g.mean - 0.1) < 1e-12)
        #expect(abs(g.standardError - (0.08 / 3 / 4).squareRoot()) < 1e-12)
        let one = RankerFit.PairedGain([1], [0])
        #expect(one.mean == 0 && one.standardError == 0)   // a single user is no evidence
    }
}
