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

/// Random confidences (some negative) for `rows` users over `cols` videos, `perRow(u)` draws for user u.
func randomRows(rows: Int, cols: Int, perRow: (Int) -> Int, seed: UInt64, negatives: Bool = true) -> SparseRows {
    var rng = SeededRandom(seed: seed)
    var triples: [(Int32, Int32, Float)] = []
    for u in 0..<rows {
        for _ in 0..<perRow(u) {
            let v = Float(1 + rng.nextInt(5)) * (negatives && rng.nextInt(6) == 0 ? -1 : 1)
            triples.append((Int32(u), Int32(rng.nextInt(cols)), v))
        }
    }
    // Summed duplicates could mix signs; keep one entry per pair.
    var seen = Set<Int64>()
    triples = triples.filter { seen.insert(Int64($0.0) << 32 | Int64($0.1)).inserted }
    return SparseRows(rows: rows, cols: cols, triples: triples)
}

func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64, scale: Double = 1) -> Matrix {
    var rng = SeededRandom(seed: seed)
    return Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in Float((rng.nextDouble() - 0.5) * scale) })
}

/// Row u's normal equations straight from the definition, in Double: A = W·YᵀY + Σ (c − W) y yᵀ + λI, b = Σ c⁺ y.
func normalEquations(_ u: Int, _ c: SparseRows, _ y: Matrix, _ config: ALSConfig) -> (a: [[Double]], b: [Double]) {
    let f = y.cols, w = Double(config.unobservedWeight)
    var a = [[Double]](repeating: [Double](repeating: 0, count: f), count: f), b = [Double](repeating: 0, count: f)
    for i in 0..<y.rows {
        for p in 0..<f { for q in 0..<f { a[p][q] += w * Double(y[i, p]) * Double(y[i, q]) } }
    }
    for p in 0..<f { a[p][p] += Double(config.regularization) }
    for k in c.offsets[u]..<c.offsets[u + 1] {
        let i = Int(c.columns[k]), v = Double(c.values[k])
        for p in 0..<f {
            b[p] += max(v, 0) * Double(y[i, p])
            for q in 0..<f { a[p][q] += (abs(v) - w) * Double(y[i, p]) * Double(y[i, q]) }
        }
    }
    return (a, b)
}

/// Gaussian elimination with partial pivoting (the tests' independent exact solver).
func solveDense(_ a0: [[Double]], _ b0: [Double]) -> [Double] {
    var a = a0, b = b0
    let n = b.count
    for col in 0..<n {
        let piv = (col..<n).max { abs(a[$0][col]) < abs(a[$1][col]) }!
        a.swapAt(col, piv); b.swapAt(col, piv)
        for r in (col + 1)..<max(col + 1, n) {
            let m = a[r][col] / a[col][col]
            for k in col..<n { a[r][k] -= m * a[col][k] }
            b[r] -= m * b[col]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for r in stride(from: n - 1, through: 0, by: -1) {
        var s = b[r]
        for k in (r + 1)..<max(r + 1, n) { s -= a[r][k] * x[k] }
        x[r] = s / a[r][r]
    }
    return x
}

/// max_j |got_j − want_j| / max(1, max_j |want_j|) over one row.
func relativeError(_ got: ArraySlice<Float>, _ want: [Double]) -> Double {
    let scale = max(1, want.map(abs).max() ?? 0)
    return zip(got, want).map { abs(Double($0) - $1) }.max()! / scale
}

@Suite struct ALSTests {
    /// Observed pairs come out near 1 and unobserved near 0, with the exact solver, with CG on every row, and with
    /// CG plus direct solves (the groups' 3 users per row are short enough), on 1 and 2 threads.
    @Test(arguments: [(0, 1, false), (0, 2, false), (3, 1, false), (3, 2, false), (3, 1, true), (3, 2, true)])
    func reconstructsAPlantedLowRankMatrix(cg: Int, threads: Int, direct: Bool) {
        let c = direct ? plantedBlocks(usersPerGroup: 3, videosPerGroup: 3) : plantedBlocks()
        var config = ALSConfig()
        config.factors = 4; config.iterations = 25; config.regularization = 0.01; config.cgSteps = cg; config.threads = threads
        config.directSolves = direct
        let (perGroupUsers, perGroupVideos) = direct ? (3, 3) : (6, 5)
        let m = ALS.fit(c, config: config)
        var worstObserved: Float = 0, worstUnobserved: Float = 0
        for u in 0..<c.rows {
            for i in 0..<c.cols {
                let p = predict(m, u, i)
                if u / perGroupUsers == i / perGroupVideos { worstObserved = max(worstObserved, abs(1 - p)) }
                else { worstUnobserved = max(worstUnobserved, abs(p)) }
            }
        }
        #expect(worstObserved < 0.1, "cg \(cg) threads \(threads) direct \(direct): \(worstObserved)")
        #expect(worstUnobserved < 0.1, "cg \(cg) threads \(threads) direct \(direct): \(worstUnobserved)")
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

    /// The loss without the dense product equals the definition summed over every pair (negatives and a zero entry
    /// included).
    @Test func lossMatchesTheDefinition() {
        var triples = [(Int32, Int32, Float)]()
        for (k, v) in [Float(3), -2, 1, 0, 5, -1, 2].enumerated() { triples.append((Int32(k % 4), Int32((k * 3) % 6), v)) }
        let c = SparseRows(rows: 4, cols: 6, triples: triples)
        let x = randomMatrix(4, 3, seed: 1), y = randomMatrix(6, 3, seed: 2)
        var config = ALSConfig(); config.factors = 3; config.unobservedWeight = 0.7; config.regularization = 0.3
        var want = 0.0
        for u in 0..<4 {
            for i in 0..<6 {
                let s = (0..<3).reduce(0.0) { $0 + Double(x[u, $1]) * Double(y[i, $1]) }
                let k = (c.offsets[u]..<c.offsets[u + 1]).first { c.columns[$0] == Int32(i) }
                if let k {
                    let v = Double(c.values[k])
                    want += abs(v) * ((v > 0 ? 1 : 0) - s) * ((v > 0 ? 1 : 0) - s)
                } else {
                    want += Double(config.unobservedWeight) * s * s
                }
            }
        }
        want += Double(config.regularization) * (x.values + y.values).reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(ALS.loss(c, x, y, config) - want) < 1e-9 * max(1, want))
    }

    /// Same factors on 1 and 2 threads, with direct solves (users: 2 entries each) and with CG only.
    @Test(arguments: [true, false])
    func deterministicForASeedWhateverTheThreads(direct: Bool) {
        // Enough rows that the Gramian spans several chunks and threads.
        var triples: [(Int32, Int32, Float)] = []
        var rng = SeededRandom(seed: 3)
        for u in 0..<9000 { for _ in 0..<2 { triples.append((Int32(u), Int32(rng.nextInt(200)), Float(1 + rng.nextInt(5)))) } }
        let c = SparseRows(rows: 9000, cols: 200, triples: triples)
        var config = ALSConfig(); config.factors = 8; config.iterations = 2; config.directSolves = direct
        config.threads = 1
        let a = ALS.fit(c, config: config)
        config.threads = 2
        let b = ALS.fit(c, config: config)
        #expect(a.users == b.users && a.videos == b.videos)
        config.seed = 43
        #expect(ALS.fit(c, config: config).users != a.users)
    }

    /// The blocked Float Gramian against Double loops, with f not a multiple of 8 and more rows than one chunk;
    /// identical for 1 and 2 threads.
    @Test func gramianMatchesTheDefinition() {
        let m = randomMatrix(8192 + 300, 13, seed: 5)
        let g = ALS.gramian(m, threads: 1)
        #expect(g == ALS.gramian(m, threads: 2))
        let want = ALS.exactGramian(m)
        for k in 0..<(13 * 13) { #expect(abs(Double(g[k]) - want[k]) < 1e-4 * max(1, abs(want[k])), "entry \(k)") }
    }

    /// Every solver against the normal equations built densely from the definition (negatives included), on rows
    /// of 1 to 8 entries and f = 4 and 9: the exact Cholesky path, CG from a cold start with 3f steps (CG is exact
    /// in f steps), and the direct solve of short rows (through a prepared [y | B⁻¹y]; longer rows get 3 CG steps).
    @Test(arguments: [4, 9])
    func solversMatchTheNormalEquations(f: Int) {
        let c = randomRows(rows: 24, cols: 30, perRow: { 1 + $0 % 8 }, seed: 7)
        let y = randomMatrix(30, f, seed: 8)
        var config = ALSConfig(); config.factors = f; config.regularization = 0.1; config.unobservedWeight = 0.5
        let gram = ALS.gramian(y, threads: 1)
        for (cg, direct) in [(0, false), (3 * f, false), (3, true)] {
            config.cgSteps = cg; config.directSolves = direct
            var side = FixedSide(y, gram: gram, config: config)
            if direct { side.prepareDirect(threads: 1) }
            let limit = ALS.directThresholds(f: f, cgSteps: cg).warm
            if direct { #expect(limit >= 3, "f \(f): direct solves only up to \(limit) entries") }
            var x = Matrix(rows: 24, cols: f)
            ALS.solveRows(&x, side: side, rows: c, config: config, coldExact: false, mayPrepareDirect: false, threads: 1)
            for u in 0..<24 where !direct || c.offsets[u + 1] - c.offsets[u] <= limit {
                let (a, b) = normalEquations(u, c, y, config)
                let e = relativeError(x.row(u), solveDense(a, b))
                #expect(e < (cg == 0 ? 1e-5 : direct ? 1e-4 : 1e-3), "cg \(cg) direct \(direct) row \(u): \(e)")
            }
        }
    }

    /// A row longer than the per-thread gather block (a popular video) is summed window by window: CG still
    /// converges to the exact solution.
    @Test func longRowsSolveAcrossGatherWindows() {
        let n = RowSolver.gatherLimit + 700
        let c = randomRows(rows: 1, cols: n, perRow: { _ in 3 * n }, seed: 13)
        #expect(c.nnz > RowSolver.gatherLimit)
        let y = randomMatrix(n, 4, seed: 14, scale: 0.2)
        var config = ALSConfig(); config.factors = 4; config.cgSteps = 12; config.directSolves = false
        var x = Matrix(rows: 1, cols: 4)
        ALS.solveRows(&x, side: FixedSide(y, gram: ALS.gramian(y, threads: 1), config: config), rows: c, config: config,
                      coldExact: false, mayPrepareDirect: false, threads: 1)
        let (a, b) = normalEquations(0, c, y, config)
        #expect(relativeError(x.row(0), solveDense(a, b)) < 1e-3)
    }

    /// A disliked video (−c: preference 0, confidence c) ends below a video the user never saw that their group
    /// likes, and below where it ends when the pair is merely unobserved; with CG and with the exact path.
    @Test(arguments: [0, 3])
    func explicitNegativesPushPredictionsDown(cg: Int) {
        func planted(dislike: Bool) -> SparseRows {
            var triples: [(Int32, Int32, Float)] = []
            for g in 0..<3 {
                for u in 0..<6 {
                    for v in 0..<5 {
                        let user = g * 6 + u, video = g * 5 + v
                        if user == 0 && video == 1 { continue }                 // unobserved, liked by the group
                        if user == 0 && video == 0 && !dislike { continue }
                        triples.append((Int32(user), Int32(video), user == 0 && video == 0 ? -20 : 20))
                    }
                }
            }
            return SparseRows(rows: 18, cols: 15, triples: triples)
        }
        // As many factors as groups, so user 0 is explained by their group rather than memorized.
        var config = ALSConfig()
        config.factors = 3; config.iterations = 25; config.regularization = 0.1; config.cgSteps = cg; config.threads = 1
        let m = ALS.fit(planted(dislike: true), config: config)
        let disliked = predict(m, 0, 0), unobserved = predict(m, 0, 1)
        #expect(disliked < unobserved - 0.3, "disliked \(disliked) unobserved \(unobserved)")
        let control = predict(ALS.fit(planted(dislike: false), config: config), 0, 0)
        #expect(disliked < control - 0.3, "disliked \(disliked), same pair unobserved \(control)")
        // The rest of the group still gets video 0 near 1.
        #expect(abs(predict(m, 1, 0) - 1) < 0.15)
    }

    /// Fold-in of new users (cold: no start, or all-zero rows) is the exact solve; warm starts near the answer
    /// converge with the configured CG steps; 1 and 2 threads agree; an empty row gives zeros.
    @Test func foldInColdAndWarmMatchTheExactSolve() {
        let f = 8
        let c = randomRows(rows: 40, cols: 50, perRow: { 1 + $0 % 9 }, seed: 9)
        let fit = ALS.fit(randomRows(rows: 60, cols: 50, perRow: { _ in 8 }, seed: 10, negatives: false),
                          config: { var k = ALSConfig(); k.factors = f; k.iterations = 5; k.threads = 1; return k }())
        let y = fit.videos
        var config = ALSConfig(); config.factors = f; config.cgSteps = 3
        let gram = ALS.gramian(y, threads: 1)
        let exact = (0..<40).map { u -> [Double] in let (a, b) = normalEquations(u, c, y, config); return solveDense(a, b) }

        let cold = ALS.foldIn(c, videos: y, gram: gram, config: config, threads: 1)
        for u in 0..<40 { #expect(relativeError(cold.row(u), exact[u]) < 1e-5, "cold row \(u)") }
        // With a plan, short cold rows take the direct solve, the others Cholesky: all exact.
        let plan = FoldInPlan(videos: y, gram: gram, config: config, threads: 1)
        #expect(ALS.directThresholds(f: f, cgSteps: 3).cold >= 4)
        let planned = ALS.foldIn(c, plan: plan, threads: 2)
        for u in 0..<40 { #expect(relativeError(planned.row(u), exact[u]) < 1e-4, "planned cold row \(u)") }
        #expect(ALS.foldIn(c, plan: plan, threads: 1) == planned)
        #expect(ALS.foldIn(c, videos: y, gram: gram, config: config, threads: 2) == cold)
        #expect(ALS.foldIn(c, videos: y, gram: gram, config: config, initial: Matrix(rows: 40, cols: f), threads: 1) == cold)

        // Warm: start 5% off the answer (as last hour's factors after a little new history).
        var rng = SeededRandom(seed: 12)
        let start = Matrix(rows: 40, cols: f, values: cold.values.map { $0 * Float(1 + 0.1 * (rng.nextDouble() - 0.5)) + 1e-3 })
        let warm = ALS.foldIn(c, videos: y, gram: gram, config: config, initial: start, threads: 1)
        var before = 0.0, after = 0.0
        for u in 0..<40 {
            before = max(before, relativeError(start.row(u), exact[u]))
            after = max(after, relativeError(warm.row(u), exact[u]))
        }
        #expect(after < 2e-3 && after < before / 10, "warm: \(before) → \(after)")
        #expect(ALS.foldIn(c, videos: y, gram: gram, config: config, initial: start, threads: 2) == warm)
        // cgSteps 0: every row exact, warm or not.
        config.cgSteps = 0
        let exactWarm = ALS.foldIn(c, videos: y, gram: gram, config: config, initial: start, threads: 1)
        for u in 0..<40 { #expect(relativeError(exactWarm.row(u), exact[u]) < 1e-5) }

        // A row's result does not depend on the block it comes in (the refresh folds users in by blocks).
        func rows(_ r: Range<Int>, of m: SparseRows) -> SparseRows {
            let lo = m.offsets[r.lowerBound], hi = m.offsets[r.upperBound]
            return SparseRows(rows: r.count, cols: m.cols, offsets: m.offsets[r.lowerBound...r.upperBound].map { $0 - lo },
                              columns: Array(m.columns[lo..<hi]), values: Array(m.values[lo..<hi]))
        }
        config.cgSteps = 3
        let half = Matrix(rows: 40, cols: f, values: (0..<(40 * f)).map { $0 < 20 * f ? 0 : start.values[$0] })
        for p in [nil, plan] as [FoldInPlan?] {
            func fold(_ r: Range<Int>) -> [Float] {
                let initial = Matrix(rows: r.count, cols: f, values: Array(half.values[(r.lowerBound * f)..<(r.upperBound * f)]))
                if let p { return ALS.foldIn(rows(r, of: c), plan: p, initial: initial, threads: 1).values }
                return ALS.foldIn(rows(r, of: c), videos: y, gram: gram, config: config, initial: initial, threads: 1).values
            }
            #expect(fold(0..<40) == fold(0..<7) + fold(7..<33) + fold(33..<40), "plan \(p != nil)")
        }

        config.cgSteps = 0
        let empty = SparseRows(rows: 2, cols: 50, offsets: [0, 0, 1], columns: [3], values: [2])
        let e = ALS.foldIn(empty, videos: y, gram: gram, config: config, initial: Matrix(rows: 2, cols: f, repeating: 1), threads: 1)
        #expect(e.row(0).allSatisfy { $0 == 0 } && e.row(1).contains { $0 != 0 })
    }

    @Test func sparseRowsSumDuplicatesAndTranspose() {
        let s = SparseRows(rows: 2, cols: 3, triples: [(1, 2, 1), (0, 1, 2), (1, 2, 3), (0, 0, 1)])
        #expect(s.offsets == [0, 2, 3])
        #expect(s.columns == [0, 1, 2] && s.values == [1, 2, 4])
        let t = s.transposed()
        #expect(t.rows == 3 && t.offsets == [0, 1, 2, 3] && t.columns == [0, 0, 1] && t.values == [1, 2, 4])
    }

    /// The counting-sort builder against a dictionary: rows in order, columns increasing, duplicates summed in input
    /// order, empty rows kept; its output passes validation.
    @Test func countingSortBuilderSumsDuplicates() {
        var rng = SeededRandom(seed: 4)
        var ri: [Int32] = [], ci: [Int32] = [], vi: [Float] = []
        var want: [Int: [Int32: Float]] = [:]
        for _ in 0..<500 {
            let r = Int32(rng.nextInt(30)), c = Int32(rng.nextInt(12)), v = Float(rng.nextInt(7)) - 2
            ri.append(r); ci.append(c); vi.append(v)
            want[Int(r), default: [:]][c, default: 0] += v
        }
        let s = SparseRows(rows: 33, cols: 12, rowIndices: ri, colIndices: ci, values: vi)
        #expect(SparseRows.validate(rows: 33, cols: 12, offsets: s.offsets, columns: s.columns, values: s.values) == nil)
        #expect(s.nnz == want.values.reduce(0) { $0 + $1.count })
        for r in 0..<33 {
            let entries = (s.offsets[r]..<s.offsets[r + 1]).map { (s.columns[$0], s.values[$0]) }
            let expected = (want[r] ?? [:]).sorted { $0.key < $1.key }
            #expect(entries.map { $0.0 } == expected.map { $0.key }, "row \(r)")
            #expect(entries.map { $0.1 } == expected.map { $0.value }, "row \(r)")
        }
        let empty = SparseRows(rows: 2, cols: 0, rowIndices: [], colIndices: [], values: [])
        #expect(empty.offsets == [0, 0, 0] && empty.nnz == 0)
    }

    @Test func csrValidationNamesTheProblem() {
        func check(_ rows: Int, _ cols: Int, _ o: [Int], _ c: [Int32], _ v: [Float]) -> String? {
            SparseRows.validate(rows: rows, cols: cols, offsets: o, columns: c, values: v)
        }
        #expect(check(2, 3, [0, 1, 2], [0, 2], [1, 1]) == nil)
        #expect(check(2, 3, [0, 2], [0, 2], [1, 1])?.contains("rows + 1") == true)
        #expect(check(2, 3, [0, 1, 2], [0, 2], [1])?.contains("values") == true)
        #expect(check(2, 3, [0, 1, 3], [0, 2], [1, 1])?.contains("nnz") == true)
        #expect(check(2, 3, [0, 2, 1], [0, 2], [1, 1])?.contains("nnz") == true)
        #expect(check(3, 3, [0, 2, 1, 2], [0, 2], [1, 1])?.contains("decrease") == true)
        #expect(check(2, 3, [0, 1, 2], [0, 3], [1, 1])?.contains("outside") == true)
        #expect(check(1, 3, [0, 2], [2, 1], [1, 1])?.contains("strictly increasing") == true)
        #expect(check(1, 3, [0, 2], [1, 1], [1, 1])?.contains("strictly increasing") == true)
        let s = SparseRows(rows: 2, cols: 3, offsets: [0, 1, 2], columns: [0, 2], values: [1, 1])
        #expect(s.nnz == 2 && s.transposed().offsets == [0, 1, 1, 2])
    }

    @Test func csrInitializerStopsOnABadShape() async {
        await #expect(processExitsWith: .failure) {
            _ = SparseRows(rows: 2, cols: 3, offsets: [0, 1], columns: [0], values: [1])
        }
    }
}
