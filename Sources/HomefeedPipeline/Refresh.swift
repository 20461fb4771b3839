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
        let active = stage("select users") {
            activeUsers(data, history, asOf: asOf, activeDays: activeDays, shard: opt.shard ?? .all)
        }

        // 4. Popular lists: fallbacks to publish, and candidates for everyone.
        let popLength = max(config.refresh.fallbackListSize, config.refresh.candidatesPerSource)
        let popularity = stage("popularity") { Popularity(data, asOf: asOf, config: config, length: popLength) }

        // 5. The MF model (unless disabled): trained now (--train, or no model yet), else the newest saved one; its
        //    index for retrieval.
        let mf = config.mf.enabled ? try stage("mf model") { try mfSource(opt, data: data, history: history, store: store,
                                                                          asOf: asOf, config: config, threads: threads) } : nil

        var meta = RunMetadata()
        if let mf {
            meta.models["mf"] = mf.name
            meta.retrieval = mf.retrieval
            if let r = mf.retrieval.recall, r < 0.8 {
                Log.warn("mf retrieval: IVF recall@\(mf.retrieval.k) is only \(Format.fixed(r, 3)) against exact (\(mf.retrieval.cells) cells, probing \(mf.retrieval.probe)): raise [mf] ivf_probe, or use retrieval = \"exact\"")
            } else if let r = mf.retrieval.recall, !opt.quiet {
                Log.info("mf retrieval: IVF over \(mf.retrieval.videos) videos, \(mf.retrieval.cells) cells, probing \(mf.retrieval.probe): recall@\(mf.retrieval.k) \(Format.fixed(r, 3)) against exact on \(mf.retrieval.sampledUsers) users")
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

        // 6a. Shard job: rank this shard's users into one SST and stop.
        if let shard = opt.shard {
            let outDir = opt.shardOut ?? (opt.storeDir + "/shards")
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            let writer = try UserListWriter(path: outDir + "/" + shard.fileName + ".partial", shard: shard)
            var inner: [RunMetadata.Stage] = []
            let (users, entries) = try stage("rank") {
                try rankUsers(active, data: data, history: history, popularity: popularity, mf: mf, config: config,
                              threads: threads, quiet: opt.quiet, delay: opt.blockDelaySeconds, timing: &inner) { u, list, _ in
                    try data.users.ids.withBytes(Int(u)) { try writer.add(userID: $0, list: list) }
                }
            }
            stages += inner
            var file = try writer.finish()
            if let f = file {  // publish the shard file atomically under its final name
                let final = outDir + "/" + shard.fileName
                guard rename(f, final) == 0 else { throw HomefeedError("cannot rename \(f) to \(final)") }
                file = final
            }
            meta.counts.personalizedUsers = users.personalized
            meta.counts.mfUsers = users.mf
            meta.counts.meanListLength = users.personalized > 0 ? Double(entries) / Double(users.personalized) : 0
            meta.stages = stages
            try ShardManifest(shard: shard, counts: meta.counts, entries: entries, sourceFiles: meta.sourceFiles,
                              asOf: asOf, activeDays: activeDays, configDigest: meta.configDigest, model: mf?.name ?? "")
                .write(to: outDir + "/" + shard.fileName + ".json")
            if !opt.quiet { Log.info("refresh stages: " + stages.map { "\($0.name.trimmingCharacters(in: .whitespaces)) \(Format.seconds($0.seconds))" }.joined(separator: ", ")) }
            let line = "refresh shard \(shard): \(users.personalized) users ranked (mean \(Format.fixed(meta.counts.meanListLength, 1)) entries) → \(file ?? "no file (empty shard)"), \(Format.seconds(TimeFormat.monotonic() - started))"
            return RefreshSummary(metadata: meta, outcome: nil, shardFile: file, line: line)
        }

        // 6b. Build the new version: video table, fallback lists, user lists (computed here or ingested from shards).
        let builder = try VersionBuilder(store: store, createdAt: meta.createdAt)
        var finished = false
        defer { if !finished { builder.abandon() } }
        try stage("write videos") { try builder.writeVideos(videoRecords(data)) }
        let fallbacks = popularity.fallbackLists(length: config.refresh.fallbackListSize)
        try stage("write popular") { try builder.writePopular(fallbacks) }
        meta.counts.popularLists = fallbacks.count
        if let dir = opt.ingestShards {
            let shards = try stage("collect shards") { try ShardManifest.collect(dir, expectedSources: meta.sourceFiles, asOf: asOf,
                                                                              activeDays: activeDays, configDigest: meta.configDigest) }
            guard shards.model == (mf?.name ?? "") else {
                throw HomefeedError("\(dir): the shards used model '\(shards.model)', this run '\(mf?.name ?? "")' (a train ran since: rerun the shard jobs)")
            }
            try builder.addUserListFiles(shards.files)
            meta.counts.personalizedUsers = shards.users
            meta.counts.mfUsers = shards.mfUsers
            meta.counts.meanListLength = shards.users > 0 ? Double(shards.entries) / Double(shards.users) : 0
            meta.counts.activeUsers = shards.activeUsers
            meta.shards = shards.count
        } else {
            let writer = try builder.userListWriter()
            var inner: [RunMetadata.Stage] = []
            let (users, entries) = try stage("rank") {
                try rankUsers(active, data: data, history: history, popularity: popularity, mf: mf, config: config,
                              threads: threads, quiet: opt.quiet, delay: opt.blockDelaySeconds, timing: &inner) { u, list, _ in
                    try data.users.ids.withBytes(Int(u)) { try writer.add(userID: $0, list: list) }
                }
            }
            stages += inner
            try writer.finish()
            meta.counts.personalizedUsers = users.personalized
            meta.counts.mfUsers = users.mf
            meta.counts.meanListLength = users.personalized > 0 ? Double(entries) / Double(users.personalized) : 0
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
        line += "; \(meta.counts.activeUsers) active users, \(meta.counts.personalizedUsers) personalized (\(meta.counts.mfUsers) by MF model \(mf?.name ?? "none"); mean \(Format.fixed(meta.counts.meanListLength, 1)) entries), \(meta.counts.popularLists) popular lists, \(meta.counts.badRows) bad rows; as of \(TimeFormat.iso8601(asOf)); \(Format.seconds(total))"
        if !opt.quiet { Log.info("refresh stages: " + meta.stages.map { "\($0.name.trimmingCharacters(in: .whitespaces)) \(Format.seconds($0.seconds))" }.joined(separator: ", ")) }
        return RefreshSummary(metadata: meta, outcome: outcome, shardFile: nil, line: line)
    }

    /// The MF source of this run: the newest saved model, or one trained first (`--train`, or none saved yet).
    static func mfSource(_ opt: RefreshOptions, data: Dataset, history: UserHistory, store: VersionedStore, asOf: Int64,
                         config: HomefeedConfig, threads: Int) throws -> MFSource {
        let models = ModelStore(store: store)
        var name = models.latest()
        if opt.train || name == nil {
            guard opt.shard == nil else {
                throw HomefeedError("run --shard: the store \(opt.storeDir) has no MF model; run homefeed-batch train --store \(opt.storeDir) first (every shard must use the same model)")
            }
            if !opt.quiet && !opt.train { Log.info("no MF model in \(models.dir) yet: training one first (as homefeed-batch train would)") }
            let lock = try models.lock()
            defer { lock.release() }
            var trained = try Train.fit(data, history: history, config: config, asOf: asOf, tune: config.mf.tune,
                                        previous: name.flatMap { try? models.info($0) }, quiet: opt.quiet)
            trained.info.dataDirectory = opt.dataDir
            name = try models.save(&trained, createdAt: TimeFormat.now())
            return MFSource(model: trained, data: data, config: config, threads: threads)
        }
        do {
            return MFSource(model: try models.load(name!), data: data, config: config, threads: threads)
        } catch let e as HomefeedError {
            throw HomefeedError(e.message + " (homefeed-batch train, or run --train, saves a new model that runs then use)")
        }
    }

    /// Users with an interaction in the window (every user with history when activeDays is 0) inside `shard`,
    /// sorted in store key order (hash, then id bytes).
    static func activeUsers(_ data: Dataset, _ history: UserHistory, asOf: Int64, activeDays: Int, shard: ShardSpec) -> [(hash: UInt64, user: Int32)] {
        let since = activeDays > 0 ? asOf - Int64(activeDays) * 86400 : Int64.min
        var out: [(hash: UInt64, user: Int32)] = []
        for u in 0..<data.users.count where history.hasHistory(u) && history.lastActive[u] >= since {
            let h = data.users.ids.withBytes(u) { StableHash.fnv1a64($0) }
            if shard.contains(hash: h) { out.append((h, Int32(u))) }
        }
        out.sort { a, b in
            if a.hash != b.hash { return a.hash < b.hash }
            return data.users.ids.withBytes(Int(a.user)) { x in
                data.users.ids.withBytes(Int(b.user)) { y in x.lexicographicallyPrecedes(y) }
            }
        }
        return out
    }

    /// Candidates and ranking for every user, in blocks: MF fold-in and retrieval for the block, then each user's
    /// candidates ranked in parallel, then the lists handed to `sink` in order (user, list, ranked by MF).
    /// Returns (users with a list, users ranked by MF) and the entries written.
    static func rankUsers(_ users: [(hash: UInt64, user: Int32)], data: Dataset, history: UserHistory,
                          popularity: Popularity, mf: MFSource?, config: HomefeedConfig, threads: Int, quiet: Bool,
                          delay: Double = 0,
                          timing: UnsafeMutablePointer<[RunMetadata.Stage]>? = nil,
                          sink: (Int32, RecommendationList, Bool) throws -> Void) throws -> (users: (personalized: Int, mf: Int), entries: Int) {
        let progress = Progress("rank users", total: users.count, unit: "users", quiet: quiet)
        let block = config.refresh.blockUsers
        let perSource = config.refresh.candidatesPerSource
        let candidateCapacity = 4 * perSource   // MF + three popular sources
        let scratch = SlotBuffer((0..<threads).map { _ in
            (CandidateSet(videoCount: data.videos.count, capacity: candidateCapacity), TopK(k: config.refresh.listSize))
        })
        var written = 0, byMF = 0, entries = 0
        var mfTiming = MFTiming(), rankSeconds = 0.0
        for start in stride(from: 0, to: users.count, by: block) {
            let end = min(users.count, start + block)
            let ids = users[start..<end].map(\.user)
            let retrieved = mf?.block(ids[...], data: data, history: history, k: perSource, threads: threads, timing: &mfTiming)
            let rankStart = TimeFormat.monotonic()
            let results = SlotBuffer<RecommendationList?>(repeating: nil, count: end - start)
            let rankedByMF = SlotBuffer<Bool>(repeating: false, count: end - start)
            parallelFor(end - start, threads: threads, chunk: 32) { worker, range in
                scratch.withSlot(worker) { s in
                    for k in range {
                        var user = UserCandidates(user: Int(ids[k]))
                        if let mf, let r = retrieved, r.hasSignal[k] {
                            user.mf = (mf, r.factors, k, r.top)
                            rankedByMF[k] = true
                        }
                        results[k] = rankOne(user, data: data, history: history, popularity: popularity,
                                             perSource: perSource, set: s.0, top: &s.1)
                    }
                }
            }
            for k in 0..<(end - start) {
                guard let list = results[k], list.count > 0 else { continue }
                try sink(ids[k], list, rankedByMF[k])
                written += 1; entries += list.count
                if rankedByMF[k] { byMF += 1 }
            }
            rankSeconds += TimeFormat.monotonic() - rankStart
            progress.add(end - start)
            if delay > 0 { usleep(UInt32(delay * 1e6)) }
        }
        progress.finish()
        if let timing {
            if mf != nil { timing.pointee += [.init(name: "  mf fold-in", seconds: mfTiming.foldIn), .init(name: "  mf retrieval", seconds: mfTiming.retrieval)] }
            timing.pointee.append(.init(name: "  candidates + ranking + write", seconds: rankSeconds))
        }
        return ((written, byMF), entries)
    }

    /// One user's inputs to ranking: the MF source with the block's factors and retrieval results (row `k`), if the
    /// user has MF signal.
    struct UserCandidates {
        var user: Int
        var mf: (source: MFSource, factors: Matrix, row: Int, top: TopKResults)?
    }

    /// One user's list: exclude seen and unavailable videos, gather candidates from MF and the popular sources,
    /// rank (by x_u·y_v when the user has MF factors, else by the popularity blend), keep the top list_size.
    static func rankOne(_ c: UserCandidates, data: Dataset, history: UserHistory, popularity: Popularity, perSource: Int,
                        set: CandidateSet, top: inout TopK) -> RecommendationList {
        let u = c.user
        set.reset()
        top.reset()
        for v in history.seen(of: u) { set.exclude(Int(v)) }
        let country = data.users.country[u]
        let language = data.languages[data.users.language[u]]
        let videos = data.videos
        // 1. MF candidates: already filtered (seen, availability) by the retrieval.
        if let mf = c.mf {
            let k = mf.top.k, n = Int(mf.top.counts[mf.row])
            let best = n > 0 ? mf.top.scores[mf.row * k] : 0
            for j in 0..<n {
                let v = mf.source.videoOfRow[Int(mf.top.ids[mf.row * k + j])]
                set.add(UInt32(v), source: .mf, score: best > 0 ? max(0, mf.top.scores[mf.row * k + j] / best) : 0)
            }
        }
        // 2. Popular candidates.
        func gather(_ r: Popularity.Ranked?, _ source: CandidateSource) {
            guard let r, let best = r.scores.first, best > 0 else { return }
            r.videos.withUnsafeBufferPointer { vs in
                r.scores.withUnsafeBufferPointer { ss in
                    for k in 0..<min(perSource, vs.count) {
                        let v = vs[k]
                        if set.isExcluded(Int(v)) || !videos.isAvailable(Int(v), in: country) { continue }
                        set.add(v, source: source, score: max(0, ss[k] / best))
                    }
                }
            }
        }
        gather(popularity.regions[country], .popularRegion)
        gather(popularity.languages[language], .popularLanguage)
        gather(popularity.global, .popularGlobal)
        // 3. Rank. With MF factors: x_u·y_v, or with ranking weights (a, b) ≠ 0
        //        z(x_u·y_v) + a · z(log(1 + engagements of v)) + b · z(popularity blend)
        //    (z-scores over the user's candidates the model knows); a candidate the model does not know (a video
        //    newer than the model) ranks below every known one, in popularity-blend order. Without MF factors: the
        //    popularity blend.
        // Per-candidate inputs read through raw buffers, hoisted out of the loop (this runs ~2000 times per user).
        let userLanguage = data.users.language[u]
        data.videos.language.withUnsafeBufferPointer { videoLanguage in
            func blend(_ i: Int) -> Float {
                PopularityBlend.score(set, i, sameLanguage: videoLanguage[Int(set.video(i))] == userLanguage)
            }
            guard let mf = c.mf else {
                for i in 0..<set.count { top.offer(score: blend(i), video: set.video(i), candidate: Int32(i)) }
                return
            }
            mf.source.withFactors { y, f, rowOfVideo, prior in
                mf.factors.values.withUnsafeBufferPointer { x in
                    let xu = x.baseAddress! + mf.row * f
                    let a = mf.source.popularityWeight, b = mf.source.trendingWeight
                    if a == 0 && b == 0 {
                        // The MF score alone.
                        var lowest = Float.greatestFiniteMagnitude
                        for i in 0..<set.count {
                            let r = Int(rowOfVideo[Int(set.video(i))])
                            guard r >= 0 else { continue }
                            let s = Kernels.dot(xu, y + r * f, f)
                            lowest = min(lowest, s)
                            top.offer(score: s, video: set.video(i), candidate: Int32(i))
                        }
                        offerUnknown(below: lowest)
                        return
                    }
                    var moments = (Moments(), Moments(), Moments())   // MF score, prior, blend
                    var features = [Float](repeating: 0, count: 3 * set.count)
                    for i in 0..<set.count {
                        let v = Int(set.video(i))
                        let r = Int(rowOfVideo[v])
                        guard r >= 0 else { features[3 * i] = .nan; continue }
                        let (s, p, q) = (Kernels.dot(xu, y + r * f, f), prior[v], blend(i))
                        features[3 * i] = s; features[3 * i + 1] = p; features[3 * i + 2] = q
                        moments.0.add(s); moments.1.add(p); moments.2.add(q)
                    }
                    let z0 = moments.0.standardizer(), z1 = moments.1.standardizer(), z2 = moments.2.standardizer()
                    var lowest = Float.greatestFiniteMagnitude
                    for i in 0..<set.count where !features[3 * i].isNaN {
                        let s = z0(features[3 * i]) + a * z1(features[3 * i + 1]) + b * z2(features[3 * i + 2])
                        lowest = min(lowest, s)
                        top.offer(score: s, video: set.video(i), candidate: Int32(i))
                    }
                    offerUnknown(below: lowest)
                }
            }
            /// Candidates the model does not know (videos newer than the model): below every known one, in blend order.
            func offerUnknown(below lowest: Float) {
                let floor = (lowest == .greatestFiniteMagnitude ? 0 : lowest) - 2
                for i in 0..<set.count where mf.source.rowOfVideo[Int(set.video(i))] < 0 {
                    top.offer(score: floor + blend(i) / 2, video: set.video(i), candidate: Int32(i))
                }
            }
        }
        var list = RecommendationList()
        list.country = country
        list.language = language
        list.seenFilter = SeenFilter.build(history.seen(of: u))
        for item in top.sorted() {
            list.videos.append(item.video); list.scores.append(item.score); list.sources.append(set.firstSource(Int(item.candidate)))
        }
        return list
    }

    static func videoRecords(_ data: Dataset) -> [VideoRecord] {
        let v = data.videos
        return (0..<v.count).map { i in
            VideoRecord(id: v.ids[i], availability: v.availability[i].rawValue, countries: Array(v.countryList(of: i)),
                        publishedAt: v.publishedAt[i], language: data.languages[v.language[i]])
        }
    }
}

/// Running mean and variance of one ranking feature over a user's candidates, for z-scores.
struct Moments {
    var n = 0.0, sum = 0.0, sq = 0.0
    mutating func add(_ x: Float) { n += 1; sum += Double(x); sq += Double(x) * Double(x) }
    /// x ↦ (x − mean) / sd; a constant feature maps to 0.
    func standardizer() -> (Float) -> Float {
        let mean = sum / max(n, 1), sd = max(0, sq / max(n, 1) - mean * mean).squareRoot()
        let m = Float(mean), scale = sd > 1e-9 ? Float(1 / sd) : 0
        return { ($0 - m) * scale }
    }
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
}
