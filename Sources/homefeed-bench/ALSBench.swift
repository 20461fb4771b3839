import Foundation
import HomefeedCore
import HomefeedModels

/// `homefeed-bench als`: weighted ALS seconds per iteration on the interaction file als_reference.py reads.
///
///     als --file TSV [--weighted] [--alpha A] [--factors F] [--iterations N] [--regularization L] [--cg S]
///         [--no-direct] [--threads T] [--repeat R] [--loss] [--fold-in-users U [--fold-in-entries E]]
///
/// Lines are `user item [weight …]`, tab- or comma-separated, ids interned in order of first appearance and
/// repeated pairs summed, as als_reference.py does; with `--weighted` the confidence is alpha × weight (implicit's
/// `alpha * Cui`), else every line weighs 1. `--no-direct` runs CG on every row, like implicit (by default short rows
/// get the exact direct solve when it is cheaper). `--loss` adds one untimed fit printing the loss after each
/// iteration (what the time per iteration buys). `--fold-in-users` then times `ALS.foldIn` of U synthetic users
/// with E entries each (videos drawn like the file's entries) against the fitted video factors, in one call: cold
/// (exact solves), warm (CG from those solutions), cold through a `FoldInPlan`; then cold in blocks of 4096 with
/// threads: 1 inside a parallel loop, as the refresh calls it, without and with the plan.
func benchALS(_ a: [String]) throws {
    guard let file = arg("file", a) else { throw HomefeedError("als: --file TSV is required") }
    let weighted = a.contains("--weighted")
    let alpha = Float(arg("alpha", a).flatMap(Double.init) ?? 1)
    var t0 = TimeFormat.monotonic()
    let (c, lines) = try loadInteractions(file, weighted: weighted, alpha: alpha)
    print("loaded \(lines) lines → \(c.rows) users × \(c.cols) items, nnz \(c.nnz) in \(Format.fixed(TimeFormat.monotonic() - t0, 2)) s")
    var config = ALSConfig()
    config.factors = intArg("factors", a, 64); config.iterations = intArg("iterations", a, 15)
    config.regularization = Float(arg("regularization", a).flatMap(Double.init) ?? 0.05)
    config.cgSteps = intArg("cg", a, 3); config.threads = intArg("threads", a, 2)
    config.directSolves = !a.contains("--no-direct")
    var best = Double.infinity
    var model: ALSModel?
    for r in 0..<intArg("repeat", a, 3) {
        t0 = TimeFormat.monotonic()
        model = ALS.fit(c, config: config)
        let s = TimeFormat.monotonic() - t0
        print("fit \(r + 1): \(Format.fixed(s, 3)) s, \(Format.fixed(s / Double(config.iterations), 4)) s/iteration")
        best = min(best, s)
    }
    print("bench als seconds_per_iteration=\(Format.fixed(best / Double(config.iterations), 4)) fit_seconds=\(Format.fixed(best, 3)) nnz=\(c.nnz) users=\(c.rows) items=\(c.cols) factors=\(config.factors) threads=\(config.threads) cg=\(config.cgSteps) direct=\(config.directSolves) weighted=\(weighted) alpha=\(alpha)")
    if a.contains("--loss") {
        var losses: [String] = []
        _ = ALS.fit(c, config: config, trackLoss: true) { _, l in losses.append(Format.fixed(l, 1)) }
        print("loss per iteration (direct=\(config.directSolves)): \(losses.joined(separator: " "))")
    }
    let users = intArg("fold-in-users", a, 0)
    if users > 0, let model { benchFoldIn(model, c, users: users, entries: intArg("fold-in-entries", a, 20), config: config) }
}

/// Fold-in timings (see `benchALS`).
func benchFoldIn(_ model: ALSModel, _ c: SparseRows, users: Int, entries: Int, config: ALSConfig) {
    var rng = SeededRandom(seed: 11)
    var ri: [Int32] = [], ci: [Int32] = [], vi: [Float] = []
    ri.reserveCapacity(users * entries); ci.reserveCapacity(users * entries); vi.reserveCapacity(users * entries)
    for u in 0..<users {
        for _ in 0..<entries {
            ri.append(Int32(u)); ci.append(c.columns[rng.nextInt(c.nnz)]); vi.append(Float(1 + rng.nextInt(3)))
        }
    }
    let rows = SparseRows(rows: users, cols: c.cols, rowIndices: ri, colIndices: ci, values: vi)
    let threads = config.threads
    var t0 = TimeFormat.monotonic()
    let gram = ALS.gramian(model.videos, threads: threads)
    let gramSeconds = TimeFormat.monotonic() - t0
    t0 = TimeFormat.monotonic()
    let cold = ALS.foldIn(rows, videos: model.videos, gram: gram, config: config, threads: threads)
    let coldSeconds = TimeFormat.monotonic() - t0
    t0 = TimeFormat.monotonic()
    let warm = ALS.foldIn(rows, videos: model.videos, gram: gram, config: config, initial: cold, threads: threads)
    let warmSeconds = TimeFormat.monotonic() - t0
    var drift = 0.0
    for k in 0..<warm.values.count { drift = max(drift, Double(abs(warm.values[k] - cold.values[k]))) }
    // As the refresh: blocks of 4096 users, each folded in with threads: 1 from a parallel loop.
    let block = 4096, blocks = (users + block - 1) / block
    func perBlock(_ plan: FoldInPlan?) -> Double {
        let t0 = TimeFormat.monotonic()
        parallelFor(blocks, threads: threads, chunk: 1) { _, range in
            for b in range {
                let lo = b * block, hi = min(users, lo + block)
                let off = Array(rows.offsets[lo...hi]).map { $0 - rows.offsets[lo] }
                let part = SparseRows(rows: hi - lo, cols: rows.cols, offsets: off,
                                      columns: Array(rows.columns[rows.offsets[lo]..<rows.offsets[hi]]),
                                      values: Array(rows.values[rows.offsets[lo]..<rows.offsets[hi]]))
                if let plan { _ = ALS.foldIn(part, plan: plan, threads: 1) }
                else { _ = ALS.foldIn(part, videos: model.videos, gram: gram, config: config, threads: 1) }
            }
        }
        return TimeFormat.monotonic() - t0
    }
    let blockSeconds = perBlock(nil)
    t0 = TimeFormat.monotonic()
    let plan = FoldInPlan(videos: model.videos, gram: gram, config: config, threads: threads)
    let planSeconds = TimeFormat.monotonic() - t0
    t0 = TimeFormat.monotonic()
    _ = ALS.foldIn(rows, plan: plan, threads: threads)
    let planColdSeconds = TimeFormat.monotonic() - t0
    let planBlockSeconds = perBlock(plan)
    print("fold-in \(users) users × \(entries) entries (nnz \(rows.nnz)), \(config.factors) factors, \(threads) threads: gramian \(Format.fixed(gramSeconds, 3)) s; one call: cold (exact) \(Format.fixed(coldSeconds, 2)) s, warm (\(config.cgSteps) CG steps) \(Format.fixed(warmSeconds, 2)) s (max |warm − cold| \(Format.fixed(drift, 6))); FoldInPlan built in \(Format.fixed(planSeconds, 2)) s, cold through it \(Format.fixed(planColdSeconds, 2)) s; cold in blocks of \(block) with threads 1: \(Format.fixed(blockSeconds, 2)) s, through the plan \(Format.fixed(planBlockSeconds, 2)) s")
    print("bench als_foldin users=\(users) entries=\(entries) cold_seconds=\(Format.fixed(coldSeconds, 3)) warm_seconds=\(Format.fixed(warmSeconds, 3)) plan_seconds=\(Format.fixed(planSeconds, 3)) plan_cold_seconds=\(Format.fixed(planColdSeconds, 3)) blocks_cold_seconds=\(Format.fixed(blockSeconds, 3)) plan_blocks_cold_seconds=\(Format.fixed(planBlockSeconds, 3)) gramian_seconds=\(Format.fixed(gramSeconds, 3)) threads=\(threads) direct=\(config.directSolves)")
}

/// `user item [weight …]` lines → the confidence matrix (rows: users in order of first appearance) and the line
/// count. One pass over the bytes; ids interned in an open-addressing table over the file's own bytes.
func loadInteractions(_ path: String, weighted: Bool, alpha: Float) throws -> (SparseRows, Int) {
    guard let data = FileManager.default.contents(atPath: path) else { throw HomefeedError("als: cannot read \(path)") }
    let bytes = [UInt8](data)
    var users = ByteInterner(), items = ByteInterner()
    var ri: [Int32] = [], ci: [Int32] = [], vi: [Float] = []
    let guess = bytes.count / 16
    ri.reserveCapacity(guess); ci.reserveCapacity(guess); vi.reserveCapacity(guess)
    var lines = 0
    try bytes.withUnsafeBufferPointer { buf in
        let p = buf.baseAddress!, n = buf.count
        var i = 0
        var first = true
        while i < n {
            // Fields of one line: [start, end) of the first three.
            var fs = (0, 0, 0), fe = (0, 0, 0)
            var field = 0, start = i
            while i < n && p[i] != 10 {
                let ch = p[i]
                if ch == 9 || ch == 44 {
                    if field == 0 { fs.0 = start; fe.0 = i } else if field == 1 { fs.1 = start; fe.1 = i } else if field == 2 { fs.2 = start; fe.2 = i }
                    field += 1; start = i + 1
                }
                i += 1
            }
            var end = i
            if end > start && p[end - 1] == 13 { end -= 1 }
            if field == 0 { fs.0 = start; fe.0 = end } else if field == 1 { fs.1 = start; fe.1 = end } else if field == 2 { fs.2 = start; fe.2 = end }
            let count = field + 1
            i += 1
            if end == fs.0 && count == 1 { continue }  // blank line
            guard count >= 2 else { throw HomefeedError("als: \(path):\(lines + 1): expected user and item") }
            let weight: Float? = (weighted && count >= 3) ? parseNumber(p, fs.2, fe.2) : 1
            if first {
                first = false
                let a = String(decoding: UnsafeBufferPointer(start: p + fs.0, count: fe.0 - fs.0), as: UTF8.self).lowercased()
                let b = String(decoding: UnsafeBufferPointer(start: p + fs.1, count: fe.1 - fs.1), as: UTF8.self).lowercased()
                let names: Set<String> = ["user", "userid", "user_id", "uid", "users", "item", "itemid", "item_id", "iid",
                                          "items", "video", "videoid", "video_id", "movieid", "movie_id"]
                if names.contains(a) || names.contains(b) || weight == nil { continue }  // header line
            }
            guard let w = weight else { throw HomefeedError("als: \(path): bad weight on line \(lines + 1)") }
            ri.append(users.intern(p, fs.0, fe.0)); ci.append(items.intern(p, fs.1, fe.1)); vi.append(w)
            lines += 1
        }
    }
    let c = SparseRows(rows: users.count, cols: items.count, rowIndices: ri, colIndices: ci, values: vi)
    if alpha == 1 { return (c, lines) }
    return (SparseRows(rows: c.rows, cols: c.cols, offsets: c.offsets, columns: c.columns, values: c.values.map { alpha * $0 }), lines)
}

/// A decimal number ([-]digits[.digits], or anything Double parses), nil if it is not one.
func parseNumber(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Float? {
    var i = s, neg = false
    if i < e && p[i] == 45 { neg = true; i += 1 }
    var v = 0.0, digits = 0
    while i < e && p[i] >= 48 && p[i] <= 57 { v = v * 10 + Double(p[i] - 48); i += 1; digits += 1 }
    if i < e && p[i] == 46 {
        i += 1
        var scale = 0.1
        while i < e && p[i] >= 48 && p[i] <= 57 { v += Double(p[i] - 48) * scale; scale *= 0.1; i += 1; digits += 1 }
    }
    if i == e && digits > 0 { return Float(neg ? -v : v) }
    return Double(String(decoding: UnsafeBufferPointer(start: p + s, count: e - s), as: UTF8.self)).map { Float($0) }
}

/// Byte strings → dense ids in order of first appearance (linear probing; keys are ranges of the input bytes).
struct ByteInterner {
    private var slots = [Int32](repeating: -1, count: 1 << 16)
    private var hashes: [UInt64] = []
    private var ranges: [(Int, Int)] = []
    var count: Int { ranges.count }

    mutating func intern(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Int32 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for k in s..<e { h = (h ^ UInt64(p[k])) &* 0x100_0000_01b3 }
        h = StableHash.mix64(h)
        var mask = slots.count - 1
        var j = Int(truncatingIfNeeded: h) & mask
        while true {
            let id = slots[j]
            if id < 0 { break }
            let (rs, re) = ranges[Int(id)]
            if hashes[Int(id)] == h && re - rs == e - s && memcmp(p + rs, p + s, e - s) == 0 { return id }
            j = (j + 1) & mask
        }
        let id = Int32(ranges.count)
        ranges.append((s, e)); hashes.append(h)
        if ranges.count * 2 > slots.count {
            slots = [Int32](repeating: -1, count: slots.count * 2)
            mask = slots.count - 1
            for (k, hk) in hashes.enumerated() {
                var q = Int(truncatingIfNeeded: hk) & mask
                while slots[q] >= 0 { q = (q + 1) & mask }
                slots[q] = Int32(k)
            }
        } else {
            slots[j] = id
        }
        return id
    }
}
