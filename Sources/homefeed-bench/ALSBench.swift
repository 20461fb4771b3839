import HomefeedCore
import HomefeedModels

/// `homefeed-bench als`: weighted ALS seconds per iteration on the interaction file als_reference.py reads.
func benchALS(_ a: [String]) throws {
    guard let file = arg("file", a) else { throw HomefeedError("als: --file TSV is required") }
    let text = try String(contentsOfFile: file, encoding: .utf8)
    var users: [String: Int32] = [:], items: [String: Int32] = [:]
    var triples: [(Int32, Int32, Float)] = []
    for line in text.split(separator: "\n") {
        let f = line.split(whereSeparator: { $0 == "\t" || $0 == "," })
        guard f.count >= 2 else { continue }
        let u = users[String(f[0])] ?? { let n = Int32(users.count); users[String(f[0])] = n; return n }()
        let i = items[String(f[1])] ?? { let n = Int32(items.count); items[String(f[1])] = n; return n }()
        triples.append((u, i, f.count >= 3 && a.contains("--weighted") ? Float(f[2]) ?? 1 : 1))
    }
    let c = SparseRows(rows: users.count, cols: items.count, triples: triples)
    var config = ALSConfig()
    config.factors = intArg("factors", a, 64); config.iterations = intArg("iterations", a, 15)
    config.regularization = Float(arg("regularization", a).flatMap(Double.init) ?? 0.05)
    config.cgSteps = intArg("cg", a, 3); config.threads = intArg("threads", a, 2)
    var best = Double.infinity
    for _ in 0..<intArg("repeat", a, 3) {
        let t0 = TimeFormat.monotonic()
        _ = ALS.fit(c, config: config)
        best = min(best, TimeFormat.monotonic() - t0)
    }
    print("bench als seconds_per_iteration=\(Format.fixed(best / Double(config.iterations), 4)) fit_seconds=\(Format.fixed(best, 3)) nnz=\(c.nnz) users=\(c.rows) items=\(c.cols) factors=\(config.factors) threads=\(config.threads) cg=\(config.cgSteps)")
}
