import HomefeedCore

// Approximate top-K with an inverted file: the eligible items are split into cells by spherical k-means on their
// directions (as faiss does for inner product); a query scores only the items of the `probe` cells it ranks first,
// exactly, with the same kernel and selection as the exact path. Cells are ranked by q·(s_c ĉ_c), ĉ_c the cell's
// unit centroid and s_c = √(max_c · mean_c) of its item norms: between what its longest item (max) and a typical
// one (mean) would score pointing at ĉ_c, so cells of long (popular) vectors are not ranked below short ones of
// the same direction. On the clustered benchmark data it found more of the exact top 100 and top 500 at every
// probe count than faiss's q·ĉ_c, and than the max or the mean alone (jobs/bench/topk.sh).
//
// The search is cell-major: a chunk of queries is inverted into (cell → queries probing it), and each cell's
// panels are scored against groups of up to 6 of those queries at once (register blocking across queries, like
// the exact path), instead of one query at a time. Cells hold their items longest first, so a scan stops as soon
// as ‖q‖·‖x‖ (Cauchy–Schwarz, with a float-rounding slack: `IVFBound`) falls below the query's K-th best so far:
// on MF factors a user's top K are long vectors and most of a probed cell is never scored (the cell of videos
// without interactions, factors ~0, not at all). Sound: the results are the exact top K of the probed cells.

public struct IVFIndex: Sendable {
    /// Number of cells.
    public let cells: Int
    /// Rows of the item matrix (ids are row indices).
    public let itemCount: Int
    public let dim: Int
    /// Items that can be returned (the eligible ones).
    public var eligibleCount: Int { panels.itemCount }
    /// Unit centroid of each cell (cells × dim).
    public let centroids: Matrix
    /// Largest and mean item norm in each cell (0 for an empty cell).
    public let maxNorms: [Float]
    public let meanNorms: [Float]
    /// Items in each cell.
    public let cellSizes: [Int]
    /// The probe ranking vectors √(max_c·mean_c) ĉ_c, one list.
    let probePanels: TopKPanels
    /// The items, one list per cell, longest first within a cell.
    let panels: TopKPanels
    /// ‖x‖ of each panel's longest item (its first), non-increasing within a cell: ‖q‖·panelNorms[p]·(1 + slack)
    /// bounds every score of panel p for query q (Cauchy–Schwarz, see `IVFBound`).
    let panelNorms: [Double]

    /// ~4·√n cells (faiss's rule of thumb: 4·√n to 16·√n), at most n/16 so cells average 16+ items, at least 1.
    public static func defaultCells(itemCount n: Int) -> Int {
        max(1, min(n / 16, Int((4 * Double(n).squareRoot()).rounded())))
    }

    /// Cells to probe by default: 1/16 of them (at least 8, at most all), ~6% of the items scanned. On clustered
    /// synthetic embeddings this gave recall@100 ≈ 0.95 (see /work/notes/retrieval.md); check it on real factors
    /// with `estimateRecall` and set the probe in the configuration.
    public static func defaultProbe(cells: Int) -> Int {
        max(1, min(cells, max(8, (cells + 15) / 16)))
    }

    /// Trains `cells` spherical k-means cells (clamped to the eligible count) on the eligible items' directions,
    /// `iterations` Lloyd rounds from `cells` distinct random items (seeded), on the `trainingSample` longest of
    /// them (default 64·cells: on the benchmark data 32, 64 or 256 per cell gave the same recall, and the time is
    /// proportional; why the longest: `IVFKMeans.train`), then assigns every eligible item to its nearest cell and
    /// sorts each cell longest first (for the norm bound of the search, `IVFBound`). Cost ≈
    /// (iterations·sample + n)·cells·dim multiply-adds. The same seed gives the same index for any thread count.
    /// Rows not in `eligible` (nil = all) are never returned.
    public static func build(items: Matrix, eligible: [Int32]? = nil, cells: Int, iterations: Int = 10, seed: UInt64,
                             threads: Int, trainingSample: Int? = nil) -> IVFIndex {
        let rows = TopKPanels.eligibleRows(eligible, count: items.rows)
        let d = items.cols
        let c = max(1, min(cells, rows.count))
        let norms = itemNorms(items, rows: rows)
        var centroids = [Float](repeating: 0, count: c * d)
        var assignment = [Int32](repeating: 0, count: rows.count)
        if !rows.isEmpty {
            centroids = IVFKMeans.train(items, rows: rows, norms: norms, cells: c, iterations: iterations, seed: seed, threads: threads,
                                        sample: trainingSample ?? 64 * c)
            assignment = IVFKMeans.assign(items, rows: rows, centroids: centroids, cells: c, threads: threads)
        }
        // Items grouped by cell, longest first within a cell (ties by id), and each cell's largest and mean norm.
        var sizes = [Int](repeating: 0, count: c)
        for a in assignment { sizes[Int(a)] += 1 }
        var bounds = [0]
        for s in sizes { bounds.append(bounds[bounds.count - 1] + s) }
        var next = bounds
        var order = [Int](repeating: 0, count: rows.count)  // positions in `rows`, grouped by cell
        for (i, a) in assignment.enumerated() { order[next[Int(a)]] = i; next[Int(a)] += 1 }
        for cell in 0..<c {
            order[bounds[cell]..<bounds[cell + 1]].sort { norms[$0] != norms[$1] ? norms[$0] > norms[$1] : rows[$0] < rows[$1] }
        }
        let ordered = order.map { rows[$0] }
        var maxNorms = [Float](repeating: 0, count: c)
        var sums = [Double](repeating: 0, count: c)
        for cell in 0..<c where sizes[cell] > 0 {
            maxNorms[cell] = Float(norms[order[bounds[cell]]])
            for i in bounds[cell]..<bounds[cell + 1] { sums[cell] += norms[order[i]] }
        }
        let meanNorms = (0..<c).map { sizes[$0] > 0 ? Float(sums[$0] / Double(sizes[$0])) : 0 }
        let scale = (0..<c).map { (maxNorms[$0] * meanNorms[$0]).squareRoot() }
        let probe = Matrix(rows: c, cols: d, values: (0..<(c * d)).map { centroids[$0] * scale[$0 / max(d, 1)] })
        let panels = TopKPanels(items: items, rows: ordered, listBounds: bounds)
        // A panel's bound: its first (longest) item's norm, padding panels' lanes excepted (they score −∞).
        var panelNorms = [Double](repeating: 0, count: panels.panelCount)
        for cell in 0..<c {
            for (slot, i) in order[bounds[cell]..<bounds[cell + 1]].enumerated() where slot % TopKPanels.width == 0 {
                panelNorms[panels.listPanels[cell] + slot / TopKPanels.width] = norms[i]
            }
        }
        return IVFIndex(cells: c, itemCount: items.rows, dim: d, centroids: Matrix(rows: c, cols: d, values: centroids),
                        maxNorms: maxNorms, meanNorms: meanNorms, cellSizes: sizes,
                        probePanels: TopKPanels(items: probe, rows: (0..<c).map { Int32($0) }, listBounds: [0, c]),
                        panels: panels, panelNorms: panelNorms)
    }

    /// ‖x‖ of each of items[rows], in Double, rounded up by a relative 2^-40 (so that it is never below the true norm).
    static func itemNorms(_ items: Matrix, rows: [Int32]) -> [Double] {
        let d = items.cols
        return items.values.withUnsafeBufferPointer { v in
            rows.map { r in
                var n2: Double = 0
                for j in 0..<d { let x = Double(v[Int(r) * d + j]); n2 += x * x }
                return n2.squareRoot() * (1 + 0x1p-40)
            }
        }
    }

    /// Approximate top-K: each query scores the items of its `probe` best-ranked cells (clamped to 1…cells;
    /// probe = cells is the exact search, result for result). Results, ties, `allowed` and threads as
    /// `ExactIndex.search`.
    public func search(_ queries: Matrix, k: Int, probe: Int, threads: Int, allowed: TopKFilter) -> TopKResults {
        search(queries, k: k, probe: probe, threads: threads, kernels: .current, allowed: allowed)
    }

    /// With the given kernels (tests run each).
    func search(_ queries: Matrix, k: Int, probe: Int, threads: Int, kernels: TopKKernels, allowed: TopKFilter) -> TopKResults {
        precondition(queries.cols == dim || queries.rows == 0, "IVFIndex.search: query dim \(queries.cols) ≠ item dim \(dim)")
        var out = TopKResults(k: k, queries: queries.rows)
        let kk = min(k, eligibleCount), p = max(1, min(probe, cells))
        if kk == 0 || queries.rows == 0 { return out }
        TopKSearch.withRaw(queries, &out) { q, o in
            IVFSearch.run(kernels, self, q, k: kk, probe: p, threads: threads, out: o, allowed: allowed)
        }
        return out
    }

    public func search(_ queries: Matrix, k: Int, probe: Int, threads: Int) -> TopKResults {
        search(queries, k: k, probe: probe, threads: threads, allowed: { _, _ in true })
    }

    /// recall@k of `probe` against the exact search (probe = cells) on up to `sample` queries spread evenly over
    /// `queries` (the run's own embeddings), with the same `allowed`.
    public func estimateRecall(_ queries: Matrix, k: Int, probe: Int, sample: Int = 256, threads: Int,
                               allowed: TopKFilter) -> Double {
        let n = min(sample, queries.rows)
        if n == 0 { return 1 }
        let picked = (0..<n).map { $0 * queries.rows / n }
        var values = [Float]()
        values.reserveCapacity(n * dim)
        for r in picked { values += queries.row(r) }
        let q = Matrix(rows: n, cols: dim, values: values)
        let remapped: TopKFilter = { i, item in allowed(picked[i], item) }
        let exact = search(q, k: k, probe: cells, threads: threads, allowed: remapped)
        let approx = search(q, k: k, probe: probe, threads: threads, allowed: remapped)
        return recallAtK(exact: exact, approximate: approx)
    }
}

// MARK: - k-means

enum IVFKMeans {
    /// Spherical k-means on the directions of items[rows]: unit centroids (cells × d, row-major). Deterministic for
    /// a seed whatever the thread count: assignments are exact (ties to the lower cell) and the centroid sums run
    /// in item order.
    static func train(_ items: Matrix, rows: [Int32], norms: [Double], cells: Int, iterations: Int, seed: UInt64,
                      threads: Int, sample: Int) -> [Float] {
        let d = items.cols
        var rng = SeededRandom(seed: seed)
        // Training rows: the `sample` longest (ties by id) when there are more, in id order. An inner-product top K
        // is made of long vectors (in MF factors, popular videos; the ~40 % of videos without interactions have
        // factors ~0), so the cells go where results are: on real MF factors, 1 M videos, 4096 cells, recall@500
        // 0.954 → 0.958 at 256 probes and 0.937 → 0.944 at 192 against a uniform sample; the short items are still
        // assigned to their nearest cell, where the norm bound skips them.
        var training = rows
        let m = max(cells, min(sample, rows.count))
        if m < training.count {
            let byNorm = training.indices.sorted { norms[$0] != norms[$1] ? norms[$0] > norms[$1] : $0 < $1 }
            training = byNorm.prefix(m).map { training[$0] }.sorted()
        }
        // Start: `cells` distinct training items, by a second partial shuffle.
        var order = Array(0..<training.count)
        for i in 0..<cells { order.swapAt(i, i + rng.nextInt(order.count - i)) }
        var centroids = [Float](repeating: 0, count: cells * d)
        for c in 0..<cells {
            let r = Int(training[order[c]])
            for j in 0..<d { centroids[c * d + j] = items.values[r * d + j] }
        }
        normalizeRows(&centroids, d)
        for _ in 0..<iterations {
            let a = assign(items, rows: training, centroids: centroids, cells: cells, threads: threads)
            // Mean direction of each cell (sums in Double, in item order).
            var sums = [Double](repeating: 0, count: cells * d)
            var counts = [Int](repeating: 0, count: cells)
            items.values.withUnsafeBufferPointer { v in
                for (i, r) in training.enumerated() {
                    let x = v.baseAddress! + Int(r) * d
                    var n2: Double = 0
                    for j in 0..<d { n2 += Double(x[j]) * Double(x[j]) }
                    if n2 == 0 { continue }
                    let inv = 1 / n2.squareRoot(), c = Int(a[i])
                    counts[c] += 1
                    for j in 0..<d { sums[c * d + j] += Double(x[j]) * inv }
                }
            }
            for c in 0..<cells where counts[c] > 0 {
                for j in 0..<d { centroids[c * d + j] = Float(sums[c * d + j]) }
            }
            splitEmpty(&centroids, counts: &counts, d: d, rng: &rng)
            normalizeRows(&centroids, d)
        }
        return centroids
    }

    /// An empty cell takes half of the largest one: both get its centroid, nudged in opposite random directions.
    static func splitEmpty(_ centroids: inout [Float], counts: inout [Int], d: Int, rng: inout SeededRandom) {
        for e in counts.indices where counts[e] == 0 {
            var big = 0
            for c in counts.indices where counts[c] > counts[big] { big = c }
            if counts[big] < 2 { return }
            var norm: Float = 0
            for j in 0..<d { norm += centroids[big * d + j] * centroids[big * d + j] }
            let eps = 1e-3 * norm.squareRoot()
            for j in 0..<d {
                let r = Float(rng.nextDouble() - 0.5) * eps
                centroids[e * d + j] = centroids[big * d + j] + r
                centroids[big * d + j] -= r
            }
            counts[e] = counts[big] / 2
            counts[big] -= counts[e]
        }
    }

    static func normalizeRows(_ v: inout [Float], _ d: Int) {
        for r in 0..<(d == 0 ? 0 : v.count / d) {
            var n2: Float = 0
            for j in 0..<d { n2 += v[r * d + j] * v[r * d + j] }
            if n2 > 0 { let inv = 1 / n2.squareRoot(); for j in 0..<d { v[r * d + j] *= inv } }
        }
    }

    /// The cell of each of items[rows]: argmax_c x·ĉ_c (the same cell as for the direction x/‖x‖), ties to the
    /// lower cell; the exact top-1 search with the items as queries.
    static func assign(_ items: Matrix, rows: [Int32], centroids: [Float], cells: Int, threads: Int) -> [Int32] {
        let d = items.cols
        let panels = TopKPanels(items: Matrix(rows: cells, cols: d, values: centroids), rows: (0..<cells).map { Int32($0) },
                                listBounds: [0, cells])
        var out = TopKResults(k: 1, queries: rows.count)
        items.values.withUnsafeBufferPointer { v in
            rows.withUnsafeBufferPointer { idx in
                out.ids.withUnsafeMutableBufferPointer { ids in
                    out.scores.withUnsafeMutableBufferPointer { scores in
                        out.counts.withUnsafeMutableBufferPointer { counts in
                            let q = TopKQueries(base: v.baseAddress!, rows: rows.count, dim: d, rowIndex: idx.baseAddress!)
                            let o = TopKOutput(ids: ids.baseAddress!, scores: scores.baseAddress!, counts: counts.baseAddress!, stride: 1)
                            TopKSearch.exhaustive(q, panels: panels, k: 1, threads: threads, out: o, allowed: { _, _ in true })
                        }
                    }
                }
            }
        }
        // A row whose scores are all NaN gets no result: cell 0.
        return out.ids.map { max($0, 0) }
    }
}

// MARK: - Search

enum IVFSearch {
    static func run(_ kernels: TopKKernels, _ index: IVFIndex, _ queries: TopKQueries, k: Int, probe: Int, threads: Int,
                    out: TopKOutput, allowed: TopKFilter) {
        let n = queries.rows, cells = index.cells, dim = index.dim, rows = kernels.rows
        let threads = max(1, threads)
        // Chunks of up to 1024 queries, so that a probed cell is shared by several queries of the chunk (its groups
        // fill up), with candidate buffers of at most 16 MB (2M keys) per worker.
        let chunkQueries = max(64, min(1024, (2 << 20) / (k <= TopKWorkspace.smallK ? k : 2 * k + 64)))
        var chunks = max(1, (n + chunkQueries - 1) / chunkQueries)
        if threads > 1 { chunks = (max(chunks, min(n, threads)) + threads - 1) / threads * threads }
        let perChunk = (n + chunks - 1) / chunks
        let spaces = SlotBuffer<(TopKWorkspace, TopKWorkspace)?>(repeating: nil, count: threads)
        let probeAll: TopKFilter = { _, _ in true }
        // The median cell size, not the mean: MF puts every video without interactions (~0 factors, never ranked
        // high) in one cell, which makes the mean several times the cell a probe actually scans.
        let sizes = (0..<cells).map { index.panels.listPanels[$0 + 1] - index.panels.listPanels[$0] }.sorted()
        let typicalCell = max(1, TopKPanels.width * sizes[sizes.count / 2])
        // The probing rounds, as ranges of probe ranks (why two: 2–3 below): first the cells holding ~4·K items, at
        // most half the probes (all of them below 4 probes), then the rest.
        let firstRound = probe >= 4 ? min(probe / 2, (4 * k + typicalCell - 1) / typicalCell) : probe
        let rounds = [0..<firstRound, firstRound..<probe]
        parallelFor(n, threads: threads, chunk: perChunk) { worker, range in
            let (ws, pws) = spaces.withSlot(worker) { slot in
                if let s = slot { return s }
                let s = (TopKWorkspace(k: k, dim: dim, capacity: perChunk), TopKWorkspace(k: probe, dim: dim, capacity: perChunk))
                slot = s
                return s
            }
            var probes = [Int32](repeating: 0, count: perChunk * probe)
            var unusedScores = [Float](repeating: 0, count: perChunk * probe)
            var cellStart = [Int](repeating: 0, count: cells + 1)
            var members = [Int32](repeating: 0, count: perChunk * probe)
            let bound = IVFBound(index.panelNorms, dim: dim, capacity: perChunk)
            for first in stride(from: range.lowerBound, to: range.upperBound, by: perChunk) {
                let count = min(range.upperBound, first + perChunk) - first
                // 1. Each query's `probe` best cells: the exact search over the probe vectors.
                pws.reset(count)
                pws.pack(queries, first: first, count, rows: rows)
                for g in 0..<((count + rows - 1) / rows) {
                    TopKSearch.scan(kernels, rows: rows, pws, group: pws.packed + g * dim * rows,
                                    members: pws.identity + g * rows, thresholds: pws.thresholds + g * rows,
                                    panels: index.probePanels, 0, index.probePanels.panelCount, queryBase: first, probeAll)
                }
                probes.withUnsafeMutableBufferPointer { pr in
                    unusedScores.withUnsafeMutableBufferPointer { sc in
                        for l in 0..<count {
                            let got = pws.finish(l, ids: pr.baseAddress! + l * probe, scores: sc.baseAddress! + l * probe)
                            for i in got..<probe { pr[l * probe + i] = -1 }
                        }
                    }
                }
                // 2–3. In two rounds: first each query's best-ranked cells (about 4·K items), then the others. The
                // first round sets a K-th best close to the final one, so far fewer of the later cells' items get
                // in only to be pushed out again (−25% inserts at K = 500, 48 probes; 4·K rather than 2·K: −7 % time
                // on real MF factors, 1 M videos, 256 probes; the same on the clustered benchmark set).
                ws.reset(count)
                bound.reset(queries, first: first, count)
                for ranks in rounds where !ranks.isEmpty {
                    // Invert: the queries probing each cell at these ranks, in query order (counting sort).
                    for c in 0...cells { cellStart[c] = 0 }
                    for l in 0..<count {
                        for i in ranks where probes[l * probe + i] >= 0 { cellStart[Int(probes[l * probe + i]) + 1] += 1 }
                    }
                    for c in 0..<cells { cellStart[c + 1] += cellStart[c] }
                    var fill = cellStart
                    for l in 0..<count {
                        for i in ranks {
                            let c = Int(probes[l * probe + i])
                            if c >= 0 { members[fill[c]] = Int32(l); fill[c] += 1 }
                        }
                    }
                    // Each cell against those of its queries that may still find something in it (see `IVFBound`),
                    // in groups of up to 6 (the widest kernel the group fills).
                    for c in 0..<cells {
                        let p0 = index.panels.listPanels[c], p1 = index.panels.listPanels[c + 1]
                        if p0 == p1 { continue }
                        var live = 0
                        for i in cellStart[c]..<cellStart[c + 1] {
                            let l = Int(members[i])
                            if bound.reaches(l, ws.thresholds[l], p0) { members[cellStart[c] + live] = Int32(l); live += 1 }
                        }
                        var i = cellStart[c]
                        let end = cellStart[c] + live
                        while i < end {
                            // A full group, else the last 1–5 queries in the narrowest block that holds them.
                            let take = min(end - i, rows)
                            let block = rows == 6 && take <= 4 ? (take <= 2 ? 2 : 4) : rows
                            members.withUnsafeBufferPointer { mem in
                                scanCell(kernels, rows: block, ws, queries, mem.baseAddress! + i, take, index: index, p0, p1,
                                         bound: bound, queryBase: first, allowed)
                            }
                            i += take
                        }
                    }
                }
                for l in 0..<count { out.finish(ws, local: l, query: first + l) }
            }
        }
    }

    /// `n` ≤ `rows` queries of a chunk, `local[0..<n]`, packed as one group and run over one cell's panels p0..<p1,
    /// but only as far as some query's bound reaches its threshold (recomputed as hits raise the thresholds).
    static func scanCell(_ kernels: TopKKernels, rows: Int, _ ws: TopKWorkspace, _ queries: TopKQueries,
                         _ local: UnsafePointer<Int32>, _ n: Int, index: IVFIndex, _ p0: Int, _ p1: Int, bound: IVFBound,
                         queryBase: Int, _ allowed: TopKFilter) {
        for r in 0..<rows {
            let l = r < n ? local[r] : -1
            ws.groupMembers[r] = l
            ws.groupThresholds[r] = l >= 0 ? ws.thresholds[Int(l)] : .infinity
        }
        ws.packGroup(queries, rows: rows) { r in r < n ? queryBase + Int(local[r]) : -1 }
        let ids = UnsafePointer(index.panels.ids.base)
        var p = p0, end = bound.end(group: local, n, ws.groupThresholds, p0, p1)
        while p < end {
            p = kernels.scan(rows: rows, group: ws.packed, panels: index.panels, from: p, to: end, by: 1,
                             thresholds: ws.groupThresholds, tile: ws.tile)
            if p >= end { break }
            ws.hits(rows: rows, members: ws.groupMembers, ids: ids + p * TopKPanels.width, queryBase: queryBase,
                    groupThresholds: ws.groupThresholds, allowed)
            p += 1
            end = bound.end(group: local, n, ws.groupThresholds, p, end)
        }
    }
}

/// Sound pruning by norms (never changes a result). The kernels' float score s of q·x (summed in dimension order)
/// is within γ_d·Σ_j|q_j x_j| ≤ γ_d·‖q‖‖x‖ of the exact q·x (γ_d = d·u/(1 − d·u), u = 2^-24), and q·x ≤ ‖q‖‖x‖
/// (Cauchy–Schwarz): so s ≤ ‖q‖‖x‖·(1 + slack) with slack = (d + 1)·2^-22 ≥ 2γ_d. A panel whose longest item gives
/// ‖q‖·‖x‖·(1 + slack) below q's K-th best so far cannot enter q's top K, nor can any later panel of its cell (cells
/// are sorted longest first). MF factors make this bite: the top 500 of a user are long vectors, while most
/// videos (those without interactions) have factors near 0 and are skipped without being scored.
/// Per-worker scratch: the bounds ‖q‖·(1 + slack) of the chunk's queries.
final class IVFBound {
    let panelNorms: UnsafeMutablePointer<Double>
    let queryNorms: UnsafeMutablePointer<Double>
    let dim: Int

    init(_ norms: [Double], dim: Int, capacity: Int) {
        self.dim = dim
        panelNorms = .allocate(capacity: max(1, norms.count))
        for (p, v) in norms.enumerated() { panelNorms[p] = v }
        queryNorms = .allocate(capacity: max(1, capacity))
    }
    deinit { panelNorms.deallocate(); queryNorms.deallocate() }

    /// Local query l = query first + l, l < n.
    func reset(_ q: TopKQueries, first: Int, _ n: Int) {
        let slack = 1 + Double(dim + 1) * 0x1p-22
        for l in 0..<n {
            let row = q.row(first + l)
            var n2: Double = 0
            for j in 0..<dim { let x = Double(row[j]); n2 += x * x }
            queryNorms[l] = n2.squareRoot() * (1 + 0x1p-40) * slack
        }
    }

    /// The first panel of from..<to (panels of one cell) whose bound for query l is below threshold t, else `to`.
    /// A NaN query or threshold never prunes (the comparison is false).
    @inline(__always)
    func end(_ l: Int, _ t: Float, _ from: Int, _ to: Int) -> Int {
        IVFBound.search(panelNorms, queryNorms[l], Double(t), from, to)
    }

    /// Whether panel p may hold a score reaching t for query l (false: neither it nor the rest of its cell can).
    @inline(__always)
    func reaches(_ l: Int, _ t: Float, _ p: Int) -> Bool { !(queryNorms[l] * panelNorms[p] < Double(t)) }

    /// The panel where the group's scan may stop: the largest `end` of its n queries.
    @inline(__always)
    func end(group local: UnsafePointer<Int32>, _ n: Int, _ thresholds: UnsafePointer<Float>, _ from: Int, _ to: Int) -> Int {
        var e = from
        for r in 0..<n where e < to { e = max(e, end(Int(local[r]), thresholds[r], e, to)) }
        return e
    }

    /// The first p in lo..<hi with qn·norms[p] < t (norms non-increasing there), else hi.
    @inline(__always)
    static func search(_ norms: UnsafePointer<Double>, _ qn: Double, _ t: Double, _ lo: Int, _ hi: Int) -> Int {
        var lo = lo, hi = hi
        while lo < hi {
            let mid = (lo + hi) / 2
            if qn * norms[mid] < t { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
