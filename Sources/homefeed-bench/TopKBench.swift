import Foundation
import HomefeedCore
import HomefeedModels

/// `homefeed-bench topk`: exact and IVF top-K over the raw f32 files topk_reference.py reads and writes.
///
///     topk --queries Q.f32 --items I.f32 --dim D [--k K] [--threads T] [--repeat R]
///          [--ivf NLIST --nprobe P[,P…] [--seed S]] [--kernel avx2|portable]
///     topk --write-clustered PREFIX [--queries N] [--items M] [--dim D] [--centres C] [--genres G]
///          [--spread S] [--query-spread S] [--seed S]
///
/// The exact search runs once untimed on 64 queries (warm-up), then R times (best reported, with GFLOP/s =
/// 2·N·M·D / s as topk_reference.py counts them). With --ivf it builds the index (timed), then for each nprobe
/// warms up and reports the best of R searches and recall@K against the exact results of this run.
func benchTopK(_ a: [String]) throws {
    if let prefix = arg("write-clustered", a) {
        try writeClustered(prefix: prefix, queries: intArg("queries", a, 1000), items: intArg("items", a, 100_000),
                           dim: intArg("dim", a, 64), centres: intArg("centres", a, 1000), genres: intArg("genres", a, 32),
                           spread: Float(arg("spread", a).flatMap(Double.init) ?? 0.35),
                           querySpread: Float(arg("query-spread", a).flatMap(Double.init) ?? 0.5),
                           seed: UInt64(intArg("seed", a, 1)))
        return
    }
    guard let qf = arg("queries", a), let itf = arg("items", a) else {
        throw HomefeedError("topk: --queries Q.f32 and --items I.f32 are required (or --write-clustered PREFIX)")
    }
    let dim = intArg("dim", a, 64), k = intArg("k", a, 500), threads = intArg("threads", a, 2)
    let repeats = max(1, intArg("repeat", a, 5))
    // The AVX2 kernels run when the CPU has AVX2 + FMA; --kernel portable (or HOMEFEED_KERNELS=portable) forces the others.
    switch arg("kernel", a) {
    case "portable": KernelDispatch.forcePortable = true
    case "avx2" where !KernelDispatch.avx2Supported: throw HomefeedError("topk: --kernel avx2: this CPU lacks AVX2 or FMA")
    case "avx2": KernelDispatch.forcePortable = false
    case nil: break
    case let other?: throw HomefeedError("topk: --kernel avx2|portable, not \(other)")
    }
    let queries = try readF32(qf, dim: dim), items = try readF32(itf, dim: dim)
    let warm = Matrix(rows: min(64, queries.rows), cols: dim, values: Array(queries.values[0..<(min(64, queries.rows) * dim)]))
    let kernel = KernelDispatch.name
    print("data: \(queries.rows) queries, \(items.rows) items, dim \(dim), k \(k), threads \(threads), kernel \(kernel) (avx2: 6 query rows per block, portable: 2)")

    let t0 = TimeFormat.monotonic()
    let exact = ExactIndex(items: items)
    let packSeconds = TimeFormat.monotonic() - t0
    _ = exact.search(warm, k: k, threads: threads)
    var best = Double.infinity, bestCPU = Double.infinity
    var truth = TopKResults(k: k, queries: 0)
    for r in 0..<repeats {
        let t = TimeFormat.monotonic(), c = cpuSeconds()
        truth = exact.search(queries, k: k, threads: threads)
        let s = TimeFormat.monotonic() - t
        best = min(best, s); bestCPU = min(bestCPU, cpuSeconds() - c)
        print("exact search \(r + 1)/\(repeats): \(Format.fixed(s, 4)) s")
    }
    let gflops = 2.0 * Double(queries.rows) * Double(items.rows) * Double(dim) / best / 1e9
    print("exact: index \(Format.fixed(packSeconds, 3)) s, best \(Format.fixed(best, 4)) s = \(Format.fixed(gflops, 1)) GFLOP/s (CPU time of all threads: \(Format.fixed(bestCPU, 4)) s)")
    var tail = ""

    if let nlist = arg("ivf", a).flatMap(Int.init) {
        let probes = (arg("nprobe", a) ?? "16").split(separator: ",").compactMap { Int($0) }
        let t1 = TimeFormat.monotonic()
        let ivf = IVFIndex.build(items: items, cells: nlist, seed: UInt64(intArg("seed", a, 1)), threads: threads)
        let buildSeconds = TimeFormat.monotonic() - t1
        let sizes = ivf.cellSizes.sorted()
        print("ivf: \(ivf.cells) cells (items per cell: min \(sizes[0]) median \(sizes[sizes.count / 2]) max \(sizes[sizes.count - 1])), built in \(Format.fixed(buildSeconds, 2)) s")
        var seconds: [String] = [], recalls: [String] = []
        for p in probes {
            _ = ivf.search(warm, k: k, probe: p, threads: threads)
            var bestIVF = Double.infinity, bestIVFCPU = Double.infinity
            var approx = TopKResults(k: k, queries: 0)
            for _ in 0..<repeats {
                let t = TimeFormat.monotonic(), c = cpuSeconds()
                approx = ivf.search(queries, k: k, probe: p, threads: threads)
                bestIVF = min(bestIVF, TimeFormat.monotonic() - t); bestIVFCPU = min(bestIVFCPU, cpuSeconds() - c)
            }
            let recall = recallAtK(exact: truth, approximate: approx)
            let scanned = Double(ivf.cellSizes.reduce(0, +)) * Double(min(p, ivf.cells)) / Double(ivf.cells)
            print("ivf: nprobe=\(p) (~\(Int(scanned)) items/query) best \(Format.fixed(bestIVF, 4)) s (CPU \(Format.fixed(bestIVFCPU, 4)) s), recall@\(k) vs exact = \(Format.fixed(recall, 4)), \(Format.fixed(best / bestIVF, 1))x faster than exact")
            seconds.append(Format.fixed(bestIVF, 4)); recalls.append(Format.fixed(recall, 4))
        }
        tail = " ivf_build_seconds=\(Format.fixed(buildSeconds, 2)) nlist=\(ivf.cells) nprobe=\(probes.map(String.init).joined(separator: ","))"
            + " ivf_seconds=\(seconds.joined(separator: ",")) ivf_recall=\(recalls.joined(separator: ","))"
    }
    print("bench topk seconds=\(Format.fixed(best, 4)) gflops=\(Format.fixed(gflops, 1)) queries=\(queries.rows) items=\(items.rows) dim=\(dim) k=\(k) threads=\(threads) kernel=\(kernel)\(tail)")
}

/// CPU time of the process (all threads): next to the wall time it shows how much a noisy machine took away.
func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Raw little-endian float32, row-major, `dim` floats a row (topk_reference.py's format).
func readF32(_ path: String, dim: Int) throws -> Matrix {
    guard let d = FileManager.default.contents(atPath: path) else { throw HomefeedError("topk: cannot read \(path)") }
    guard dim > 0, d.count > 0, d.count % (4 * dim) == 0 else {
        throw HomefeedError("topk: \(path): \(d.count) bytes is not a positive multiple of 4·dim = \(4 * dim)")
    }
    var v = [Float](repeating: 0, count: d.count / 4)
    v.withUnsafeMutableBytes { _ = d.copyBytes(to: $0) }
    return Matrix(rows: v.count / dim, cols: dim, values: v)
}

/// Clustered synthetic embeddings in the raw format (PREFIX.items.f32, PREFIX.queries.f32), standing in for MF
/// factors: `genres` random directions; `centres` unit centres around them (unit noise of norm 1, ~45°); each
/// item points at a random centre plus unit noise times `spread`, with a log-normal norm (σ 0.4, like popularity
/// in MF factors); queries the same with `querySpread` and σ 0.3. Items are drawn first, then queries.
func writeClustered(prefix: String, queries nq: Int, items ni: Int, dim d: Int, centres nc: Int, genres ng: Int,
                    spread: Float, querySpread: Float, seed: UInt64) throws {
    var rng = SeededRandom(seed: seed)
    func gauss() -> Float {
        let u1 = max(rng.nextDouble(), 1e-300), u2 = rng.nextDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
    func unit(_ v: [Float]) -> [Float] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / n }
    }
    func around(_ c: [Float], _ spread: Float) -> [Float] {
        let u = unit((0..<d).map { _ in gauss() })
        return unit((0..<d).map { c[$0] + spread * u[$0] })
    }
    let genres = (0..<ng).map { _ in unit((0..<d).map { _ in gauss() }) }
    let centres = (0..<nc).map { _ in around(genres[rng.nextInt(ng)], 1.0) }
    func draw(_ n: Int, spread: Float, normSigma: Float) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(n * d)
        for _ in 0..<n {
            let dir = around(centres[rng.nextInt(nc)], spread)
            let norm = Float(exp(Double(normSigma * gauss())))
            out += dir.map { $0 * norm }
        }
        return out
    }
    let items = draw(ni, spread: spread, normSigma: 0.4)
    let queries = draw(nq, spread: querySpread, normSigma: 0.3)
    for (name, v) in [("items", items), ("queries", queries)] {
        let path = "\(prefix).\(name).f32"
        do { try v.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: path)) }
        catch { throw HomefeedError("topk: cannot write \(path): \(error)") }
        print("wrote \(path) (\(v.count / d) x \(d) float32, \(v.count * 4) bytes)")
    }
}
