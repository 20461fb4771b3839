import HomefeedCore
import HomefeedKernels
import HomefeedKernelsAVX2

// Top-K retrieval by inner product: for every query row q, the K items i with the largest q·x_i.
//
// The exact path never materialises the queries × items score matrix. Items are packed once into panels of 16
// (dimension-major: one SIMD16 load is one dimension of 16 items). A worker takes a chunk of queries, packs them
// in groups of R (6 on the AVX2 kernels, 2 on the portable ones: `TopKKernels`) and, for every L2-sized block of
// panels, runs an R × 16 register-blocked kernel (HomefeedKernels): the scores stay in registers and are compared
// with each query's threshold (its K-th best so far); only a block with a lane at or above it is written out. Such
// a lane becomes a candidate key (score, id) in its query's buffer; a full buffer (2K) keeps its K best (radix
// select), whose K-th raises the threshold. For large K a floor estimated from a small sample raises it from the
// start (`exhaustive`), so a query takes ~2.5·K candidates out of the whole catalog. `ExactIndex` and `IVFIndex`
// (IVF.swift) share all of it.

/// Decides whether item `item` may be returned for query row `query` (seen, disliked, unavailable in the user's
/// country…). Called from worker threads, only for items whose score reaches the query's current K-th best.
public typealias TopKFilter = @Sendable (_ query: Int, _ item: Int32) -> Bool

/// Top-K of a batch of queries: for query q, `count(q)` results at `ids[q*k ..< q*k+count(q)]` (same for scores),
/// best first, ties broken by the lower item id (deterministic). Unused slots hold id −1 and score −∞.
public struct TopKResults: Sendable, Equatable {
    public let k: Int
    public var ids: [Int32]
    public var scores: [Float]
    public var counts: [Int32]

    public init(k: Int, queries: Int) {
        self.k = k
        ids = [Int32](repeating: -1, count: k * queries)
        scores = [Float](repeating: -.infinity, count: k * queries)
        counts = [Int32](repeating: 0, count: queries)
    }

    public var queryCount: Int { counts.count }
    public func count(_ q: Int) -> Int { Int(counts[q]) }
    public func ids(_ q: Int) -> ArraySlice<Int32> { ids[(q * k)..<(q * k + Int(counts[q]))] }
    public func scores(_ q: Int) -> ArraySlice<Float> { scores[(q * k)..<(q * k + Int(counts[q]))] }
    /// Query q's results, best first, as (id, score) pairs.
    public func results(_ q: Int) -> TopKList { TopKList(ids: ids(q), scores: scores(q)) }
}

/// One query's results (a view into `TopKResults`).
public struct TopKList: RandomAccessCollection, Sendable {
    public typealias Element = (id: Int32, score: Float)
    let ids: ArraySlice<Int32>
    let scores: ArraySlice<Float>
    public var startIndex: Int { 0 }
    public var endIndex: Int { ids.count }
    public subscript(i: Int) -> Element { (ids[ids.startIndex + i], scores[scores.startIndex + i]) }
}

/// recall@K = Σ_q |A_q ∩ E_q| / Σ_q |E_q|: the share of the exact results that the approximate search also
/// returned (1 when the exact side is empty). Both must cover the same queries.
public func recallAtK(exact: TopKResults, approximate: TopKResults) -> Double {
    precondition(exact.queryCount == approximate.queryCount, "recallAtK: query counts differ")
    var hits = 0, total = 0
    var found = Set<Int32>()
    for q in 0..<exact.queryCount {
        found.removeAll(keepingCapacity: true)
        for id in approximate.ids(q) { found.insert(id) }
        for id in exact.ids(q) where found.contains(id) { hits += 1 }
        total += exact.count(q)
    }
    return total == 0 ? 1 : Double(hits) / Double(total)
}

/// Exact top-K over a fixed item matrix (brute force, blocked and fused; see the top of this file).
public struct ExactIndex: Sendable {
    let panels: TopKPanels
    /// Rows of the item matrix (ids are row indices).
    public let itemCount: Int
    public var dim: Int { panels.dim }
    /// Items that can be returned (the eligible ones).
    public var eligibleCount: Int { panels.itemCount }

    /// `items`: one row per item (row index = item id returned); rows not listed in `eligible` (nil = all) are
    /// never returned (duplicates in `eligible` are ignored).
    public init(items: Matrix, eligible: [Int32]? = nil) {
        let rows = TopKPanels.eligibleRows(eligible, count: items.rows)
        panels = TopKPanels(items: items, rows: rows, listBounds: [0, rows.count])
        itemCount = items.rows
    }

    /// Exact top-K of every query row: scores q·x_i, best first, ties by lower id; at most min(k, eligibleCount)
    /// results per query (fewer when `allowed` refuses items). `allowed(q, item)` is asked only for items that
    /// reach query q's current K-th best score (a few times K per query, never the whole catalog). Parallel over
    /// chunks of queries (a batch of a few dozen queries uses fewer threads); `threads: 1` runs on the caller's
    /// thread. Scores that are NaN or −∞ are never returned.
    public func search(_ queries: Matrix, k: Int, threads: Int, allowed: TopKFilter) -> TopKResults {
        search(queries, k: k, threads: threads, kernels: .current, allowed: allowed)
    }

    /// With the given kernels (tests run each).
    func search(_ queries: Matrix, k: Int, threads: Int, kernels: TopKKernels, allowed: TopKFilter) -> TopKResults {
        precondition(queries.cols == dim || queries.rows == 0, "ExactIndex.search: query dim \(queries.cols) ≠ item dim \(dim)")
        return TopKSearch.exhaustive(queries, panels: panels, k: k, threads: threads, kernels: kernels, allowed: allowed)
    }

    public func search(_ queries: Matrix, k: Int, threads: Int) -> TopKResults {
        search(queries, k: k, threads: threads, allowed: { _, _ in true })
    }
}

// MARK: - Packed items

/// 64-byte aligned storage, filled while its owner is built and read-only afterwards: that is why it may be
/// shared by worker threads (`@unchecked Sendable`).
final class TopKStorage<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    let count: Int
    init(count: Int, repeating v: T) {
        self.count = count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 64)
            .bindMemory(to: T.self, capacity: max(count, 1))
        base.initialize(repeating: v, count: max(count, 1))
    }
    deinit {
        base.deinitialize(count: max(count, 1))
        base.deallocate()
    }
}

/// Items packed for the kernel: panel p holds 16 items, dimension-major (item lane l, dimension j at
/// (p·dim + j)·16 + l). Items come in lists (one for the exact index, one per cell for IVF), each starting on a
/// panel boundary; padding lanes are zero vectors with id −1 and bias −∞, so they never pass a threshold that a
/// real item has set.
struct TopKPanels: Sendable {
    static let width = 16
    let dim: Int
    let panelCount: Int
    let itemCount: Int
    let values: TopKStorage<Float>
    /// Each lane's score starts from it: 0 for items, −∞ on padding lanes.
    let bias: TopKStorage<Float>
    let ids: TopKStorage<Int32>
    /// List l covers panels listPanels[l] ..< listPanels[l + 1].
    let listPanels: [Int]

    /// Sorted, deduplicated, range-checked eligible rows (all rows when nil).
    static func eligibleRows(_ eligible: [Int32]?, count: Int) -> [Int32] {
        guard let eligible else { return (0..<count).map { Int32($0) } }
        var rows = eligible.sorted()
        var w = 0
        for r in rows where w == 0 || rows[w - 1] != r { rows[w] = r; w += 1 }
        rows.removeLast(rows.count - w)
        let inRange = rows.isEmpty || (rows[0] >= 0 && Int(rows[rows.count - 1]) < count)
        precondition(inRange, "eligible item ids must be in 0..<\(count)")
        return rows
    }

    /// List l = rows[listBounds[l] ..< listBounds[l + 1]].
    init(items: Matrix, rows: [Int32], listBounds: [Int]) {
        let d = items.cols, w = TopKPanels.width
        var starts = [0]
        for l in 0..<(listBounds.count - 1) {
            starts.append(starts[l] + (listBounds[l + 1] - listBounds[l] + w - 1) / w)
        }
        let n = starts.last!
        let values = TopKStorage<Float>(count: n * d * w, repeating: 0)
        let bias = TopKStorage<Float>(count: n * w, repeating: -.infinity)
        let ids = TopKStorage<Int32>(count: n * w, repeating: -1)
        items.values.withUnsafeBufferPointer { src in
            for l in 0..<(listBounds.count - 1) {
                for (slot, r) in rows[listBounds[l]..<listBounds[l + 1]].enumerated() {
                    let p = starts[l] + slot / w, lane = slot % w
                    let row = src.baseAddress! + Int(r) * d
                    let dst = values.base + p * d * w + lane
                    for j in 0..<d { dst[j * w] = row[j] }
                    bias.base[p * w + lane] = 0
                    ids.base[p * w + lane] = r
                }
            }
        }
        self.dim = d; self.panelCount = n; self.itemCount = rows.count
        self.values = values; self.bias = bias; self.ids = ids; self.listPanels = starts
    }
}

// MARK: - Kernels

/// Which copy of the panel kernels (HomefeedKernels/TopKPanelKernels.swift, one source compiled twice) a search
/// runs, and with how many queries per block: the AVX2 copy with 6 × 16 blocks (12 YMM accumulators, ~1.7× the
/// portable speed) when `KernelDispatch` allows it, else the portable copy with 2 × 16 blocks (SSE has 16
/// registers; 6 rows spill). Every kernel returns bit-identical scores, so the choice never changes a result.
struct TopKKernels: Sendable {
    /// Call the AVX2 copy (only ever true when the CPU has AVX2 and FMA).
    let avx2: Bool
    /// Queries per block: 6 or 2 (IVF also runs 2 and 4 on the last queries of a cell when it is 6).
    let rows: Int

    static let portable = TopKKernels(avx2: false, rows: 2)
    /// The portable copy with the AVX2 path's grouping (tests; any CPU).
    static let portableWide = TopKKernels(avx2: false, rows: 6)
    static var avx2Wide: TopKKernels? { KernelDispatch.avx2Supported ? TopKKernels(avx2: true, rows: 6) : nil }
    /// What searches use.
    static var current: TopKKernels { KernelDispatch.useAVX2 ? avx2Wide! : portable }

    /// `topKScanPanels` (see there) with `rows` queries per block, in this copy.
    @inline(__always)
    func scan(rows: Int, group: UnsafePointer<Float>, panels: TopKPanels, from: Int, to: Int, by: Int,
              thresholds: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) -> Int {
        let values = UnsafePointer(panels.values.base), bias = UnsafePointer(panels.bias.base)
        return avx2
            ? topKScanPanelsAVX2(rows: rows, group: group, values: values, bias: bias, dim: panels.dim, from: from, to: to,
                                 by: by, thresholds: thresholds, tile: tile)
            : topKScanPanels(rows: rows, group: group, values: values, bias: bias, dim: panels.dim, from: from, to: to,
                             by: by, thresholds: thresholds, tile: tile)
    }
}

// MARK: - Selection

/// Orders (score, id) pairs as one integer: a smaller key is a better result (higher score, then lower id).
@inline(__always)
func topKKey(_ score: Float, _ id: Int32) -> UInt64 {
    let b = (score + 0).bitPattern  // −0 → +0, so equal scores always tie on the id
    let ordered = b & 0x8000_0000 != 0 ? ~b : b | 0x8000_0000  // increases with the float
    return UInt64(~ordered) << 32 | UInt64(UInt32(bitPattern: id))
}

@inline(__always)
func topKScore(_ key: UInt64) -> Float {
    let o = ~UInt32(truncatingIfNeeded: key >> 32)
    return Float(bitPattern: o & 0x8000_0000 != 0 ? o & 0x7FFF_FFFF : ~o)
}

@inline(__always)
func topKID(_ key: UInt64) -> Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: key)) }

/// Per-worker scratch for a chunk of queries: candidate keys, the K-th best bound and score threshold of each
/// query, packed query groups and a score tile. Owned by one worker at a time (a `SlotBuffer` slot), never shared.
final class TopKWorkspace {
    let k: Int, cap: Int, dim: Int, capacity: Int
    /// Query l's candidates at keys[l·cap ..< l·cap + counts[l]]: sorted when k ≤ smallK, a buffer otherwise.
    let keys: UnsafeMutablePointer<UInt64>
    let counts: UnsafeMutablePointer<Int>
    /// The K-th best key so far (UInt64.max until K candidates): a candidate enters only below it.
    let bounds: UnsafeMutablePointer<UInt64>
    /// max(topKScore(bounds[l]), floors[l]) (−∞ until K candidates), the kernel's filter; +∞ on padding rows so
    /// they never pass.
    let thresholds: UnsafeMutablePointer<Float>
    /// A score the K-th best is expected to reach (exact path's estimate, see `TopKSearch.exhaustive`), else −∞.
    let floors: UnsafeMutablePointer<Float>
    /// Packed query groups (see `pack`), room for `capacity` queries.
    let packed: UnsafeMutablePointer<Float>
    /// Scores of the current tile (6 × 16), and a group's thresholds and members when gathered (IVF).
    let tile: UnsafeMutablePointer<Float>
    let groupThresholds: UnsafeMutablePointer<Float>
    let groupMembers: UnsafeMutablePointer<Int32>
    /// Identity members 0..<capacity (+ padding −1) for contiguous groups.
    let identity: UnsafeMutablePointer<Int32>
    /// Scratch of `topKRadixSelect`.
    let scratch: UnsafeMutablePointer<UInt64>
    let histogram: UnsafeMutablePointer<Int32>
    static let smallK = 32

    init(k: Int, dim: Int, capacity: Int) {
        self.k = k; self.dim = dim; self.capacity = capacity
        cap = k <= TopKWorkspace.smallK ? k : k + max(k, 64)
        keys = .allocate(capacity: max(1, capacity * cap))
        counts = .allocate(capacity: capacity)
        bounds = .allocate(capacity: capacity)
        thresholds = .allocate(capacity: capacity + 6)
        floors = .allocate(capacity: capacity)
        packed = UnsafeMutableRawPointer.allocate(byteCount: max(1, (capacity + 6) * dim) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(1, (capacity + 6) * dim))
        tile = UnsafeMutableRawPointer.allocate(byteCount: 6 * TopKPanels.width * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: 6 * TopKPanels.width)
        groupThresholds = .allocate(capacity: 6)
        groupMembers = .allocate(capacity: 6)
        identity = .allocate(capacity: capacity + 6)
        scratch = .allocate(capacity: max(1, cap))
        histogram = .allocate(capacity: 256)
        for i in 0..<(capacity + 6) { identity[i] = i < capacity ? Int32(i) : -1 }
    }
    deinit {
        keys.deallocate(); counts.deallocate(); bounds.deallocate(); thresholds.deallocate(); floors.deallocate()
        packed.deallocate(); tile.deallocate(); groupThresholds.deallocate(); groupMembers.deallocate()
        identity.deallocate(); scratch.deallocate(); histogram.deallocate()
    }

    /// Empties the first `n` queries; the rows after them (up to a group's padding) become padding.
    func reset(_ n: Int) {
        for l in 0..<(capacity + 6) {
            if l < capacity { counts[l] = 0; bounds[l] = .max; floors[l] = -.infinity }
            thresholds[l] = l < n ? -.infinity : .infinity
        }
    }

    /// Empties local query l again, without a floor.
    func restart(_ l: Int) {
        counts[l] = 0; bounds[l] = .max; floors[l] = -.infinity; thresholds[l] = -.infinity
    }

    /// Packs `n` query rows starting at `first` into groups of `rows`: group g, dimension j, row r at
    /// (g·dim + j)·rows + r (rows past n are zero).
    func pack(_ q: TopKQueries, first: Int, _ n: Int, rows: Int) {
        let groups = (n + rows - 1) / rows
        for g in 0..<groups {
            let dst = packed + g * dim * rows
            for r in 0..<rows {
                let l = g * rows + r
                if l < n {
                    let src = q.row(first + l)
                    for j in 0..<dim { dst[j * rows + r] = src[j] }
                } else {
                    for j in 0..<dim { dst[j * rows + r] = 0 }
                }
            }
        }
    }

    /// Packs one group at `packed`: row r is query `global(r)` (−1 = padding).
    func packGroup(_ q: TopKQueries, rows: Int, global: (Int) -> Int) {
        for r in 0..<rows {
            let g = global(r)
            if g >= 0 {
                let src = q.row(g)
                for j in 0..<dim { packed[j * rows + r] = src[j] }
            } else {
                for j in 0..<dim { packed[j * rows + r] = 0 }
            }
        }
    }

    /// A candidate for local query l (global `query`): kept when it beats the K-th best so far and is allowed.
    @inline(__always)
    func offer(_ l: Int, _ key: UInt64, query: Int, id: Int32, _ allowed: TopKFilter) {
        if key >= bounds[l] || !allowed(query, id) { return }
        let buf = keys + l * cap
        var n = counts[l]
        if k <= TopKWorkspace.smallK {
            // Sorted insert into at most k keys.
            var i = min(n, k - 1)
            while i > 0 && buf[i - 1] > key { buf[i] = buf[i - 1]; i -= 1 }
            buf[i] = key
            n = min(n + 1, k)
            counts[l] = n
            if n == k { bounds[l] = buf[k - 1]; thresholds[l] = max(topKScore(buf[k - 1]), floors[l]) }
            return
        }
        // Append; a full buffer keeps its k best and they bound the k-th best from then on. (The worst of the
        // first k would be a useless bound: about the lowest score of all.)
        buf[n] = key; n += 1
        if n == cap {
            topKRadixSelect(buf, n, k, scratch: scratch, histogram: histogram)
            n = k
            bounds[l] = buf[k - 1]; thresholds[l] = max(topKScore(buf[k - 1]), floors[l])
        }
        counts[l] = n
    }

    /// The lanes of the tile that reach their row's threshold, offered to their query. `members[r]`: the local
    /// query of row r (−1 = padding); `groupThresholds[r]` is refreshed for the kernel's next panel.
    @inline(never)
    func hits(rows: Int, members: UnsafePointer<Int32>, ids: UnsafePointer<Int32>, queryBase: Int,
              groupThresholds: UnsafeMutablePointer<Float>, _ allowed: TopKFilter) {
        let w = TopKPanels.width
        for r in 0..<rows {
            let l = Int(members[r])
            if l < 0 { continue }
            let row = tile + r * w
            // Rows without a hit cost one vector test; in the others (about one per tile) a scalar pass over the
            // 16 lanes, against the threshold as this row's own inserts raise it.
            if !topKAnyReached(topKReached(topKLoad16(row), thresholds[l])) { continue }
            for lane in 0..<w where row[lane] - thresholds[l] >= 0 {  // as topKReached: −∞ never passes −∞
                let id = ids[lane]
                if id >= 0 { offer(l, topKKey(row[lane], id), query: queryBase + l, id: id, allowed) }
            }
            groupThresholds[r] = thresholds[l]
        }
    }

    /// False when query l's floor may have hidden results: every candidate reached the floor, so with k of them
    /// the floor hid nothing, with fewer it may have.
    func reachedFloor(_ l: Int) -> Bool { floors[l] == -.infinity || counts[l] >= k }

    /// Query l's final results, best first, into ids/scores (at most k); returns how many.
    func finish(_ l: Int, ids: UnsafeMutablePointer<Int32>, scores: UnsafeMutablePointer<Float>) -> Int {
        let buf = keys + l * cap
        var n = counts[l]
        if n > k { topKRadixSelect(buf, n, k, scratch: scratch, histogram: histogram); n = k }
        if k > TopKWorkspace.smallK { var b = UnsafeMutableBufferPointer(start: buf, count: n); b.sort() }
        for i in 0..<n { ids[i] = topKID(buf[i]); scores[i] = topKScore(buf[i]) }
        return n
    }
}

/// Moves the k smallest of a[0..<n] (distinct keys) to a[0..<k] with a[k−1] the k-th smallest; a[k..<n] is left
/// undefined. Radix select: one pass for the key range, one for a histogram of 256 buckets over the keys' top
/// differing bits, one that keeps the buckets below the k-th's and gathers that bucket into `scratch` (n keys),
/// then the same inside that bucket until it is small enough for a quickselect. ~1.5× faster than a quickselect of
/// the whole buffer, whose comparisons are unpredictable branches.
func topKRadixSelect(_ a: UnsafeMutablePointer<UInt64>, _ n: Int, _ k: Int, scratch: UnsafeMutablePointer<UInt64>,
                     histogram hist: UnsafeMutablePointer<Int32>) {
    guard k > 0 && k < n else { return }
    if n < 256 { topKSelect(a, n, k); return }
    var lo = UInt64.max, hi: UInt64 = 0
    for i in 0..<n { lo = min(lo, a[i]); hi = max(hi, a[i]) }
    // a − lo ≤ hi − lo < 2^bits, so bucket = (a − lo) >> (bits − 8) < 256, and a bucket's range is < 2^(bits − 8).
    let shift = max(0, 64 - (hi - lo).leadingZeroBitCount - 8)
    for b in 0..<256 { hist[b] = 0 }
    for i in 0..<n { hist[Int(truncatingIfNeeded: (a[i] &- lo) >> UInt64(shift))] &+= 1 }
    var below = 0, kth = 0
    while below + Int(hist[kth]) < k { below += Int(hist[kth]); kth += 1 }
    var kept = 0, gathered = 0
    for i in 0..<n {
        // Branch-free (the bucket of a key is unpredictable): always store, advance the right cursor.
        let v = a[i], b = Int(truncatingIfNeeded: (v &- lo) >> UInt64(shift))
        a[kept] = v; scratch[gathered] = v
        kept &+= b < kth ? 1 : 0; gathered &+= b == kth ? 1 : 0
    }
    let need = k - below
    if need < gathered {
        // The same inside the bucket (its range is 256× narrower), with the free tail of `a` as scratch.
        topKRadixSelect(scratch, gathered, need, scratch: a + kept, histogram: hist)
    } else {
        // The whole bucket: its largest goes last.
        var m = 0
        for i in 1..<gathered where scratch[i] > scratch[m] { m = i }
        scratch.swapAt(m, gathered - 1)
    }
    for i in 0..<need { a[kept + i] = scratch[i] }
}

/// Moves the k smallest of a[0..<n] to a[0..<k] with a[k−1] the k-th smallest (quickselect, median of three;
/// keys are distinct because ids are).
func topKSelect(_ a: UnsafeMutablePointer<UInt64>, _ n: Int, _ k: Int) {
    guard k > 0 && k < n else { return }
    @inline(__always) func swap(_ i: Int, _ j: Int) { a.swapAt(i, j) }
    var lo = 0, hi = n - 1
    let target = k - 1
    while hi > lo {
        let mid = lo + (hi - lo) / 2
        if a[mid] < a[lo] { swap(mid, lo) }
        if a[hi] < a[lo] { swap(hi, lo) }
        if a[hi] < a[mid] { swap(hi, mid) }
        let pivot = a[mid]
        var i = lo, j = hi
        while i <= j {
            while a[i] < pivot { i += 1 }
            while a[j] > pivot { j -= 1 }
            if i <= j { swap(i, j); i += 1; j -= 1 }
        }
        if target <= j { hi = j } else if target >= i { lo = i } else { return }
    }
}

extension UnsafeMutablePointer {
    @inline(__always)
    fileprivate func swapAt(_ i: Int, _ j: Int) { let t = self[i]; self[i] = self[j]; self[j] = t }
}

/// Output rows written by several workers, each query's slots by exactly one (hence `@unchecked Sendable`).
struct TopKOutput: @unchecked Sendable {
    let ids: UnsafeMutablePointer<Int32>
    let scores: UnsafeMutablePointer<Float>
    let counts: UnsafeMutablePointer<Int32>
    let stride: Int

    /// Query `q` (global) gets local query l's results.
    func finish(_ ws: TopKWorkspace, local l: Int, query q: Int) {
        counts[q] = Int32(ws.finish(l, ids: ids + q * stride, scores: scores + q * stride))
    }
}

/// The query matrix, read-only for the duration of a search (hence `@unchecked Sendable`). Query i is row i, or
/// row rowIndex[i] when a subset of a matrix is searched (k-means assigns its sample in place).
struct TopKQueries: @unchecked Sendable {
    let base: UnsafePointer<Float>
    let rows: Int
    let dim: Int
    var rowIndex: UnsafePointer<Int32>? = nil

    @inline(__always)
    func row(_ i: Int) -> UnsafePointer<Float> { base + (rowIndex.map { Int($0[i]) } ?? i) * dim }
}

// MARK: - Exhaustive search

enum TopKSearch {
    /// Fills `out` for every query; `body(queries, output)` runs with raw views of both.
    static func withRaw(_ queries: Matrix, _ out: inout TopKResults, _ body: (TopKQueries, TopKOutput) -> Void) {
        let k = out.k
        queries.values.withUnsafeBufferPointer { qv in
            out.ids.withUnsafeMutableBufferPointer { ids in
                out.scores.withUnsafeMutableBufferPointer { scores in
                    out.counts.withUnsafeMutableBufferPointer { counts in
                        body(TopKQueries(base: qv.baseAddress!, rows: queries.rows, dim: queries.cols),
                             TopKOutput(ids: ids.baseAddress!, scores: scores.baseAddress!, counts: counts.baseAddress!, stride: k))
                    }
                }
            }
        }
    }

    /// Every query against every panel, fused with the top-K selection.
    static func exhaustive(_ queries: Matrix, panels: TopKPanels, k: Int, threads: Int, kernels: TopKKernels,
                           allowed: TopKFilter) -> TopKResults {
        var out = TopKResults(k: k, queries: queries.rows)
        if min(k, panels.itemCount) == 0 || queries.rows == 0 { return out }
        withRaw(queries, &out) { q, o in exhaustive(q, panels: panels, k: k, threads: threads, kernels: kernels, out: o, allowed: allowed) }
        return out
    }

    static func exhaustive(_ queries: TopKQueries, panels: TopKPanels, k: Int, threads: Int, kernels: TopKKernels = .current,
                           out: TopKOutput, allowed: TopKFilter) {
        let k = min(k, panels.itemCount)
        if k == 0 || queries.rows == 0 { return }
        let rows = kernels.rows, dim = panels.dim, w = TopKPanels.width, n = queries.rows
        let threads = max(1, threads)
        // Chunks of whole groups (≤ 96 queries: their packed rows, 24 KB at dim 64, stay in L1 next to the panel
        // being scored), a multiple of the thread count when there are several, so workers end together.
        let groups = (n + rows - 1) / rows
        let maxGroups = max(1, 96 / rows)
        var chunks = (groups + maxGroups - 1) / maxGroups
        if threads > 1 { chunks = max(chunks, min(groups, threads)); chunks = (chunks + threads - 1) / threads * threads }
        let groupsPerChunk = (groups + chunks - 1) / chunks
        let capacity = groupsPerChunk * rows
        // Blocks of 256 KB of panels stay in L2 while every group of a chunk runs over them.
        let blockPanels = max(1, (256 << 10) / (dim * w * 4))
        // With K ≥ ~80 of a large catalog, a floor per query: the j-th best score (j = 32, or 16 when K < 200) of a
        // strided sample of S = j/2.5 · N/K items is, in expectation, the 2.5·K-th best of the whole catalog. The
        // main pass then offers only items reaching it (~2.5·K per query) instead of everything above the K-th
        // best so far, which starts at −∞ and rises slowly (~K·(1 + ln(N/K)) offers, most pushed out again).
        // Still exact: a query left with fewer than K results above its floor is rescanned without one (rare by
        // design: its sample must be ~3.4 (j = 32) or ~2.4 (j = 16) standard deviations off). S ≤ N/12.
        let sampleRank = k >= 200 ? 32 : 16
        let samplePanels = Int((Double(sampleRank) / 2.5 * Double(panels.itemCount) / Double(k) / Double(w)).rounded(.up))
        let sampleStep = samplePanels * 12 <= panels.panelCount && k > TopKWorkspace.smallK
            ? panels.panelCount / samplePanels : 0
        let spaces = SlotBuffer<(TopKWorkspace, TopKWorkspace?)?>(repeating: nil, count: threads)
        parallelFor(groups, threads: threads, chunk: groupsPerChunk) { worker, range in
            let (ws, sws) = spaces.withSlot(worker) { slot in
                if let s = slot { return s }
                let s = (TopKWorkspace(k: k, dim: dim, capacity: capacity),
                         sampleStep > 0 ? TopKWorkspace(k: sampleRank, dim: dim, capacity: capacity) : nil)
                slot = s
                return s
            }
            // A worker running alone gets the whole range: take it a chunk at a time.
            for g0 in stride(from: range.lowerBound, to: range.upperBound, by: groupsPerChunk) {
                let g1 = min(range.upperBound, g0 + groupsPerChunk)
                let first = g0 * rows, count = min(n, g1 * rows) - first
                ws.reset(count)
                ws.pack(queries, first: first, count, rows: rows)
                if let sws {
                    // The floors: each query's sampleRank-th best score in the strided sample.
                    sws.reset(count)
                    for g in 0..<(g1 - g0) {
                        scan(kernels, rows: rows, sws, group: ws.packed + g * dim * rows, members: sws.identity + g * rows,
                             thresholds: sws.thresholds + g * rows, panels: panels, 0, panels.panelCount, by: sampleStep,
                             queryBase: first, { _, _ in true })
                    }
                    for l in 0..<count where sws.counts[l] == sampleRank {
                        ws.floors[l] = topKScore(sws.keys[l * sws.cap + sampleRank - 1])
                        ws.thresholds[l] = ws.floors[l]
                    }
                }
                var b0 = 0
                while b0 < panels.panelCount {
                    let b1 = min(panels.panelCount, b0 + blockPanels)
                    for g in 0..<(g1 - g0) {
                        scan(kernels, rows: rows, ws, group: ws.packed + g * dim * rows, members: ws.identity + g * rows,
                             thresholds: ws.thresholds + g * rows, panels: panels, b0, b1, queryBase: first, allowed)
                    }
                    b0 = b1
                }
                if sws != nil {
                    // A floor above the final K-th best may have hidden results: rescan those queries without one.
                    var redo = [Int32]()
                    for l in 0..<count where !ws.reachedFloor(l) { ws.restart(l); redo.append(Int32(l)) }
                    redo.withUnsafeBufferPointer { r in
                        for i in stride(from: 0, to: r.count, by: rows) {
                            gathered(kernels, rows: rows, ws, queries, r.baseAddress! + i, min(rows, r.count - i),
                                     panels: panels, 0, panels.panelCount, queryBase: first, allowed)
                        }
                    }
                }
                for l in 0..<count { out.finish(ws, local: l, query: first + l) }
            }
        }
    }

    /// `n` ≤ `rows` queries of a chunk, `local[0..<n]` (not contiguous), packed as one group and run over panels
    /// `from ..< to`.
    @inline(__always)
    static func gathered(_ kernels: TopKKernels, rows: Int, _ ws: TopKWorkspace, _ queries: TopKQueries,
                         _ local: UnsafePointer<Int32>, _ n: Int, panels: TopKPanels, _ from: Int, _ to: Int, queryBase: Int,
                         _ allowed: TopKFilter) {
        for r in 0..<rows {
            let l = r < n ? local[r] : -1
            ws.groupMembers[r] = l
            ws.groupThresholds[r] = l >= 0 ? ws.thresholds[Int(l)] : .infinity
        }
        ws.packGroup(queries, rows: rows) { r in r < n ? queryBase + Int(local[r]) : -1 }
        scan(kernels, rows: rows, ws, group: ws.packed, members: ws.groupMembers, thresholds: ws.groupThresholds,
             panels: panels, from, to, queryBase: queryBase, allowed)
    }

    /// One packed group of `rows` queries against panels from, from + by, … below `to`: the kernels run until a
    /// tile has hits, the hits are offered (raising thresholds), and the kernels resume after that panel.
    @inline(__always)
    static func scan(_ kernels: TopKKernels, rows: Int, _ ws: TopKWorkspace, group: UnsafePointer<Float>,
                     members: UnsafePointer<Int32>, thresholds: UnsafeMutablePointer<Float>, panels: TopKPanels,
                     _ from: Int, _ to: Int, by: Int = 1, queryBase: Int, _ allowed: TopKFilter) {
        let ids = UnsafePointer(panels.ids.base)
        var p = from
        while p < to {
            p = kernels.scan(rows: rows, group: group, panels: panels, from: p, to: to, by: by, thresholds: thresholds,
                             tile: ws.tile)
            if p >= to { break }
            ws.hits(rows: rows, members: members, ids: ids + p * TopKPanels.width, queryBase: queryBase,
                    groupThresholds: thresholds, allowed)
            p += by
        }
    }
}
