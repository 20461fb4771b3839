import Foundation
import HomefeedCore
import HomefeedData
import HomefeedPipeline
import HomefeedStore
import HomefeedSynthetic

enum Commands {
    /// Parses a subcommand's options; prints help and exits 0 on --help.
    static func parse(_ command: String, _ usage: String, _ options: [Arguments.Option], _ args: [String],
                      positionals: Int = 0) throws -> Arguments {
        let a = try Arguments(command: "homefeed-batch \(command)", usage: "homefeed-batch \(command) \(usage)",
                              options: options, args: args)
        if a.helpRequested { printOut(a.helpText); exit(0) }
        guard a.positionals.count == positionals else {
            let extra = a.positionals.dropFirst(positionals).first.map { ": unexpected argument '\($0)'" } ?? ""
            throw HomefeedError("homefeed-batch \(command): expected \(positionals) positional argument(s), got \(a.positionals.count)\(extra) (see --help)")
        }
        return a
    }

    /// A store that must already exist (commands that only read or flip pointers must not create a typo'd path).
    static func existingStore(_ a: Arguments) throws -> VersionedStore {
        let dir = try a.required("store")
        guard isDirectory(dir) else {
            if FileManager.default.fileExists(atPath: dir) { throw HomefeedError("--store \(dir) is a file, not a store directory") }
            throw HomefeedError("store directory \(dir) does not exist (homefeed-batch run --store \(dir) creates it)")
        }
        return VersionedStore(root: dir)
    }

    static func isDirectory(_ path: String) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
    }

    static func generate(_ argv: [String]) throws {
        let a = try parse("generate", "--out DIR [--users N] [--videos M] [--seed S]", [
            .init("out", "DIR", "folder to write users.csv, videos.csv, interactions.csv into (required)"),
            .init("users", "N", "number of users (default \(GeneratorConfig().users))"),
            .init("videos", "M", "number of videos (default \(GeneratorConfig().videos))"),
            .init("seed", "S", "random seed (default \(GeneratorConfig().seed)); the same seed gives the same files"),
            .init("quiet", nil, "no progress output"),
        ], argv)
        var g = GeneratorConfig()
        if let u = try a.int("users") { g.users = u }
        if let v = try a.int("videos") { g.videos = v }
        if let s = try a.int("seed") { g.seed = UInt64(truncatingIfNeeded: s) }
        let out = try a.required("out")
        let t0 = TimeFormat.monotonic()
        let summary = try Generator.generate(g, out: out, progress: !a.flag("quiet"))
        printOut("generate: \(summary) in \(out) (\(Format.seconds(TimeFormat.monotonic() - t0)))")
    }

    static func importMovieLens(_ argv: [String]) throws {
        let a = try parse("import-movielens", "SOURCE_DIR --out DIR [--ratings FILE]", [
            .init("out", "DIR", "folder to write the dataset into (required)"),
            .init("ratings", "FILE", "use this ratings file instead (tab-separated user item rating timestamp, e.g. a split's train.tsv)"),
            .init("like-threshold", "R", "ratings ≥ R also add a like (default 4)"),
            .init("dislike-threshold", "R", "ratings ≤ R become dislikes instead of watches (default: none)"),
        ], argv, positionals: 1)
        let t0 = TimeFormat.monotonic()
        let summary = try MovieLensImporter.importMovieLens(
            source: a.positionals[0], out: try a.required("out"), ratingsOverride: a.string("ratings"),
            likeThreshold: try a.double("like-threshold") ?? 4, dislikeThreshold: try a.double("dislike-threshold"))
        printOut("import-movielens: \(summary) (\(Format.seconds(TimeFormat.monotonic() - t0)))")
    }

    static func run(_ argv: [String]) throws {
        let a = try parse("run", "--data DIR --store DIR [--config FILE] [--now TIME] [--active-days N] [--train] [--shard I/N] [--ingest-shards DIR] [--force]", [
            .init("data", "DIR", "dataset folder (users.csv, videos.csv, interactions.csv; see docs/DATA.md) (required)"),
            .init("store", "DIR", "store directory; a new version is published into it (required)"),
            .init("config", "FILE", "config file (default: built-in defaults, documented in conf/homefeed.toml)"),
            .init("now", "TIME", "the data's now, Unix seconds or ISO 8601 (default: the newest interaction)"),
            .init("active-days", "N", "refresh users active in the last N days; 0 = every user with history"),
            .init("shard", "I/N", "compute only shard I of N of the users and write users-I-of-N.sst (no version)"),
            .init("shard-out", "DIR", "where --shard writes its SST (default STORE/shards)"),
            .init("ingest-shards", "DIR", "build the version from the users-I-of-N.sst files of --shard jobs in DIR"),
            .init("train", nil, "train new models first (as homefeed-batch train); default: the newest saved models (trained when the store has none)"),
            .init("threads", "N", "worker threads (default: all cores)"),
            .init("force", nil, "publish even when the publish guard objects"),
            .init("quiet", nil, "no progress output"),
        ], argv)
        var config = try HomefeedConfig.load(path: a.string("config"))
        if let t = try a.int("threads") { config.refresh.threads = t; config.mf.threads = t }
        try config.validate()
        var opt = RefreshOptions(dataDir: try a.required("data"), storeDir: try a.required("store"))
        // Checked before the store is locked (and created): a typo'd --data must not leave a new empty store behind.
        guard isDirectory(opt.dataDir) else { throw HomefeedError("--data: dataset folder \(opt.dataDir) does not exist") }
        opt.now = try a.time("now")
        opt.activeDays = try a.int("active-days")
        if let d = opt.activeDays, d < 0 { throw HomefeedError("--active-days must be ≥ 0") }
        opt.shard = try a.string("shard").map(ShardSpec.init(parsing:))
        opt.shardOut = a.string("shard-out")
        opt.ingestShards = a.string("ingest-shards")
        if opt.shard != nil && opt.ingestShards != nil { throw HomefeedError("--shard and --ingest-shards are separate steps") }
        opt.force = a.flag("force")
        opt.train = a.flag("train")
        if opt.train && (opt.shard != nil || opt.ingestShards != nil) {
            throw HomefeedError("--train cannot go with --shard or --ingest-shards: train once (homefeed-batch train), then run the shards")
        }
        opt.quiet = a.flag("quiet")
        // Test hook (not a documented option): slows the ranking stage so a test can kill the run mid-write.
        if let d = ProcessInfo.processInfo.environment["HOMEFEED_TEST_BLOCK_DELAY"].flatMap(Double.init) { opt.blockDelaySeconds = d }
        let summary = try Refresh.run(opt, config: config)
        printOut(summary.line)
    }

    static func train(_ argv: [String]) throws {
        let a = try parse("train", "--data DIR --store DIR [--config FILE] [--now TIME] [--tune | --no-tune]", [
            .init("data", "DIR", "dataset folder (required)"),
            .init("store", "DIR", "store directory; the model is saved under STORE/models (required)"),
            .init("config", "FILE", "config file (default: built-in defaults, documented in conf/homefeed.toml)"),
            .init("now", "TIME", "the data's now, Unix seconds or ISO 8601 (default: the newest interaction)"),
            .init("tune", nil, "search the MF, item-to-item and ranking-weight grid on a validation split carved from the data (mf.tune = on)"),
            .init("no-tune", nil, "fit with the [mf] and [item_item] settings as configured (mf.tune = off)"),
            .init("threads", "N", "worker threads (default: all cores)"),
            .init("quiet", nil, "no progress output"),
        ], argv)
        var config = try HomefeedConfig.load(path: a.string("config"))
        if let t = try a.int("threads") { config.mf.threads = t }
        try config.validate()
        var opt = TrainOptions(dataDir: try a.required("data"), storeDir: try a.required("store"))
        guard isDirectory(opt.dataDir) else { throw HomefeedError("--data: dataset folder \(opt.dataDir) does not exist") }
        if a.flag("tune") && a.flag("no-tune") { throw HomefeedError("--tune and --no-tune contradict each other") }
        opt.tune = a.flag("tune") ? "on" : a.flag("no-tune") ? "off" : nil
        opt.now = try a.time("now")
        opt.quiet = a.flag("quiet")
        printOut(try Train.run(opt, config: config).line)
    }

    static func eval(_ argv: [String]) throws {
        let a = try parse("eval", "--data DIR [--split random|time|files] [--test-fraction F] [--cold-users F] [--test-data DIR] [--k 5,10,20,50] [--json FILE]", [
            .init("data", "DIR", "dataset folder (required); with --split files, the training data"),
            .init("split", "S", "random (seeded per-user holdout, default), time (the newest fraction of each user's history) or files"),
            .init("test-fraction", "F", "share of each user's interactions held out (default 0.2)"),
            .init("cold-users", "F", "random/time split: share of users held out whole, scored apart as cold-start users (default 0)"),
            .init("test-data", "DIR", "with --split files: a dataset folder whose interactions are the test set"),
            .init("seed", "S", "seed of the random split (default 42)"),
            .init("k", "K,K,...", "cut-offs (default 5,10,20,50)"),
            .init("json", "FILE", "also write the reports as JSON"),
            .init("config", "FILE", "config file (default: built-in defaults, documented in conf/homefeed.toml)"),
            .init("tune", nil, "tune MF on a validation split of the train part (mf.tune = on)"),
            .init("no-tune", nil, "fit MF with the [mf] settings as configured (mf.tune = off)"),
            .init("threads", "N", "worker threads (default: all cores)"),
            .init("quiet", nil, "no progress output"),
        ], argv)
        var config = try HomefeedConfig.load(path: a.string("config"))
        if let t = try a.int("threads") { config.refresh.threads = t; config.mf.threads = t }
        try config.validate()
        var opt = EvalOptions(dataDir: try a.required("data"))
        guard isDirectory(opt.dataDir) else { throw HomefeedError("--data: dataset folder \(opt.dataDir) does not exist") }
        if let s = a.string("split") { opt.split = s }
        if let f = try a.double("test-fraction") {
            guard f > 0 && f < 1 else { throw HomefeedError("--test-fraction must be in (0, 1), got \(f)") }
            opt.testFraction = f
        }
        if let f = try a.double("cold-users") {
            guard f >= 0 && f < 1 else { throw HomefeedError("--cold-users must be in [0, 1), got \(f)") }
            opt.coldUsers = f
        }
        opt.testDataDir = a.string("test-data")
        if opt.testDataDir != nil && opt.split != "files" { throw HomefeedError("--test-data goes with --split files") }
        if let s = try a.int("seed") { opt.seed = UInt64(truncatingIfNeeded: s) }
        if let k = a.string("k") {
            let ks = k.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !ks.isEmpty, ks.allSatisfy({ ($0 ?? 0) >= 1 }) else { throw HomefeedError("--k expects positive integers separated by commas, got '\(k)'") }
            opt.ks = ks.map { $0! }
        }
        if a.flag("tune") && a.flag("no-tune") { throw HomefeedError("--tune and --no-tune contradict each other") }
        opt.tune = a.flag("tune") ? "on" : a.flag("no-tune") ? "off" : nil
        opt.quiet = a.flag("quiet")
        let result = try Evaluate.run(opt, config: config)
        for r in result.reports { printOut(r.table()) }
        if let t = result.mf.tuning?.chosen {
            let itemItem = t.itemItemWeight.map { w in
                ", item-item regularization \(t.itemItemRegularization ?? 0), weight \(w), co-watch window \(t.itemItemWindow ?? 0)"
            } ?? ""
            printOut("mf: factors \(t.factors), regularization \(t.regularization), alpha \(t.alpha), recent boost \(t.recentBoost)\(itemItem) (tuned on validation, nDCG@10 \(Format.fixed(t.ndcg, 4)))")
        }
        if let path = a.string("json") {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(result).write(to: URL(fileURLWithPath: path))
            printOut("eval: reports written to \(path)")
        }
    }

    static func versions(_ argv: [String]) throws {
        let a = try parse("versions", "--store DIR", [.init("store", "DIR", "store directory (required)")], argv)
        let store = try existingStore(a)
        let current = try store.current(), pinned = try store.pinned()
        let all = store.versions()
        if all.isEmpty { printOut("no versions in \(store.root)"); return }
        printOut("VERSION                     STATE            CREATED               AS OF                 USERS      MEAN LEN  POPULAR")
        for v in all.reversed() {
            var state = v == current ? "served" : ""
            if v == pinned { state += state.isEmpty ? "pinned" : "+pinned" }
            let pad = { (s: String, n: Int) in s + String(repeating: " ", count: max(1, n - s.count)) }
            if let m = try? store.metadata(of: v) {
                printOut(pad(v, 28) + pad(state, 17) + pad(TimeFormat.iso8601(m.createdAt), 22) + pad(TimeFormat.iso8601(m.asOf), 22)
                         + pad(String(m.counts.personalizedUsers), 11) + pad(Format.fixed(m.counts.meanListLength, 1), 10) + String(m.counts.popularLists)
                         + (m.storeFormat == RunMetadata.currentStoreFormat ? "" : "  (store format \(m.storeFormat): this build cannot serve it)"))
            } else {
                printOut(pad(v, 28) + pad(state, 17) + "(unreadable meta.json)")
            }
        }
    }

    static func rollback(_ argv: [String]) throws {
        let a = try parse("rollback", "--store DIR [--to VERSION]", [
            .init("store", "DIR", "store directory (required)"),
            .init("to", "VERSION", "version to serve (default: the one served before the current one)"),
        ], argv)
        let store = try existingStore(a)
        let lock = try store.lock()
        defer { lock.release() }
        let all = store.versions()
        let target: String
        if let to = a.string("to") {
            guard all.contains(to) else { throw HomefeedError("no version '\(to)' in \(store.versionsDir); see homefeed-batch versions") }
            target = to
        } else {
            guard let previous = try store.previousServed() else {
                throw HomefeedError("no earlier version to roll back to (see homefeed-batch versions)")
            }
            target = previous
        }
        // Pinning CURRENT to a version the daemons refuse would leave them on the old one and block publishing:
        // the target must be of this build's store format and open as the daemon opens it.
        try store.metadata(of: target).checkStoreFormat(version: target)
        do { _ = try StoreVersion(store: store, name: target) } catch let e as HomefeedError {
            throw HomefeedError("rollback: \(target) cannot be served: \(e.message)")
        }
        try store.setCurrent(target)
        try store.pin(target)
        printOut("rollback: serving \(target), pinned (runs build new versions but do not publish until homefeed-batch unpin)")
    }

    static func unpin(_ argv: [String]) throws {
        let a = try parse("unpin", "--store DIR", [.init("store", "DIR", "store directory (required)")], argv)
        let store = try existingStore(a)
        let lock = try store.lock()
        defer { lock.release() }
        let was = try store.pinned()
        try store.unpin()
        printOut(was.map { "unpin: \($0) is no longer pinned; the next run publishes again" } ?? "unpin: the store was not pinned")
    }

    static func export(_ argv: [String]) throws {
        let a = try parse("export", "--store DIR [--out FILE] [--version V] [--sources]", [
            .init("store", "DIR", "store directory (required)"),
            .init("out", "FILE", "output file (default: standard output)"),
            .init("version", "V", "export this version instead of the served one"),
            .init("sources", nil, "write each entry as video:source:score (the first candidate source that proposed it, in the order mf, two_tower, popular_region, popular_language, popular_global, fresh)"),
        ], argv)
        let store = try existingStore(a)
        if let v = a.string("version"), !store.versions().contains(v) {
            throw HomefeedError("no version '\(v)' in \(store.versionsDir); see homefeed-batch versions")
        }
        let n = try Export.run(storeDir: store.root, version: a.string("version"), out: a.string("out"), sources: a.flag("sources"))
        if let out = a.string("out") { printOut("export: \(n) users → \(out)") }
    }
}
