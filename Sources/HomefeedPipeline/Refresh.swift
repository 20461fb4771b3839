import Foundation
import HomefeedCore
import HomefeedData
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

/// The hourly refresh: load → history → active users → popularity → per-user candidates and ranking, streamed
/// in blocks of users into the new version → publish. Models (MF, two-tower) join as candidate sources and rankers.
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

        var meta = RunMetadata()
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

        // 5a. Shard job: rank this shard's users into one SST and stop.
        if let shard = opt.shard {
            let outDir = opt.shardOut ?? (opt.storeDir + "/shards")
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            let writer = try UserListWriter(path: outDir + "/" + shard.fileName + ".partial", shard: shard)
            let (users, entries) = try stage("rank") {
                try rankUsers(active, data: data, history: history, popularity: popularity, config: config,
                              threads: threads, quiet: opt.quiet, delay: opt.blockDelaySeconds, writer: writer)
            }
            var file = try writer.finish()
            if let f = file {  // publish the shard file atomically under its final name
                let final = outDir + "/" + shard.fileName
                guard rename(f, final) == 0 else { throw HomefeedError("cannot rename \(f) to \(final)") }
                file = final
            }
            meta.counts.personalizedUsers = users
            meta.counts.meanListLength = users > 0 ? Double(entries) / Double(users) : 0
            meta.stages = stages
            try ShardManifest(shard: shard, counts: meta.counts, entries: entries, sourceFiles: meta.sourceFiles,
                              asOf: asOf, activeDays: activeDays, configDigest: meta.configDigest)
                .write(to: outDir + "/" + shard.fileName + ".json")
            let line = "refresh shard \(shard): \(users) users ranked (mean \(Format.fixed(meta.counts.meanListLength, 1)) entries) → \(file ?? "no file (empty shard)"), \(Format.seconds(TimeFormat.monotonic() - started))"
            return RefreshSummary(metadata: meta, outcome: nil, shardFile: file, line: line)
        }

        // 5b. Build the new version: video table, fallback lists, user lists (computed here or ingested from shards).
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
            try builder.addUserListFiles(shards.files)
            meta.counts.personalizedUsers = shards.users
            meta.counts.meanListLength = shards.users > 0 ? Double(shards.entries) / Double(shards.users) : 0
            meta.counts.activeUsers = shards.activeUsers
            meta.shards = shards.count
        } else {
            let writer = try builder.userListWriter()
            let (users, entries) = try stage("rank") {
                try rankUsers(active, data: data, history: history, popularity: popularity, config: config,
                              threads: threads, quiet: opt.quiet, delay: opt.blockDelaySeconds, writer: writer)
            }
            try writer.finish()
            meta.counts.personalizedUsers = users
            meta.counts.meanListLength = users > 0 ? Double(entries) / Double(users) : 0
        }
        meta.stages = stages
        try stage("ingest") { try builder.finish(metadata: meta) }
        finished = true

        // 6. Publish: flip CURRENT unless pinned or the guard objects; prune old versions.
        let outcome = try store.publish(builder.name, force: opt.force, guardMaxDrop: config.store.guardMaxDrop,
                                        keep: config.store.keepVersions)
        meta.version = builder.name
        let total = TimeFormat.monotonic() - started
        var line = "refresh: version \(builder.name) "
        switch outcome {
        case .published: line += "published"
        case .pinned(let p): line += "built but NOT published: the store is pinned to \(p) (homefeed-batch unpin to resume)"
        }
        line += "; \(meta.counts.activeUsers) active users, \(meta.counts.personalizedUsers) personalized (mean \(Format.fixed(meta.counts.meanListLength, 1)) entries), \(meta.counts.popularLists) popular lists, \(meta.counts.badRows) bad rows; as of \(TimeFormat.iso8601(asOf)); \(Format.seconds(total))"
        return RefreshSummary(metadata: meta, outcome: outcome, shardFile: nil, line: line)
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

    /// Candidates and ranking for every user, in blocks (parallel inside a block, written in order).
    /// Returns (users written, entries written).
    static func rankUsers(_ users: [(hash: UInt64, user: Int32)], data: Dataset, history: UserHistory,
                          popularity: Popularity, config: HomefeedConfig, threads: Int, quiet: Bool,
                          delay: Double = 0, writer: UserListWriter) throws -> (Int, Int) {
        let progress = Progress("rank users", total: users.count, unit: "users", quiet: quiet)
        let block = config.refresh.blockUsers
        let ranker = PopularityBlendRanker()
        let candidateCapacity = 3 * config.refresh.candidatesPerSource   // three popular sources today
        let scratch = SlotBuffer((0..<threads).map { _ in
            (CandidateSet(videoCount: data.videos.count, capacity: candidateCapacity), TopK(k: config.refresh.listSize))
        })
        let perSource = config.refresh.candidatesPerSource
        var written = 0, entries = 0
        for start in stride(from: 0, to: users.count, by: block) {
            let end = min(users.count, start + block)
            let results = SlotBuffer<RecommendationList?>(repeating: nil, count: end - start)
            parallelFor(end - start, threads: threads, chunk: 32) { worker, range in
                scratch.withSlot(worker) { s in
                    for k in range {
                        let u = Int(users[start + k].user)
                        results[k] = rankOne(u, data: data, history: history, popularity: popularity,
                                             perSource: perSource, ranker: ranker, set: s.0, top: &s.1)
                    }
                }
            }
            for k in 0..<(end - start) {
                guard let list = results[k], list.count > 0 else { continue }
                try data.users.ids.withBytes(Int(users[start + k].user)) { try writer.add(userID: $0, list: list) }
                written += 1; entries += list.count
            }
            progress.add(end - start)
            if delay > 0 { usleep(UInt32(delay * 1e6)) }
        }
        progress.finish()
        return (written, entries)
    }

    /// One user's list: exclude seen and unavailable videos, gather candidates from the popular sources, rank, top-k.
    static func rankOne(_ u: Int, data: Dataset, history: UserHistory, popularity: Popularity, perSource: Int,
                        ranker: some Ranker, set: CandidateSet, top: inout TopK) -> RecommendationList {
        set.reset()
        top.reset()
        for v in history.seen(of: u) { set.exclude(Int(v)) }
        let country = data.users.country[u]
        let language = data.languages[data.users.language[u]]
        let videos = data.videos
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
        for c in 0..<set.count {
            top.offer(score: ranker.score(candidate: c, in: set, user: u, data: data), video: set.video(c), candidate: Int32(c))
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

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
}
