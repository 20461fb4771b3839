import Foundation
import Synchronization
import Testing
@testable import HomefeedCore
@testable import HomefeedModels

/// Reference top-K: every score computed as the kernels do (s = 0, then s = x_j·q_j + s in dimension order), all
/// candidates sorted by (score descending, id ascending).
func referenceTopK(_ queries: Matrix, _ items: Matrix, k: Int, eligible: [Int32]? = nil,
                   allowed: (Int, Int32) -> Bool = { _, _ in true }) -> [[(id: Int32, score: Float)]] {
    let rows = eligible.map { Array(Set($0)).sorted() } ?? (0..<items.rows).map { Int32($0) }
    return (0..<queries.rows).map { q in
        var all: [(id: Int32, score: Float)] = []
        for r in rows where allowed(q, r) {
            var s: Float = 0
            for j in 0..<items.cols { s = items[Int(r), j] * queries[q, j] + s }
            all.append((r, s))
        }
        all.sort { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
        return Array(all.prefix(k))
    }
}

func expectSame(_ got: TopKResults, _ want: [[(id: Int32, score: Float)]], _ note: String) {
    #expect(got.queryCount == want.count, "\(note)")
    for q in 0..<min(got.queryCount, want.count) {
        #expect(got.ids(q).elementsEqual(want[q].map(\.id)), "\(note) query \(q) ids")
        #expect(got.scores(q).elementsEqual(want[q].map(\.score)), "\(note) query \(q) scores")
    }
}

/// Small integers: every dot product is exact in Float, so planted equal rows tie exactly.
func integerMatrix(_ rows: Int, _ cols: Int, seed: UInt64, range: Int = 5) -> Matrix {
    var rng = SeededRandom(seed: seed)
    return Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in Float(rng.nextInt(2 * range + 1) - range) })
}

/// Every kernel copy this CPU can run: portable 2-row and 6-row, and the AVX2 one when the CPU has AVX2 + FMA.
let allKernels: [TopKKernels] = [.portable, .portableWide] + (TopKKernels.avx2Wide.map { [$0] } ?? [])

func randomMatrix(_ rows: Int, _ cols: Int, seed: UInt64) -> Matrix {
    var rng = SeededRandom(seed: seed)
    return Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in Float(rng.nextDouble() * 2 - 1) })
}

/// Tight clusters: `clusters` random unit centres, `perCluster` items each at a small angle and a varied norm;
/// queries drawn around the same centres.
func clusteredData(clusters: Int, perCluster: Int, queries: Int, dim: Int, seed: UInt64) -> (items: Matrix, queries: Matrix) {
    var rng = SeededRandom(seed: seed)
    func gauss() -> Float {
        let u1 = max(rng.nextDouble(), 1e-12), u2 = rng.nextDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
    func unit(_ v: [Float]) -> [Float] { let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot(); return v.map { $0 / n } }
    let centres = (0..<clusters).map { _ in unit((0..<dim).map { _ in gauss() }) }
    func around(_ c: [Float], spread: Float) -> [Float] {
        let noise = unit((0..<dim).map { _ in gauss() })
        let scale = Float(1 + 0.3 * rng.nextDouble())
        return unit((0..<dim).map { c[$0] + spread * noise[$0] }).map { $0 * scale }
    }
    var items: [Float] = []
    for c in 0..<clusters { for _ in 0..<perCluster { items += around(centres[c], spread: 0.15) } }
    var qs: [Float] = []
    for _ in 0..<queries { qs += around(centres[rng.nextInt(clusters)], spread: 0.15) }
    return (Matrix(rows: clusters * perCluster, cols: dim, values: items), Matrix(rows: queries, cols: dim, values: qs))
}

@Suite struct RetrievalTests {
    /// Bit-identical to the reference on integer data full of exact ties (duplicated rows, many equal dot
    /// products), for every kernel, small and large K (the sorted-insert and the buffer selection), 1 to 3 threads.
    @Test(arguments: [(1, 7), (2, 40), (3, 40), (2, 300)])
    func exactEqualsBruteForceWithTies(threads: Int, k: Int) {
        var items = integerMatrix(700, 9, seed: 1, range: 2)
        // Planted ties: rows 10…19 repeat row 5, so they score exactly as row 5 for every query.
        for r in 10..<20 { for j in 0..<9 { items[r, j] = items[5, j] } }
        let queries = integerMatrix(13, 9, seed: 2, range: 2)
        let want = referenceTopK(queries, items, k: k)
        for kernels in allKernels {
            expectSame(ExactIndex(items: items).search(queries, k: k, threads: threads, kernels: kernels, allowed: { _, _ in true }),
                       want, "\(kernels) k \(k)")
        }
        // The planted rows come out in id order wherever they rank.
        let got = ExactIndex(items: items).search(queries, k: k, threads: threads)
        for q in 0..<queries.rows {
            let planted = got.ids(q).filter { $0 == 5 || (10..<20).contains($0) }
            #expect(planted == planted.sorted())
        }
    }

    /// Random floats: the same scores bit for bit (the kernels sum in dimension order, like the reference).
    @Test func exactEqualsBruteForceOnRandomFloats() {
        let items = randomMatrix(1000, 24, seed: 3), queries = randomMatrix(20, 24, seed: 4)
        expectSame(ExactIndex(items: items).search(queries, k: 25, threads: 2), referenceTopK(queries, items, k: 25), "random")
    }

    /// The CPU dispatch: the AVX2 and the portable kernels return the brute-force results bit for bit, exact and
    /// IVF (every cell probed, and a few: the same cells, the same candidates), through the sampled floor (k 150)
    /// and IVF's 2-, 4- and 6-row groups. Only the portable ones when the CPU lacks AVX2 or FMA.
    @Test func everyKernelCopyGivesTheSameResults() {
        let (items, queries) = clusteredData(clusters: 20, perCluster: 200, queries: 23, dim: 20, seed: 18)
        let exact = ExactIndex(items: items), ivf = IVFIndex.build(items: items, cells: 24, seed: 6, threads: 2)
        #expect(TopKKernels.current.avx2 == (KernelDispatch.avx2Supported && !KernelDispatch.forcePortable))
        for k in [7, 150] {
            let want = referenceTopK(queries, items, k: k)
            let few = ivf.search(queries, k: k, probe: 5, threads: 2, kernels: .portable, allowed: { _, _ in true })
            for kernels in allKernels {
                expectSame(exact.search(queries, k: k, threads: 2, kernels: kernels, allowed: { _, _ in true }), want, "exact \(kernels) k \(k)")
                expectSame(ivf.search(queries, k: k, probe: ivf.cells, threads: 2, kernels: kernels, allowed: { _, _ in true }),
                           want, "ivf all \(kernels) k \(k)")
                #expect(ivf.search(queries, k: k, probe: 5, threads: 2, kernels: kernels, allowed: { _, _ in true }) == few,
                        "ivf probe 5 \(kernels) k \(k)")
            }
        }
    }

    /// K of 100 and 256 in 4000 items take the sampled-floor path (j = 16 and j = 32); the result is still exact,
    /// also when the filter removes most of the top items, which forces the rescan of queries whose floor was too
    /// high.
    @Test(arguments: [100, 256])
    func exactWithSampledFloorAndRescan(k: Int) {
        let items = randomMatrix(4000, 8, seed: 5), queries = randomMatrix(9, 8, seed: 6)
        let index = ExactIndex(items: items)
        expectSame(index.search(queries, k: k, threads: 2), referenceTopK(queries, items, k: k), "floor")
        let sparse: @Sendable (Int, Int32) -> Bool = { q, id in (Int(id) + q) % 9 == 0 }
        expectSame(index.search(queries, k: k, threads: 2, allowed: sparse),
                   referenceTopK(queries, items, k: k, allowed: sparse), "floor + filter")
    }

    /// Ineligible rows never come back, `allowed` is honoured, and it is asked about few items per query.
    @Test func honoursEligibilityAndFilter() {
        let items = randomMatrix(3000, 16, seed: 7), queries = randomMatrix(12, 16, seed: 8)
        let eligible = (0..<3000).filter { $0 % 4 != 1 }.map { Int32($0) } + [8, 8, 12]  // duplicates are ignored
        let asked = Atomic<Int>(0)
        let allowed: @Sendable (Int, Int32) -> Bool = { q, id in
            asked.add(1, ordering: .relaxed)
            return (Int(id) * 7 + q) % 5 != 0
        }
        let got = ExactIndex(items: items, eligible: eligible).search(queries, k: 20, threads: 2, allowed: allowed)
        expectSame(got, referenceTopK(queries, items, k: 20, eligible: eligible, allowed: { q, id in (Int(id) * 7 + q) % 5 != 0 }),
                   "filtered")
        for q in 0..<queries.rows {
            #expect(got.count(q) == 20)
            for id in got.ids(q) { #expect(id % 4 != 1 && (Int(id) * 7 + q) % 5 != 0) }
        }
        // Far fewer questions than queries × eligible items (2250 each).
        #expect(asked.load(ordering: .relaxed) < queries.rows * 400, "\(asked.load(ordering: .relaxed))")
    }

    /// The refresh calls with threads: 1 from its own parallel loop, one block of users per call: same results as
    /// one parallel call over all of them (the filter sees each block's own query numbering).
    @Test func searchFromInsideAParallelLoop() {
        let items = randomMatrix(2000, 12, seed: 16), queries = randomMatrix(40, 12, seed: 17)
        let exact = ExactIndex(items: items)
        let ivf = IVFIndex.build(items: items, cells: 20, seed: 2, threads: 2)
        let allowed: @Sendable (Int, Int32) -> Bool = { q, id in (Int(id) + q) % 4 != 0 }
        let wholeExact = exact.search(queries, k: 30, threads: 2, allowed: allowed)
        let wholeIVF = ivf.search(queries, k: 30, probe: 5, threads: 2, allowed: allowed)
        let blocks = SlotBuffer<(TopKResults, TopKResults)?>(repeating: nil, count: 4)
        parallelFor(4, threads: 4, chunk: 1) { _, range in
            for b in range {
                let block = Matrix(rows: 10, cols: 12, values: Array(queries.values[(b * 120)..<((b + 1) * 120)]))
                let shifted: @Sendable (Int, Int32) -> Bool = { q, id in allowed(b * 10 + q, id) }
                blocks[b] = (exact.search(block, k: 30, threads: 1, allowed: shifted),
                             ivf.search(block, k: 30, probe: 5, threads: 1, allowed: shifted))
            }
        }
        for b in 0..<4 {
            for q in 0..<10 {
                #expect(blocks[b]!.0.ids(q).elementsEqual(wholeExact.ids(b * 10 + q)))
                #expect(blocks[b]!.1.ids(q).elementsEqual(wholeIVF.ids(b * 10 + q)))
            }
        }
    }

    @Test func edgeCases() {
        let items = randomMatrix(20, 5, seed: 9), queries = randomMatrix(3, 5, seed: 10)
        let index = ExactIndex(items: items)
        // k larger than the catalog: every item, best first, in slots q*k ..< q*k+20.
        let all = index.search(queries, k: 50, threads: 2)
        expectSame(all, referenceTopK(queries, items, k: 50), "k > n")
        #expect(all.counts == [20, 20, 20] && all.ids.count == 150 && all.ids[1 * 50 + 20] == -1)
        #expect(all.results(1).count == 20 && all.results(1)[0].id == all.ids[50])
        // k larger than the eligible items.
        let few = ExactIndex(items: items, eligible: [3, 17, 4]).search(queries, k: 10, threads: 1)
        #expect(few.counts == [3, 3, 3] && Set(few.ids(2)) == [3, 4, 17])
        // Everything excluded, k = 0, no queries, no items.
        #expect(index.search(queries, k: 5, threads: 2, allowed: { _, _ in false }).counts == [0, 0, 0])
        #expect(index.search(queries, k: 0, threads: 2).counts == [0, 0, 0])
        #expect(index.search(Matrix(rows: 0, cols: 5), k: 5, threads: 2).queryCount == 0)
        #expect(ExactIndex(items: items, eligible: []).search(queries, k: 5, threads: 2).counts == [0, 0, 0])
        let ivf = IVFIndex.build(items: items, eligible: [], cells: 4, seed: 1, threads: 2)
        #expect(ivf.search(queries, k: 5, probe: 2, threads: 2).counts == [0, 0, 0])
    }

    /// Probing every cell is the exact search, result for result (same scores, same ties, same filter).
    @Test(arguments: [1, 2])
    func ivfWithEveryCellEqualsExact(threads: Int) {
        let (items, queries) = clusteredData(clusters: 12, perCluster: 40, queries: 25, dim: 12, seed: 11)
        let eligible = (0..<items.rows).filter { $0 % 7 != 3 }.map { Int32($0) }
        let allowed: @Sendable (Int, Int32) -> Bool = { q, id in (Int(id) + 2 * q) % 6 != 0 }
        let ivf = IVFIndex.build(items: items, eligible: eligible, cells: 10, seed: 3, threads: threads)
        let exact = ExactIndex(items: items, eligible: eligible)
        for k in [5, 60] {
            #expect(ivf.search(queries, k: k, probe: ivf.cells, threads: threads, allowed: allowed)
                    == exact.search(queries, k: k, threads: threads, allowed: allowed))
        }
        #expect(ivf.cellSizes.reduce(0, +) == eligible.count)
        // Integer data full of exact ties: cells are scanned out of id order, ties still go to the lower id.
        var tied = integerMatrix(400, 6, seed: 14, range: 2)
        for r in 200..<230 { for j in 0..<6 { tied[r, j] = tied[7, j] } }
        let tq = integerMatrix(15, 6, seed: 15, range: 2)
        let tivf = IVFIndex.build(items: tied, cells: 8, seed: 4, threads: threads)
        for k in [3, 50] {
            let got = tivf.search(tq, k: k, probe: tivf.cells, threads: threads)
            expectSame(got, referenceTopK(tq, tied, k: k), "ivf ties k \(k)")
        }
    }

    /// Tight clusters, a cell per cluster: probing 3 of 30 cells finds nearly all of the exact top 10.
    @Test func ivfRecallIsHighOnClusteredData() {
        let (items, queries) = clusteredData(clusters: 30, perCluster: 40, queries: 60, dim: 16, seed: 12)
        let ivf = IVFIndex.build(items: items, cells: 30, seed: 5, threads: 2)
        let exact = ExactIndex(items: items).search(queries, k: 10, threads: 2)
        let approx = ivf.search(queries, k: 10, probe: 3, threads: 2)
        let recall = recallAtK(exact: exact, approximate: approx)
        #expect(recall >= 0.95, "recall \(recall)")
        #expect(ivf.estimateRecall(queries, k: 10, probe: 3, threads: 2, allowed: { _, _ in true }) == recall)
        // One probe still finds most of them; more probes never lose recall here.
        let one = recallAtK(exact: exact, approximate: ivf.search(queries, k: 10, probe: 1, threads: 1))
        #expect(one >= 0.6 && one <= recall, "probe 1: \(one)")
    }

    /// k-means: the same seed gives the same cells whatever the thread count; another seed other cells.
    @Test func kmeansIsDeterministicAndThreadIndependent() {
        let (items, _) = clusteredData(clusters: 20, perCluster: 30, queries: 1, dim: 8, seed: 13)
        let a = IVFIndex.build(items: items, cells: 16, iterations: 6, seed: 9, threads: 1)
        let b = IVFIndex.build(items: items, cells: 16, iterations: 6, seed: 9, threads: 3)
        let c = IVFIndex.build(items: items, cells: 16, iterations: 6, seed: 10, threads: 1)
        #expect(a.centroids == b.centroids && a.cellSizes == b.cellSizes && a.maxNorms == b.maxNorms)
        #expect(a.centroids != c.centroids)
        #expect(a.cells == 16 && a.cellSizes.reduce(0, +) == 600 && a.cellSizes.allSatisfy { $0 > 0 })
        // Unit centroids.
        for cell in 0..<16 {
            let n2 = a.centroids.row(cell).reduce(Float(0)) { $0 + $1 * $1 }
            #expect(abs(n2 - 1) < 1e-4)
        }
        // More cells than items: one per item at most.
        #expect(IVFIndex.build(items: Matrix(rows: 3, cols: 8, values: Array(items.values[0..<24])), cells: 10, seed: 1, threads: 1).cells == 3)
    }

    @Test func defaultCells() {
        #expect(IVFIndex.defaultCells(itemCount: 100_000) == 1265)
        #expect(IVFIndex.defaultCells(itemCount: 1_000_000) == 4000)
        #expect(IVFIndex.defaultCells(itemCount: 100) == 6)
        #expect(IVFIndex.defaultCells(itemCount: 0) == 1)
        #expect(IVFIndex.defaultProbe(cells: 1265) == 80 && IVFIndex.defaultProbe(cells: 40) == 8)
        #expect(IVFIndex.defaultProbe(cells: 5) == 5 && IVFIndex.defaultProbe(cells: 4000) == 250)
    }

    /// MF-like items for the norm bound: 40 % exact zeros (no interactions), many near 0, a few long; and items
    /// that are scaled copies of the queries, whose scores sit exactly on the bound ‖q‖·‖x‖ (where rounding could
    /// lift a score above an unslacked bound).
    func normSkewedData(seed: UInt64) -> (items: Matrix, queries: Matrix) {
        let dim = 12
        var rng = SeededRandom(seed: seed)
        let queries = randomMatrix(17, dim, seed: seed + 1)
        var items = randomMatrix(1500, dim, seed: seed + 2)
        for r in 0..<items.rows {
            let u = rng.nextDouble()
            let scale: Float = u < 0.4 ? 0 : u < 0.8 ? Float(rng.nextDouble() * 1e-3) : Float(exp(3 * rng.nextDouble()))
            let copy = rng.nextInt(5) == 0 ? rng.nextInt(queries.rows) : -1
            for j in 0..<dim { items[r, j] = copy >= 0 ? queries[copy, j] * Float(1 + rng.nextInt(40)) / 7 : items[r, j] * scale }
        }
        return (items, queries)
    }

    /// The norm bound never drops an item of the exact top K: every cell probed equals the brute-force reference
    /// bit for bit, for every kernel, from k 1 to beyond the non-zero items (zeros tie at 0 and go by id).
    @Test func normBoundNeverDropsATopKItem() {
        let (items, queries) = normSkewedData(seed: 21)
        let ivf = IVFIndex.build(items: items, cells: 16, seed: 7, threads: 2)
        for k in [1, 9, 40, 300, 1200] {
            let want = referenceTopK(queries, items, k: k)
            for kernels in allKernels {
                expectSame(ivf.search(queries, k: k, probe: ivf.cells, threads: 2, kernels: kernels, allowed: { _, _ in true }),
                           want, "norm-skewed \(kernels) k \(k)")
            }
        }
        // With fewer cells probed: the same results as scanning those cells without the bound, i.e. the exact top
        // K of their items (a brute force over the probed cells' items, eligibility standing in for the probe).
        let probe = 4
        var cellOf = [Int32: Int]()
        for c in 0..<ivf.cells {
            for p in ivf.panels.listPanels[c]..<ivf.panels.listPanels[c + 1] {
                for lane in 0..<TopKPanels.width where ivf.panels.ids.base[p * TopKPanels.width + lane] >= 0 {
                    cellOf[ivf.panels.ids.base[p * TopKPanels.width + lane]] = c
                }
            }
        }
        #expect(cellOf.count == items.rows)
        let approx = ivf.search(queries, k: 40, probe: probe, threads: 2)
        for q in 0..<queries.rows {
            let cells = probedCells(ivf, Array(queries.row(q)), probe)
            let inCells = (0..<Int32(items.rows)).filter { cells.contains(cellOf[$0]!) }
            let one = Matrix(rows: 1, cols: queries.cols, values: Array(queries.row(q)))
            let want = referenceTopK(one, items, k: 40, eligible: inCells)[0]
            #expect(approx.ids(q).elementsEqual(want.map(\.id)), "query \(q)")
        }
    }

    /// The cells query q probes: the `probe` largest q·(s_c ĉ_c), ties to the lower cell (as the search ranks them).
    func probedCells(_ ivf: IVFIndex, _ q: [Float], _ probe: Int) -> Set<Int> {
        let scale = (0..<ivf.cells).map { (ivf.maxNorms[$0] * ivf.meanNorms[$0]).squareRoot() }
        let scores: [(Float, Int)] = (0..<ivf.cells).map { c in
            var s: Float = 0
            for j in 0..<q.count { s = ivf.centroids[c, j] * scale[c] * q[j] + s }
            return (s, c)
        }
        return Set(scores.sorted { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }.prefix(probe).map(\.1))
    }

    /// Cells hold their items longest first, and the bound is a prefix: it stops at the first panel whose longest
    /// item times ‖q‖ (with the float slack) is below the threshold; NaN never prunes.
    @Test func cellsAreSortedLongestFirstAndTheBoundIsAPrefix() {
        let (items, _) = normSkewedData(seed: 23)
        let ivf = IVFIndex.build(items: items, cells: 6, seed: 3, threads: 1)
        for c in 0..<ivf.cells {
            let p0 = ivf.panels.listPanels[c], p1 = ivf.panels.listPanels[c + 1]
            let norms = ivf.panelNorms[p0..<p1]
            #expect(norms.elementsEqual(norms.sorted(by: >)), "cell \(c)")
            #expect(ivf.maxNorms[c] == Float(norms.first ?? 0))
        }
        let bound = IVFBound([8, 4, 2, 1, 0], dim: 4, capacity: 1)
        let q = Matrix(rows: 1, cols: 4, values: [1, 1, 1, 1])  // ‖q‖ = 2
        q.values.withUnsafeBufferPointer { v in bound.reset(TopKQueries(base: v.baseAddress!, rows: 1, dim: 4), first: 0, 1) }
        #expect(bound.end(0, 4.5, 0, 5) == 2)      // 2·8, 2·4 ≥ 4.5 > 2·2
        #expect(bound.end(0, 4, 0, 5) == 3)        // 2·2 = 4 reaches 4 (the slack only ever widens)
        #expect(bound.end(0, 16.5, 0, 5) == 0)     // nothing in the cell can reach it
        #expect(bound.end(0, 16.5, 2, 2) == 2)     // empty range
        #expect(bound.end(0, -.infinity, 0, 5) == 5 && bound.end(0, .nan, 0, 5) == 5)
        #expect(bound.end(0, 0, 0, 5) == 5)        // a zero item scores exactly 0: it may still tie at 0
        #expect(bound.reaches(0, 2, 3) && !bound.reaches(0, 2.1, 3))
    }

    @Test func recallOnAHandMadeExample() {
        var exact = TopKResults(k: 3, queries: 3)
        exact.ids = [1, 2, 3, 4, 5, -1, -1, -1, -1]; exact.counts = [3, 2, 0]
        var approx = TopKResults(k: 3, queries: 3)
        approx.ids = [3, 9, 1, 5, -1, -1, 7, -1, -1]; approx.counts = [3, 1, 1]
        // Query 0 finds 2 of 3, query 1 finds 1 of 2, query 2 has nothing to find: 3 / 5.
        #expect(recallAtK(exact: exact, approximate: approx) == 0.6)
        #expect(recallAtK(exact: exact, approximate: exact) == 1)
        #expect(recallAtK(exact: TopKResults(k: 3, queries: 2), approximate: TopKResults(k: 3, queries: 2)) == 1)
    }

    /// Scores pack into keys whose integer order is (score descending, id ascending), and back.
    @Test func keysOrderScoresThenIds() {
        let scores: [Float] = [-.infinity, -3.5, -1e-30, -0.0, 0, 1e-30, 2, 2, .greatestFiniteMagnitude]
        for (i, s) in scores.enumerated() {
            #expect(topKScore(topKKey(s, Int32(i))) == s && topKID(topKKey(s, Int32(i))) == Int32(i))
        }
        for i in 1..<scores.count {
            #expect(topKKey(scores[i], 7) <= topKKey(scores[i - 1], 7))
        }
        #expect(topKKey(2, 3) < topKKey(2, 4) && topKKey(-0.0, 1) < topKKey(0, 2))
    }
}
