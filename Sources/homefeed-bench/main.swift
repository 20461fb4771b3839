import Foundation
import HomefeedCore
import HomefeedData
import HomefeedHTTP
import HomefeedLookup
import HomefeedModels
import HomefeedStore

// homefeed-bench: the measurements behind docs/BENCHMARKS.md. Build with -c release; each subcommand prints
// readable lines and a last `bench NAME key=value …` line.
let usage = """
usage: homefeed-bench COMMAND [options]
  csv --data DIR                         load a dataset folder; interactions rows/s end to end (typed columns, interned ids)
  synth-store --store DIR --users N [--videos M] [--entries K] [--seed S] [--zipf A]
                                         publish a store version of N users (ids u0000000…) with K-entry random lists (videos uniform, or Zipf(A))
  store-write --dir DIR --users N [--entries K] [--repeat R]
                                         UserListWriter (encode + key + SST) vs a bare SstFileWriter of the same bytes
  als --file TSV [--weighted] [--alpha A] [--factors F] [--iterations N] [--regularization L] [--cg S] [--no-direct]
      [--threads T] [--repeat R] [--loss] [--fold-in-users U [--fold-in-entries E]]
                                         weighted ALS seconds per iteration on `user item [weight]` lines (as als_reference.py)
  topk --queries Q.f32 --items I.f32 --dim D [--k K] [--threads T] [--repeat R] [--ivf NLIST --nprobe P[,P…] [--seed S]] [--kernel avx2|portable]
                                         exact (and IVF) top-K over raw float32 matrices (as topk_reference.py)
  topk --write-clustered PREFIX [--queries N] [--items M] [--dim D] [--centres C] [--genres G] [--spread S] [--query-spread S] [--seed S]
                                         clustered synthetic embeddings in that raw format (stand-in for MF factors)
  lookup --store DIR --users N [--requests R] [--limit L] [--cache-mb MB] [--query Q]
                                         in-process request cost: HTTP parse + get + filters + JSON, random users
"""

func arg(_ name: String, _ a: [String]) -> String? {
    guard let i = a.firstIndex(of: "--" + name), i + 1 < a.count else { return nil }
    return a[i + 1]
}
func intArg(_ name: String, _ a: [String], _ d: Int) -> Int { arg(name, a).flatMap { Int($0) } ?? d }

func userID(_ i: Int) -> String {
    let s = String(i)
    return "u" + String(repeating: "0", count: max(0, 7 - s.count)) + s
}

/// Random lists in store key order, as the refresh writes them.
/// Videos are drawn uniformly, or with `zipf` > 0 from a Zipf(zipf) popularity (real catalogs: a few videos are
/// in many lists).
func synthUsers(_ n: Int, videos: Int, entries: Int, seed: UInt64, zipf: Double = 0) -> [(id: String, list: RecommendationList)] {
    var ids = (0..<n).map { (hash: StoreKey.userHash(userID($0)), id: userID($0)) }
    ids.sort { $0.hash != $1.hash ? $0.hash < $1.hash : $0.id < $1.id }
    var rng = SeededRandom(seed: seed)
    var cdf: [Double] = []
    if zipf > 0 {
        var acc = 0.0
        cdf = (0..<videos).map { acc += 1 / pow(Double($0 + 1), zipf); return acc }
        cdf = cdf.map { $0 / acc }
    }
    func draw() -> UInt32 {
        if cdf.isEmpty { return UInt32(rng.nextInt(videos)) }
        let x = rng.nextDouble()
        var lo = 0, hi = videos - 1
        while lo < hi { let mid = (lo + hi) / 2; if cdf[mid] < x { lo = mid + 1 } else { hi = mid } }
        return UInt32(lo)
    }
    return ids.map { u in
        var l = RecommendationList()
        l.country = CountryCode("US")!
        l.language = "en"
        var s: Float = 1
        for _ in 0..<entries {
            l.videos.append(draw()); s *= 0.99; l.scores.append(s); l.sources.append(.popularRegion)
        }
        return (u.id, l)
    }
}

/// One in-process request: parse the raw bytes, run the handler, return the status.
func request(_ req: [UInt8], _ service: LookupService, _ response: inout HTTPResponse) -> Int {
    response.reset()
    var status = 400
    req.withUnsafeBytes { b in
        guard case .complete(let r, _) = HTTPParser.parse(b, maxHeaderBytes: 8192, maxBodyBytes: 65536) else { return }
        service.handle(r, &response)
        status = response.status
    }
    return status
}

func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }

let argv = Array(CommandLine.arguments.dropFirst())
guard let cmd = argv.first, cmd != "--help", cmd != "-h" else { print(usage); exit(argv.isEmpty ? 2 : 0) }
let a = Array(argv.dropFirst())
if a.contains("--help") || a.contains("-h") { print(usage); exit(0) }
do {
    switch cmd {
    case "csv":
        guard let dir = arg("data", a) else { throw HomefeedError("csv: --data DIR is required") }
        var best = Double.infinity
        var rows = 0
        for _ in 0..<intArg("repeat", a, 3) {
            let t0 = TimeFormat.monotonic()
            let d = try DatasetLoader.load(directory: dir, config: HomefeedConfig().data, progress: false)
            let f = d.report.files.first { $0.file == "interactions.csv" }
            rows = d.interactions.count
            best = min(best, f?.seconds ?? (TimeFormat.monotonic() - t0))
        }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: dir + "/interactions.csv")[.size] as? Int) ?? 0
        print("interactions.csv: \(rows) rows, \(Format.bytes(bytes)), best \(Format.seconds(best))")
        print("bench csv rows_per_s=\(Int(Double(rows) / best)) mb_per_s=\(Format.fixed(Double(bytes) / best / 1e6, 1)) rows=\(rows) seconds=\(Format.fixed(best, 3))")

    case "synth-store":
        guard let dir = arg("store", a) else { throw HomefeedError("synth-store: --store DIR is required") }
        let n = intArg("users", a, 1_000_000), m = intArg("videos", a, 200_000), k = intArg("entries", a, 100)
        let zipf = arg("zipf", a).flatMap(Double.init) ?? 0
        let users = synthUsers(n, videos: m, entries: k, seed: UInt64(intArg("seed", a, 1)), zipf: zipf)
        let store = VersionedStore(root: dir)
        let lock = try store.lock()
        let b = try VersionBuilder(store: store, createdAt: TimeFormat.now())
        var rng = SeededRandom(seed: 2)
        try b.writeVideos((0..<m).map { i in
            VideoRecord(id: "v\(i)", availability: i % 50 == 0 ? 1 : 0, countries: i % 50 == 0 ? [CountryCode("US")!] : [],
                        publishedAt: TimeFormat.now() - Int64(rng.nextInt(90 * 86400)), language: "en")
        })
        let pop = RecommendationList(videos: (0..<200).map { UInt32($0) }, scores: (0..<200).map { 1 - Float($0) / 200 },
                                     sources: Array(repeating: .popularGlobal, count: 200))
        try b.writePopular([(.global, "", pop), (.region, "US", pop), (.language, "en", pop)])
        let w = try b.userListWriter()
        let t0 = TimeFormat.monotonic()
        for u in users { try w.add(userID: u.id, list: u.list) }
        try w.finish()
        var meta = RunMetadata()
        meta.createdAt = TimeFormat.now(); meta.asOf = meta.createdAt
        meta.counts.personalizedUsers = n; meta.counts.meanListLength = Double(k); meta.counts.popularLists = 3
        try b.finish(metadata: meta)
        _ = try store.publish(b.name, force: true, guardMaxDrop: 1, keep: 2)
        lock.release()
        print("bench synth-store users=\(n) videos=\(m) entries=\(k) version=\(b.name) seconds=\(Format.fixed(TimeFormat.monotonic() - t0, 2))")

    case "store-write":
        try benchStoreWrite(a)

    case "lookup":
        guard let dir = arg("store", a) else { throw HomefeedError("lookup: --store DIR is required") }
        let n = intArg("users", a, 1_000_000), requests = intArg("requests", a, 200_000), limit = intArg("limit", a, 20)
        var config = HomefeedConfig()
        config.store.blockCacheMB = intArg("cache-mb", a, 0)
        // Every filter is live: a 100-video blocklist, a seen memory holding 10 k users, and a query with a
        // region, an age limit and an exclude list (the ids are the synth-store's `v<index>`).
        let blocklist = dir + "/../bench-blocklist.txt"
        try (0..<100).map { "v\($0 * 1999)" }.joined(separator: "\n").write(toFile: blocklist, atomically: false, encoding: .utf8)
        config.lookupd.blocklistPath = blocklist
        defer { try? FileManager.default.removeItem(atPath: blocklist) }
        let service = LookupService(storeDir: dir, config: config)
        if case .failure(let e) = service.reload() { throw e }
        guard let state = service.current else { throw HomefeedError("no version in \(dir)") }
        var rng = SeededRandom(seed: 7)
        for _ in 0..<10_000 { service.seen.record(user: userID(rng.nextInt(n)), videos: (0..<5).map { _ in "v\(rng.nextInt(200_000))" }) }
        let query = arg("query", a) ?? "region=US&max_age_hours=2160&exclude=v1,v2,v3&limit=\(limit)"
        let targets: [[UInt8]] = (0..<min(requests, 1 << 20)).map { _ in
            Array("GET /v1/users/\(userID(rng.nextInt(n)))/recommendations?\(query) HTTP/1.1\r\nHost: bench\r\n\r\n".utf8)
        }
        var response = HTTPResponse()
        func one(_ req: [UInt8]) -> Int { request(req, service, &response) }
        // Warm cache: one scan pulls every block of the version into the block cache (or the page cache when
        // --cache-mb 0 maps the files), then one pass of requests.
        var scanned = 0
        try state.version.forEachUser { _, _ in scanned += 1 }
        for t in targets { _ = one(t) }
        var lat: [Double] = []
        lat.reserveCapacity(requests)
        var failures = 0
        for i in 0..<requests {
            let t = targets[i % targets.count]
            let t0 = TimeFormat.monotonic()
            if one(t) != 200 { failures += 1 }
            lat.append(TimeFormat.monotonic() - t0)
        }
        lat.sort()
        // Reference: the bare pinned RocksDB get of the same keys (the floor under the request).
        var ref: [Double] = []
        ref.reserveCapacity(requests)
        var sink = 0
        for i in 0..<requests {
            let id = userID(Int(StableHash.mix64(UInt64(i)) % UInt64(n)))
            let t0 = TimeFormat.monotonic()
            var s = id
            sink &+= try s.withUTF8 { p in try state.version.withUserList(UnsafeRawBufferPointer(p)) { $0?.count ?? 0 } }
            ref.append(TimeFormat.monotonic() - t0)
        }
        ref.sort()
        let p50 = percentile(lat, 0.5) * 1e6, p99 = percentile(lat, 0.99) * 1e6
        let r50 = percentile(ref, 0.5) * 1e6, r99 = percentile(ref, 0.99) * 1e6
        print("in-process request (parse + get + filters + JSON), ?\(query), \(requests) requests over \(n) users (\(scanned) scanned to warm), \(failures) non-200 (sink \(sink % 2))")
        print("request p50 \(Format.fixed(p50, 2)) µs p99 \(Format.fixed(p99, 2)) µs; bare get_pinned+decode p50 \(Format.fixed(r50, 2)) µs p99 \(Format.fixed(r99, 2)) µs")
        print("bench lookup limit=\(limit) p50_us=\(Format.fixed(p50, 2)) p99_us=\(Format.fixed(p99, 2)) ref_get_p50_us=\(Format.fixed(r50, 2)) ref_get_p99_us=\(Format.fixed(r99, 2)) failures=\(failures)")
        if failures > 0 { exit(1) }

    case "als":
        try benchALS(a)

    case "topk":
        try benchTopK(a)

    default:
        throw HomefeedError("unknown command '\(cmd)'\n\(usage)")
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
