import Foundation
import HomefeedCore
import HomefeedData
import HomefeedEval
import HomefeedModels
import HomefeedStore

/// What `homefeed-batch run` was asked to do.
public struct RefreshOptions: Sendable {
    public var dataDir: String
    public var storeDir: String
    /// The data's "now" (windows count back from it); nil = the newest interaction.
    public var now: Int64?
    /// Overrides `[refresh] active_days`.
    public var activeDays: Int?
    /// Compute only this shard's user lists and write them as an SST into `shardOut` (no version is built).
    public var shard: ShardSpec?
    public var shardOut: String?
    /// Build the version from the user-list SSTs of `run --shard` jobs found in this folder.
    public var ingestShards: String?
    /// Publish even if the publish guard objects.
    public var force = false
    /// Train a new MF model first (`run --train`); without it the newest saved model is used (one is trained first
    /// when the store has none).
    public var train = false
    public var quiet = false
    /// Test hook: sleep this long after each block of users (lets a crash test kill a run mid-write).
    public var blockDelaySeconds = 0.0

    public init(dataDir: String, storeDir: String) { self.dataDir = dataDir; self.storeDir = storeDir }
}

public struct RefreshSummary: Sendable {
    public var metadata: RunMetadata
    public var outcome: PublishOutcome?
    /// For `--shard`: the SST written (nil when the shard had no active user).
    public var shardFile: String?
    public var line: String
}

/// The hourly refresh: load → history → active users → popularity → MF model (fold-in + retrieval) → per-user
/// candidates and ranking, streamed in blocks of users into the new version → publish.
public enum Refresh {
    public static func run(_ opt: RefreshOptions, config: HomefeedConfig) throws -> RefreshSummary {
        let started = TimeFormat.monotonic()
        var stages: [RunMetadata.Stage] = []
        func stage<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let t0 = TimeFormat.monotonic()
            let r = try body()
            stages.append(.init(name: name, seconds: TimeFormat.monotonic() - t0))
            return r
        }
        let threads = effectiveThreads(config.refresh.threads)
        let store = VersionedStore(root: opt.storeDir)
        let shardMode = opt.shard != nil

        // 1. Lock the store and clear what a crashed run left (not needed for a shard job, which only writes its SST).
        var lock: StoreLock?
        if !shardMode {
            lock = try store.lock()
            let leftovers = try store.removeLeftovers()
            if !leftovers.isEmpty && !opt.quiet { Log.info("removed leftovers of an interrupted run: \(leftovers.joined(separator: ", "))") }
        }
        defer { lock?.release() }

        // 2. Load the dataset.
        let data = try stage("load") { try DatasetLoader.load(directory: opt.dataDir, config: config.data, progress: !opt.quiet) }
        let asOf = opt.now ?? data.newestInteraction ?? TimeFormat.now()

        // 3. Group interactions by user; pick the active users of this run (or shard), in store key order.
        let history = stage("history") { UserHistory(data) }
        let activeDays = opt.activeDays ?? config.refresh.activeDays
        var active = stage("select users") {
            activeUsers(data, history, asOf: asOf, activeDays: activeDays, shard: opt.shard ?? .all)
        }

        // 4. Popular lists: fallbacks to publish, and candidates for everyone.
        let popLength = max(config.refresh.fallbackListSize, config.refresh.candidatesPerSource)
        let popularity = stage("popularity") { Popularity(data, asOf: asOf, config: config, length: popLength) }

        // 5. The models (unless both are disabled): trained now (--train, or none saved yet), else the newest saved
        //    ones; MF fold-in state and the catalog's two-tower embeddings, each with its retrieval index.
        var meta = RunMetadata()
        var scorers: Scorers
        var ranking = "popular"
        meta.ranking = ranking
        if config.mf.enabled || config.twoTower.enabled {
            let model = try stage("models") { try loadModels(opt, data: data, history: history, store: store, asOf: asOf, config: config) }
            let mf = config.mf.enabled ? stage("mf index") { MFSource(model: model, data: data, config: config, threads: threads) } : nil
            var tt: TwoTowerSource?
            if config.twoTower.enabled, let m = model.twoTower, let info = model.info.twoTower {
                guard info.featureVersion == FeatureEncoder.version, FeatureEncoder.spec(info.settings) == info.spec else {
                    throw HomefeedError("model \(model.info.name): its two-tower model was trained with feature recipe \(info.featureVersion), this build computes recipe \(FeatureEncoder.version): homefeed-batch train (or run --train) saves a new model")
                }
                tt = stage("two-tower videos") {
                    TwoTowerSource(model: m, info: info, name: model.info.name, data: data, history: history, asOf: asOf,
                                   config: config, threads: threads)
                }
            }
            scorers = Scorers(data: data, asOf: asOf, config: config, mf: mf, twoTower: tt, ranker: model.info.ranker)
            if let r = model.info.ranker, let problem = r.mismatch(with: RankingFeatures.names) {
                // A model trained by an older build: its ranker reads other features. Rank without it until `train`.
                Log.warn("model \(model.info.name): its learned ranker is not used (\(problem)); ranking by \(scorers.mode.rawValue) until homefeed-batch train saves a new model")
            }
            if let mf {
                meta.models["mf"] = mf.name
                meta.retrieval = mf.retrieval
                logRetrieval("mf", mf.retrieval, quiet: opt.quiet)
            }
            if let tt {
                meta.models["two_tower"] = tt.name
                logRetrieval("two-tower", tt.index.info, quiet: opt.quiet)
            }
            ranking = scorers.mode.rawValue
            meta.ranking = ranking
            if scorers.mode == .learned, let chosen = model.info.rankerFit?.chosen, chosen != "learned" {
                ranking = "by \(chosen), which train chose over the fitted ranker on held-back users"
                meta.ranking = chosen
            }
            if !opt.quiet { Log.info("ranking: \(ranking)\(scorers.ranker == nil && config.rank.ranker == "learned" && tt != nil ? " (the model has no learned ranker: train again)" : "")") }
        } else {
            scorers = Scorers(data: data, asOf: asOf, config: config, mf: nil, twoTower: nil, ranker: nil)
        }
        // Users without history who signed up within the window get lists from the user tower on features alone.
        if scorers.usesTwoTower && activeDays > 0 {
            active = stage("select new users") {
                let new = newUsers(data, history, asOf: asOf, activeDays: activeDays, shard: opt.shard ?? .all)
                return new.isEmpty ? active : sortedInKeyOrder(active + new, data)
            }
        }
        meta.createdAt = TimeFormat.now()
        meta.asOf = asOf
        meta.configDigest = config.digest
        meta.dataDirectory = opt.dataDir
        meta.sourceFiles = data.report.files.map { .init(name: $0.file, bytes: fileSize(opt.dataDir + "/" + $0.file), rows: $0.rows) }
        meta.counts.users = data.users.count
        meta.counts.videos = data.videos.count
        meta.counts.interactions = data.interactions.count
        meta.counts.activeUsers = active.count
        meta.counts.badRows = data.report.files.reduce(0) { $0 + $1.badRows }
        /// Ranks the active users into `writer` and records the rank stage and the lists' counts; the entries written.
        func rankActiveUsers(into writer: UserListWriter) throws -> Int {
            var inner: [RunMetadata.Stage] = []
            var tally = RunMetadata.SourceTally()
            let (users, entries) = try stage("rank") {
                try rankUsers(active, data: data, history: history, popularity: popularity, scorers: scorers, config: config,
                              threads: threads, quiet: opt.quiet, delay: opt.blockDelaySeconds, timing: &inner) { u, list, _ in
                    tally.add(list)
                    try data.users.ids.withBytes(Int(u)) { try writer.add(userID: $0, list: list) }
                }
            }
            stages += inner
            meta.counts.personalizedUsers = users.personalized
            meta.counts.sources = tally.byName
            meta.counts.mfUsers = users.mf
            meta.counts.meanListLength = users.personalized > 0 ? Double(entries) / Double(users.personalized) : 0
            return entries
        }

        // 6a. Shard job: rank this shard's users into one SST and stop.
        if let shard = opt.shard {
            let outDir = opt.shardOut ?? (opt.storeDir + "/shards")
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            let writer = try UserListWriter(path: outDir + "/" + shard.fileName + ".partial", shard: shard)
            let entries = try rankActiveUsers(into: writer)
            var file = try writer.finish()
            if let f = file {  // publish the shard file atomically under its final name
                let final = outDir + "/" + shard.fileName
                guard rename(f, final) == 0 else { throw HomefeedError("cannot rename \(f) to \(final)") }
                file = final
            }
            meta.stages = stages
            try ShardManifest(shard: shard, counts: meta.counts, entries: entries, sourceFiles: meta.sourceFiles,
                              asOf: asOf, activeDays: activeDays, configDigest: meta.configDigest, model: scorers.modelName)
                .write(to: outDir + "/" + shard.fileName + ".json")
            if !opt.quiet { Log.info("refresh stages: " + stages.map { "\($0.name.trimmingCharacters(in: .whitespaces)) \(Format.seconds($0.seconds))" }.joined(separator: ", ")) }
            let line = "refresh shard \(shard): \(meta.counts.personalizedUsers) users ranked (mean \(Format.fixed(meta.counts.meanListLength, 1)) entries) → \(file ?? "no file (empty shard)"), \(Format.seconds(TimeFormat.monotonic() - started))"
            return RefreshSummary(metadata: meta, outcome: nil, shardFile: file, line: line)
        }

        // 6b. Build the new version: video table, fallback lists, user lists (computed here or ingested from shards).
        let builder = try VersionBuilder(store: store, createdAt: meta.createdAt)
        var finished = false
        defer { if !finished { builder.abandon() } }
        try stage("write videos") { try builder.writeVideos(videoRecords(data)) }
        let fallbacks = popularity.fallbackLists(length: config.refresh.fallbackListSize)
        let segments = try stage("segments") { try segmentLists(data, popularity: popularity, scorers: scorers, config: config, threads: threads) }
        try stage("write popular") { try builder.writePopular(fallbacks + segments) }
        meta.counts.popularLists = fallbacks.count
        meta.counts.segmentLists = builder.segmentListsWritten
        if !segments.isEmpty && !opt.quiet { Log.info("cold start: \(segments.count) segment lists (segments with ≥ \(config.rank.segmentMinUsers) users)") }
        if let dir = opt.ingestShards {
            let shards = try stage("collect shards") { try ShardManifest.collect(dir, expectedSources: meta.sourceFiles, asOf: asOf,
                                                                              activeDays: activeDays, configDigest: meta.configDigest) }
            guard shards.model == scorers.modelName else {
                throw HomefeedError("\(dir): the shards used model '\(shards.model)', this run '\(scorers.modelName)' (a train ran since: rerun the shard jobs)")
            }
            try builder.addUserListFiles(shards.files)
            meta.counts.personalizedUsers = shards.users
            meta.counts.mfUsers = shards.mfUsers
            meta.counts.meanListLength = shards.users > 0 ? Double(shards.entries) / Double(shards.users) : 0
            meta.counts.activeUsers = shards.activeUsers
            meta.counts.sources = shards.sources
            meta.shards = shards.count
        } else {
            let writer = try builder.userListWriter()
            _ = try rankActiveUsers(into: writer)
            try writer.finish()
        }
        // How the served version did: its lists against what its users did after its as-of time.
        if let served = try store.current(), let v = try? StoreVersion(store: store, name: served), v.metadata.asOf < asOf {
            meta.replay = try stage("replay") { try Replay.run(version: v, data: data, watchFraction: config.data.relevanceWatchFraction) }
        }
        meta.stages = stages
        try stage("ingest") { try builder.finish(metadata: meta) }
        finished = true

        // 7. Publish: flip CURRENT unless pinned or the guard objects; prune old versions.
        let outcome = try store.publish(builder.name, force: opt.force, guardMaxDrop: config.store.guardMaxDrop,
                                        keep: config.store.keepVersions)
        meta.version = builder.name
        let models = ModelStore(store: store)
        if let trainLock = try? models.lock() {  // a train in progress prunes when it saves
            try models.prune(keep: config.mf.keepModels, protected: models.inUse())
            trainLock.release()
        }
        let total = TimeFormat.monotonic() - started
        var line = "refresh: version \(builder.name) "
        switch outcome {
        case .published: line += "published"
        case .pinned(let p): line += "built but NOT published: the store is pinned to \(p) (homefeed-batch unpin to resume)"
        }
        line += "; \(meta.counts.activeUsers) active users, \(meta.counts.personalizedUsers) personalized (\(meta.counts.mfUsers) by models \(scorers.modelName.isEmpty ? "none" : scorers.modelName), ranking \(ranking); mean \(Format.fixed(meta.counts.meanListLength, 1)) entries), \(meta.counts.popularLists) popular lists, \(meta.counts.badRows) bad rows; as of \(TimeFormat.iso8601(asOf)); \(Format.seconds(total))"
        if !opt.quiet { Log.info("refresh stages: " + meta.stages.map { "\($0.name.trimmingCharacters(in: .whitespaces)) \(Format.seconds($0.seconds))" }.joined(separator: ", ")) }
        if !opt.quiet && !meta.counts.sources.isEmpty { Log.info("refresh sources: " + sourceMix(meta.counts.sources)) }
        return RefreshSummary(metadata: meta, outcome: outcome, shardFile: nil, line: line)
    }

    /// The models of this run: the newest saved ones, or trained first (`--train`, or none saved yet).
    static func loadModels(_ opt: RefreshOptions, data: Dataset, history: UserHistory, store: VersionedStore, asOf: Int64,
                       config: HomefeedConfig) throws -> MFModel {
        let models = ModelStore(store: store)
        var name = models.latest()
        if opt.train || name == nil {
            guard opt.shard == nil else {
                throw HomefeedError("run --shard: the store \(opt.storeDir) has no model; run homefeed-batch train --store \(opt.storeDir) first (every shard must use the same model)")
            }
            if !opt.quiet && !opt.train { Log.info("no model in \(models.dir) yet: training one first (as homefeed-batch train would)") }
            let lock = try models.lock()
            defer { lock.release() }
            var trained = try Train.fit(data, history: history, config: config, asOf: asOf, tune: config.mf.tune,
                                        previous: name.flatMap { try? models.info($0) }, quiet: opt.quiet)
            trained.info.dataDirectory = opt.dataDir
            name = try models.save(&trained, createdAt: TimeFormat.now())
            return trained
        }
        do {
            return try models.load(name!)
        } catch let e as HomefeedError {
            throw HomefeedError(e.message + " (homefeed-batch train, or run --train, saves a new model, which later runs use)")
        }
    }

    /// "mf 61.2 %, two_tower 20.1 %, fresh 0.050 %, segment 1 of 467200": the share of published entries each
    /// candidate source proposed, largest first (a count where the share would round to 0).
    static func sourceMix(_ sources: [String: Int]) -> String {
        let total = max(1, sources.values.reduce(0, +))
        return sources.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { (name, n) in
                let share = 100 * Double(n) / Double(total)
                return share >= 1 ? "\(name) \(Format.fixed(share, 1)) %"
                    : share >= 0.001 ? "\(name) \(Format.fixed(share, 3)) %" : "\(name) \(n) of \(total)"
            }.joined(separator: ", ")
    }

    static func logRetrieval(_ what: String, _ r: RetrievalInfo, quiet: Bool) {
        if let recall = r.recall, recall < 0.8 {
            Log.warn("\(what) retrieval: IVF recall@\(r.k) is only \(Format.fixed(recall, 3)) against exact (\(r.cells) cells, probing \(r.probe)): raise [mf] ivf_probe, or use retrieval = \"exact\"")
        } else if let recall = r.recall, !quiet {
            Log.info("\(what) retrieval: IVF over \(r.videos) videos, \(r.cells) cells, probing \(r.probe): recall@\(r.k) \(Format.fixed(recall, 3)) against exact on \(r.sampledUsers) users")
        }
    }

    /// Users without history who signed up within the window, inside `shard`, in store key order.
    static func newUsers(_ data: Dataset, _ history: UserHistory, asOf: Int64, activeDays: Int, shard: ShardSpec) -> [(hash: UInt64, user: Int32)] {
        let since = asOf - Int64(activeDays) * 86400
        return select(data, shard) { u in !history.hasHistory(u) && (since...asOf).contains(data.users.signupTime[u]) }
    }

    /// The users passing `include` inside `shard`, in store key order (hash, then id bytes).
    static func select(_ data: Dataset, _ shard: ShardSpec, _ include: (Int) -> Bool) -> [(hash: UInt64, user: Int32)] {
        var out: [(hash: UInt64, user: Int32)] = []
        for u in 0..<data.users.count where include(u) {
            let h = data.users.ids.withBytes(u) { StoreKey.userHash($0) }
            if shard.contains(hash: h) { out.append((h, Int32(u))) }
        }
        return sortedInKeyOrder(out, data)
    }

    static func sortedInKeyOrder(_ users: [(hash: UInt64, user: Int32)], _ data: Dataset) -> [(hash: UInt64, user: Int32)] {
        users.sorted { a, b in
            if a.hash != b.hash { return a.hash < b.hash }
            return data.users.ids.withBytes(Int(a.user)) { x in
                data.users.ids.withBytes(Int(b.user)) { y in x.lexicographicallyPrecedes(y) }
            }
        }
    }

    /// Users with an interaction in the window (every user with history when activeDays is 0) inside `shard`,
    /// sorted in store key order (hash, then id bytes).
    static func activeUsers(_ data: Dataset, _ history: UserHistory, asOf: Int64, activeDays: Int, shard: ShardSpec) -> [(hash: UInt64, user: Int32)] {
        let since = activeDays > 0 ? asOf - Int64(activeDays) * 86400 : Int64.min
        return select(data, shard) { u in history.hasHistory(u) && history.lastActive[u] >= since }
    }

    static func videoRecords(_ data: Dataset) -> [VideoRecord] {
        let v = data.videos
        return (0..<v.count).map { i in
            VideoRecord(id: v.ids[i], availability: v.availability[i].rawValue, countries: Array(v.countryList(of: i)),
                        publishedAt: v.publishedAt[i], language: data.languages[v.language[i]])
        }
    }
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
}
