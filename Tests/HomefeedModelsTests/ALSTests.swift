import Testing
@testable import HomefeedCore
@testable import HomefeedModels

/// A planted rank-3 pattern: 3 groups of users, each engages with exactly its group's videos (confidence 20).
func plantedBlocks(usersPerGroup: Int = 6, videosPerGroup: Int = 5, groups: Int = 3) -> SparseRows {
    var triples: [(Int32, Int32, Float)] = []
    for g in 0..<groups {
        for u in 0..<usersPerGroup {
            for v in 0..<videosPerGroup {
                triples.append((Int32(g * usersPerGroup + u), Int32(g * videosPerGroup + v), 20))
            }
        }
    }
    return SparseRows(rows: groups * usersPerGroup, cols: groups * videosPerGroup, triples: triples)
}

func predict(_ m: ALSModel, _ u: Int, _ i: Int) -> Float {
    (0..<m.users.cols).reduce(Float(0)) { $0 + m.users[u, $1] * m.videos[i, $1] }
}

@Suite struct ALSTests {
    /// Observed pairs come out near 1 and unobserved near 0, with the exact solver and with CG, on 1 and 2 threads.
    @Test(arguments: [(0, 1), (0, 2), (3, 1), (3, 2)])
    func reconstructsAPlantedLowRankMatrix(cg: Int, threads: Int) {
        let c = plantedBlocks()
        var config = ALSConfig()
        config.factors = 4; config.iterations = 25; config.regularization = 0.01; config.cgSteps = cg; config.threads = threads
        let m = ALS.fit(c, config: config)
        var worstObserved: Float = 0, worstUnobserved: Float = 0
        for u in 0..<c.rows {
            for i in 0..<c.cols {
                let p = predict(m, u, i)
                if u / 6 == i / 5 { worstObserved = max(worstObserved, abs(1 - p)) }
                else { worstUnobserved = max(worstUnobserved, abs(p)) }
            }
        }
        #expect(worstObserved < 0.1, "cg \(cg) threads \(threads): \(worstObserved)")
        #expect(worstUnobserved < 0.1, "cg \(cg) threads \(threads): \(worstUnobserved)")
    }

    @Test(arguments: [0, 3])
    func lossDecreasesEveryIteration(cg: Int) {
        let c = plantedBlocks()
        var config = ALSConfig()
        config.factors = 4; config.iterations = 8; config.cgSteps = cg; config.threads = 1
        var losses: [Double] = []
        _ = ALS.fit(c, config: config, trackLoss: true) { _, l in losses.append(l) }
        #expect(losses.count == 8)
        for (a, b) in zip(losses, losses.dropFirst()) { #expect(b <= a * (1 + 1e-6), "\(losses)") }
        #expect(losses.last! < losses.first! * 0.5)
    }

    @Test func deterministicForASeedWhateverTheThreads() {
        // Enough rows that the Gramian spans several blocks and threads.
        var triples: [(Int32, Int32, Float)] = []
        var rng = SeededRandom(seed: 3)
        for u in 0..<3000 { for _ in 0..<5 { triples.append((Int32(u), Int32(rng.nextInt(200)), Float(1 + rng.nextInt(5)))) } }
        let c = SparseRows(rows: 3000, cols: 200, triples: triples)
        var config = ALSConfig(); config.factors = 8; config.iterations = 3
        config.threads = 1
        let a = ALS.fit(c, config: config)
        config.threads = 2
        let b = ALS.fit(c, config: config)
        #expect(a.users == b.users && a.videos == b.videos)
        config.seed = 43
        #expect(ALS.fit(c, config: config).users != a.users)
    }

    /// The exact path solves the normal equations: residual of one row's system is ~0.
    @Test func choleskySolvesTheNormalEquations() {
        let c = plantedBlocks()
        var config = ALSConfig(); config.factors = 4; config.iterations = 1; config.cgSteps = 0; config.threads = 1
        let m = ALS.fit(c, config: config)
        // Re-solve user 0 against the final video factors and check A x = b.
        let f = 4
        let g = ALS.gramian(m.videos, threads: 1)
        var x = [Float](repeating: 0, count: f), ax = [Float](repeating: 0, count: f), b = [Float](repeating: 0, count: f)
        var target = m.users
        ALS.solve(&target, fixed: m.videos, rows: c, config: config, threads: 1)
        for j in 0..<f { x[j] = target[0, j] }
        let solver = RowSolver(factors: f)
        m.videos.values.withUnsafeBufferPointer { y in
            g.withUnsafeBufferPointer { gp in solver.multiply(x, into: &ax, row: 0, rows: c, y: y, gram: gp, config: config) }
        }
        for k in c.offsets[0]..<c.offsets[1] { for j in 0..<f { b[j] += c.values[k] * m.videos[Int(c.columns[k]), j] } }
        for j in 0..<f { #expect(abs(ax[j] - b[j]) < 1e-3 * max(1, abs(b[j])), "\(ax) vs \(b)") }
    }

    @Test func sparseRowsSumDuplicatesAndTranspose() {
        let s = SparseRows(rows: 2, cols: 3, triples: [(1, 2, 1), (0, 1, 2), (1, 2, 3), (0, 0, 1)])
        #expect(s.offsets == [0, 2, 3])
        #expect(s.columns == [0, 1, 2] && s.values == [1, 2, 4])
        let t = s.transposed()
        #expect(t.rows == 3 && t.offsets == [0, 1, 2, 3] && t.columns == [0, 0, 1] && t.values == [1, 2, 4])
    }
}
