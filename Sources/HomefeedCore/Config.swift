import Foundation

/// Every tunable of Homefeed with its default. `conf/homefeed.toml` documents each key next to the same default;
/// a test keeps the two in step.
public struct HomefeedConfig: Sendable, Equatable, Codable {
    public struct Data: Sendable, Equatable, Codable {
        /// A watch counts as relevant from this fraction of the video's duration.
        public var relevanceWatchFraction = 0.5
        /// A load fails when a file's share of bad rows exceeds this.
        public var maxBadRowFraction = 0.01
    }
    public struct Refresh: Sendable, Equatable, Codable {
        /// Users with an interaction in the last N days (counted back from --now) are refreshed; 0 = everyone with history.
        public var activeDays = 30
        /// Entries per personalized list.
        public var listSize = 100
        /// Entries per popular fallback list (more than listSize so the daemon can filter and still fill).
        public var fallbackListSize = 200
        /// Candidates taken from each source before ranking.
        public var candidatesPerSource = 500
        /// Half-life of an interaction's weight in the popular lists, in hours.
        public var popularHalfLifeHours = 72.0
        /// Popularity window, in days back from --now.
        public var popularWindowDays = 30
        /// Minimum weighted interactions for a region or language to get its own popular list.
        public var minPopularListInteractions = 20.0
        /// Users per block streamed through candidate generation and ranking.
        public var blockUsers = 4096
        /// Worker threads; 0 = all cores.
        public var threads = 0
    }
    /// Matrix factorization (weighted ALS): confidences, training, tuning, retrieval. docs/MODELS.md explains each.
    public struct MF: Sendable, Equatable, Codable {
        /// false: the refresh ranks by popularity alone (no model is trained or loaded) — an operator's switch.
        public var enabled = true
        public var factors = 64
        public var iterations = 15
        public var regularization = 0.05
        /// W: weight of every unobserved (user, video) pair.
        public var unobservedWeight = 1.0
        /// Conjugate-gradient steps per row and half-iteration (0 = exact Cholesky solves).
        public var cgSteps = 3
        /// Confidence of an observed pair: alpha × (sum of its signal weights below).
        public var alpha = 1.0
        public var longWatchWeight = 1.0
        public var partialWatchWeight = 0.25
        public var likeWeight = 1.0
        public var shareWeight = 1.0
        public var commentWeight = 0.5
        /// A disliked video becomes an explicit negative (preference 0) with confidence alpha × this; 0 = ignored.
        public var dislikeWeight = 1.0
        /// Recent history weighs more: the signal of the video a user engaged with r videos ago (r = 0 newest)
        /// is multiplied by 1 + recent_boost × 0.5^(r / recent_half_rank). 0 = off.
        public var recentBoost = 0.0
        public var recentHalfRank = 10.0
        /// Ranking until the two-tower scorer joins: z(x_u·y_v) + popularity_weight · z(log(1 + engagements of v))
        /// + trending_weight · z(the recency-weighted regional/language/global popularity blend), z-scored over the
        /// user's candidates. Both 0 = the MF score alone.
        public var popularityWeight = 0.0
        public var trendingWeight = 0.0
        /// "on": `train` searches the grid on a validation split carved from train; "off": the values above;
        /// "auto": tune when the data has at most tune_max_pairs observed pairs, else reuse the latest model's choice.
        public var tune = "auto"
        public var tuneMaxPairs = 2_000_000
        /// Validation split for tuning: "random" (a seeded validation_fraction of each user's interactions) or "time" (the
        /// newest validation_fraction of each user's interactions).
        public var tuneSplit = "random"
        public var validationFraction = 0.1
        /// Candidate retrieval over the video factors: "exact", "ivf", or "auto" (IVF from ivf_min_videos videos).
        public var retrieval = "auto"
        public var ivfMinVideos = 200_000
        /// IVF cells (0 = a rule on the catalog size) and cells probed per query (0 = a rule on the cells).
        public var ivfCells = 0
        public var ivfProbe = 0
        /// Trained models kept in the store (those used by kept versions are never deleted).
        public var keepModels = 3
        public var seed = 42
        /// Worker threads for training; 0 = all cores.
        public var threads = 0
        public init() {}
    }
    /// The item-to-item model beside MF (EASE over the catalog's head; docs/MODELS.md): a ranking signal, fitted by
    /// `train` with MF and tuned with it.
    public struct ItemItem: Sendable, Equatable, Codable {
        /// The head: at most this many of the most engaged videos (a dense videos² solve; 0 = no item-item model).
        public var videos = 2048
        /// λ as a multiple of the head videos' mean engagement count.
        public var regularization = 8.0
        /// MF ranking: + weight · z(item-item score), z-scored over the user's candidates (0 = not used).
        public var weight = 0.5
        /// Co-watch window h, in engagements: two videos of a user weigh far_weight + (1 − far_weight) · exp(−d / h)
        /// in the fit, d = how many of the user's engagements apart they are by time (0 = every pair weighs 1).
        public var window = 0.0
        /// What two videos far apart in a user's history still weigh, with a window.
        public var farWeight = 0.25
        public init() {}
        // Models saved before the window existed decode with window 0, the fit they were made with.
        enum CodingKeys: String, CodingKey { case videos, regularization, weight, window, farWeight }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            videos = try c.decode(Int.self, forKey: .videos)
            regularization = try c.decode(Double.self, forKey: .regularization)
            weight = try c.decode(Double.self, forKey: .weight)
            window = try c.decodeIfPresent(Double.self, forKey: .window) ?? 0
            farWeight = try c.decodeIfPresent(Double.self, forKey: .farWeight) ?? 0.25
        }
    }
    /// The two-tower model (docs/MODELS.md): feature encoders, training, retrieval. Trained with MF by `train`.
    public struct TwoTower: Sendable, Equatable, Codable {
        /// false: no two-tower model is trained or used (MF and popularity only).
        public var enabled = true
        /// Embedding width of every input field; the towers' hidden layer; the output embedding.
        public var fieldDim = 32
        public var hidden = 128
        public var output = 32
        /// Hash buckets of the id fields (users, videos, history) and of the token fields (title, tags, queries, channel).
        public var idBuckets = 262_144
        public var tokenBuckets = 65_536
        /// History bags: the newest N relevant videos, the video r places back weighted 0.5^(r / history_half_rank).
        public var historyLength = 50
        public var historyHalfRank = 10.0
        /// A training example's history: "before" (only what the user did before the example's video: the refresh's
        /// question, what comes next) or "others" (every other relevant video, newer ones too).
        public var trainingHistory = "before"
        /// Training: passes over the examples (early stopping may end sooner), examples per batch, Adam step,
        /// softmax temperature, shared random negatives per batch, epochs without validation gain before stopping.
        public var epochs = 12
        public var batchSize = 512
        public var learningRate = 0.002
        public var temperature = 0.05
        public var randomNegatives = 256
        public var patience = 2
        /// Share of the examples held out for early stopping; at most max_examples examples (a seeded sample, 0 = all),
        /// which bounds the daily train on large data.
        public var validationFraction = 0.05
        public var maxExamples = 2_000_000
        public var seed = 42
        /// Worker threads for training; 0 = all cores.
        public var threads = 0
        public init() {}
    }
    /// The ranking stage: merged candidates scored by a learned ranker, then a diversity re-rank.
    public struct Rank: Sendable, Equatable, Codable {
        /// "learned": the ranker `train` fits on held-out interactions (MF + two-tower scores, source ranks,
        /// popularity, freshness, language match); "mf": the MF score (+ its tuned popularity terms).
        public var ranker = "learned"
        /// The ranker is fitted on this fraction of each user's interactions, held out from models trained on the rest,
        /// for at most ranker_users users.
        public var rankerValidationFraction = 0.1
        public var rankerUsers = 20_000
        /// Which interactions the ranker's fold holds out: "random" (a seeded share of each user's: what is missing)
        /// or "time" (each user's newest: what comes next). The ranking is fitted and chosen on them.
        public var rankerSplit = "random"
        /// The learned ranker re-scores the best ranker_pool candidates by the MF ranking and the best ranker_pool by
        /// the two-tower score (the candidates that compete for the top; the rest follow in ranker order); it is
        /// fitted on the same pool. 0 = every candidate.
        public var rankerPool = 100
        /// Fresh uploads: videos published within fresh_hours of --now join the candidates (fresh_candidates at most).
        public var freshHours = 72.0
        public var freshCandidates = 200
        /// Exploration for fresh uploads (two-tower and learned ranking, which can score them): at least this many
        /// fresh videos among the first fresh_slot_depth entries of every list — the best-scored fresh candidates
        /// among the user's best 3 × list_size (0 = off; the trade-off measured in docs/QUALITY.md).
        public var freshSlots = 1
        public var freshSlotDepth = 10
        /// Two-tower candidates per user (0 = refresh.candidates_per_source).
        public var twoTowerCandidates = 0
        /// Diversity: at most max_per_channel videos of one channel per list, at most max_channel_run in a row, and one
        /// video per near-duplicate title (0 = no cap; false = keep duplicates).
        public var maxPerChannel = 10
        public var maxChannelRun = 2
        public var dropNearDuplicates = true
        /// Cold start: segments (country × language × age bucket × gender) with at least this many users get a list.
        public var segmentMinUsers = 20
        public init() {}
    }
    public struct Store: Sendable, Equatable, Codable {
        /// Published versions kept on disk (the served and a pinned one are never deleted).
        public var keepVersions = 5
        /// The publish guard refuses a version whose personalized users or mean list length fall by more than
        /// this fraction against the served version (unless --force).
        public var guardMaxDrop = 0.3
        /// RocksDB block cache of the daemon, MiB; 0 = no block cache: the files are memory-mapped and blocks are
        /// read straight from the OS page cache (measured faster, no warm-up of a second cache).
        public var blockCacheMB = 0
    }
    public struct Lookupd: Sendable, Equatable, Codable {
        public var listen = "127.0.0.1:8080"
        /// Worker threads; 0 = all cores.
        public var threads = 0
        public var maxHeaderBytes = 8192
        public var maxBodyBytes = 65536
        public var maxConnections = 10000
        public var idleTimeoutSeconds = 60.0
        /// Default and maximum `limit` of a request.
        public var defaultLimit = 20
        public var maxLimit = 100
        /// How often the store's CURRENT pointer and the blocklist file are checked, seconds.
        public var reloadIntervalSeconds = 1.0
        /// Optional file of blocked video ids, one per line ('#' comments).
        public var blocklistPath = ""
        /// The already-seen memory: users remembered, videos per user, and how long an entry lives.
        public var seenMaxUsers = 1_000_000
        public var seenMaxPerUser = 200
        public var seenTTLHours = 24.0
        /// After SIGTERM/SIGINT, seconds of answering while /readyz says 503 (so load balancers move traffic
        /// away) before stopping; 0 = stop at once.
        public var drainSeconds = 5.0
    }

    public var data = Data()
    public var refresh = Refresh()
    public var mf = MF()
    public var itemItem = ItemItem()
    public var twoTower = TwoTower()
    public var rank = Rank()
    public var store = Store()
    public var lookupd = Lookupd()

    public init() {}

    /// Every key the file may hold, as `section.key`.
    public static let knownKeys: Set<String> = [
        "data.relevance_watch_fraction", "data.max_bad_row_fraction",
        "refresh.active_days", "refresh.list_size", "refresh.fallback_list_size", "refresh.candidates_per_source",
        "refresh.popular_half_life_hours", "refresh.popular_window_days", "refresh.min_popular_list_interactions",
        "refresh.block_users", "refresh.threads",
        "mf.enabled", "mf.factors", "mf.iterations", "mf.regularization", "mf.unobserved_weight", "mf.cg_steps", "mf.alpha",
        "mf.long_watch_weight", "mf.partial_watch_weight", "mf.like_weight", "mf.share_weight", "mf.comment_weight",
        "mf.dislike_weight", "mf.recent_boost", "mf.recent_half_rank", "mf.popularity_weight", "mf.trending_weight", "mf.tune", "mf.tune_max_pairs", "mf.tune_split",
        "mf.validation_fraction", "mf.retrieval", "mf.ivf_min_videos", "mf.ivf_cells", "mf.ivf_probe", "mf.keep_models",
        "mf.seed", "mf.threads", "item_item.videos", "item_item.regularization", "item_item.weight", "item_item.window", "item_item.far_weight",
        "two_tower.enabled", "two_tower.field_dim", "two_tower.hidden", "two_tower.output", "two_tower.id_buckets",
        "two_tower.token_buckets", "two_tower.history_length", "two_tower.history_half_rank", "two_tower.training_history", "two_tower.epochs",
        "two_tower.batch_size", "two_tower.learning_rate", "two_tower.temperature", "two_tower.random_negatives",
        "two_tower.patience", "two_tower.validation_fraction", "two_tower.max_examples", "two_tower.seed", "two_tower.threads",
        "rank.ranker", "rank.ranker_validation_fraction", "rank.ranker_users", "rank.ranker_split", "rank.ranker_pool", "rank.fresh_hours", "rank.fresh_candidates", "rank.fresh_slots", "rank.fresh_slot_depth",
        "rank.two_tower_candidates", "rank.max_per_channel", "rank.max_channel_run", "rank.drop_near_duplicates",
        "rank.segment_min_users",
        "store.keep_versions", "store.guard_max_drop", "store.block_cache_mb",
        "lookupd.listen", "lookupd.threads", "lookupd.max_header_bytes", "lookupd.max_body_bytes",
        "lookupd.max_connections", "lookupd.idle_timeout_seconds", "lookupd.default_limit", "lookupd.max_limit",
        "lookupd.reload_interval_seconds", "lookupd.blocklist_path", "lookupd.seen_max_users",
        "lookupd.seen_max_per_user", "lookupd.seen_ttl_hours", "lookupd.drain_seconds",
    ]

    public init(file: ConfigFile) throws {
        let unknown = file.unknownKeys(known: Self.knownKeys)
        if !unknown.isEmpty {
            throw HomefeedError("unknown config keys: \(unknown.map { "\($0) (\(file.where_($0)))" }.joined(separator: ", "))")
        }
        try file.double("data.relevance_watch_fraction", &data.relevanceWatchFraction)
        try file.double("data.max_bad_row_fraction", &data.maxBadRowFraction)
        try file.int("refresh.active_days", &refresh.activeDays)
        try file.int("refresh.list_size", &refresh.listSize)
        try file.int("refresh.fallback_list_size", &refresh.fallbackListSize)
        try file.int("refresh.candidates_per_source", &refresh.candidatesPerSource)
        try file.double("refresh.popular_half_life_hours", &refresh.popularHalfLifeHours)
        try file.int("refresh.popular_window_days", &refresh.popularWindowDays)
        try file.double("refresh.min_popular_list_interactions", &refresh.minPopularListInteractions)
        try file.int("refresh.block_users", &refresh.blockUsers)
        try file.int("refresh.threads", &refresh.threads)
        try file.bool("mf.enabled", &mf.enabled)
        try file.int("mf.factors", &mf.factors)
        try file.int("mf.iterations", &mf.iterations)
        try file.double("mf.regularization", &mf.regularization)
        try file.double("mf.unobserved_weight", &mf.unobservedWeight)
        try file.int("mf.cg_steps", &mf.cgSteps)
        try file.double("mf.alpha", &mf.alpha)
        try file.double("mf.long_watch_weight", &mf.longWatchWeight)
        try file.double("mf.partial_watch_weight", &mf.partialWatchWeight)
        try file.double("mf.like_weight", &mf.likeWeight)
        try file.double("mf.share_weight", &mf.shareWeight)
        try file.double("mf.comment_weight", &mf.commentWeight)
        try file.double("mf.dislike_weight", &mf.dislikeWeight)
        try file.double("mf.recent_boost", &mf.recentBoost)
        try file.double("mf.recent_half_rank", &mf.recentHalfRank)
        try file.double("mf.popularity_weight", &mf.popularityWeight)
        try file.double("mf.trending_weight", &mf.trendingWeight)
        file.string("mf.tune", &mf.tune)
        try file.int("mf.tune_max_pairs", &mf.tuneMaxPairs)
        file.string("mf.tune_split", &mf.tuneSplit)
        try file.double("mf.validation_fraction", &mf.validationFraction)
        file.string("mf.retrieval", &mf.retrieval)
        try file.int("mf.ivf_min_videos", &mf.ivfMinVideos)
        try file.int("mf.ivf_cells", &mf.ivfCells)
        try file.int("mf.ivf_probe", &mf.ivfProbe)
        try file.int("item_item.videos", &itemItem.videos)
        try file.double("item_item.regularization", &itemItem.regularization)
        try file.double("item_item.weight", &itemItem.weight)
        try file.double("item_item.window", &itemItem.window)
        try file.double("item_item.far_weight", &itemItem.farWeight)
        try file.int("mf.keep_models", &mf.keepModels)
        try file.int("mf.seed", &mf.seed)
        try file.int("mf.threads", &mf.threads)
        try file.bool("two_tower.enabled", &twoTower.enabled)
        try file.int("two_tower.field_dim", &twoTower.fieldDim)
        try file.int("two_tower.hidden", &twoTower.hidden)
        try file.int("two_tower.output", &twoTower.output)
        try file.int("two_tower.id_buckets", &twoTower.idBuckets)
        try file.int("two_tower.token_buckets", &twoTower.tokenBuckets)
        try file.int("two_tower.history_length", &twoTower.historyLength)
        try file.double("two_tower.history_half_rank", &twoTower.historyHalfRank)
        file.string("two_tower.training_history", &twoTower.trainingHistory)
        try file.int("two_tower.epochs", &twoTower.epochs)
        try file.int("two_tower.batch_size", &twoTower.batchSize)
        try file.double("two_tower.learning_rate", &twoTower.learningRate)
        try file.double("two_tower.temperature", &twoTower.temperature)
        try file.int("two_tower.random_negatives", &twoTower.randomNegatives)
        try file.int("two_tower.patience", &twoTower.patience)
        try file.double("two_tower.validation_fraction", &twoTower.validationFraction)
        try file.int("two_tower.max_examples", &twoTower.maxExamples)
        try file.int("two_tower.seed", &twoTower.seed)
        try file.int("two_tower.threads", &twoTower.threads)
        file.string("rank.ranker", &rank.ranker)
        try file.double("rank.ranker_validation_fraction", &rank.rankerValidationFraction)
        try file.int("rank.ranker_users", &rank.rankerUsers)
        try file.int("rank.ranker_pool", &rank.rankerPool)
        file.string("rank.ranker_split", &rank.rankerSplit)
        try file.double("rank.fresh_hours", &rank.freshHours)
        try file.int("rank.fresh_candidates", &rank.freshCandidates)
        try file.int("rank.fresh_slots", &rank.freshSlots)
        try file.int("rank.fresh_slot_depth", &rank.freshSlotDepth)
        try file.int("rank.two_tower_candidates", &rank.twoTowerCandidates)
        try file.int("rank.max_per_channel", &rank.maxPerChannel)
        try file.int("rank.max_channel_run", &rank.maxChannelRun)
        try file.bool("rank.drop_near_duplicates", &rank.dropNearDuplicates)
        try file.int("rank.segment_min_users", &rank.segmentMinUsers)
        try file.int("store.keep_versions", &store.keepVersions)
        try file.double("store.guard_max_drop", &store.guardMaxDrop)
        try file.int("store.block_cache_mb", &store.blockCacheMB)
        file.string("lookupd.listen", &lookupd.listen)
        try file.int("lookupd.threads", &lookupd.threads)
        try file.int("lookupd.max_header_bytes", &lookupd.maxHeaderBytes)
        try file.int("lookupd.max_body_bytes", &lookupd.maxBodyBytes)
        try file.int("lookupd.max_connections", &lookupd.maxConnections)
        try file.double("lookupd.idle_timeout_seconds", &lookupd.idleTimeoutSeconds)
        try file.int("lookupd.default_limit", &lookupd.defaultLimit)
        try file.int("lookupd.max_limit", &lookupd.maxLimit)
        try file.double("lookupd.reload_interval_seconds", &lookupd.reloadIntervalSeconds)
        file.string("lookupd.blocklist_path", &lookupd.blocklistPath)
        try file.int("lookupd.seen_max_users", &lookupd.seenMaxUsers)
        try file.int("lookupd.seen_max_per_user", &lookupd.seenMaxPerUser)
        try file.double("lookupd.seen_ttl_hours", &lookupd.seenTTLHours)
        try file.double("lookupd.drain_seconds", &lookupd.drainSeconds)
        do { try validate() } catch let e as HomefeedError { throw HomefeedError(Self.locate(e.message, in: file), exitCode: e.exitCode) }
    }

    /// A validation message with where the keys it names were set: "… (path:12: mf.factors = 0)". Messages name
    /// keys in full (`mf.factors`) or as a section followed by bare names (`rank.fresh_slots must be ≤
    /// fresh_slot_depth`), so a key counts when its full name appears, or its section does and its bare name
    /// appears as a word.
    static func locate(_ message: String, in file: ConfigFile) -> String {
        func isWordByte(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "." }
        func containsWord(_ w: String) -> Bool {
            var rest = message[...]
            while let r = rest.range(of: w) {
                let before = r.lowerBound == message.startIndex ? nil : message[message.index(before: r.lowerBound)]
                let after = r.upperBound == message.endIndex ? nil : message[r.upperBound]
                if !(before.map(isWordByte) ?? false) && !(after.map(isWordByte) ?? false) { return true }
                rest = message[r.upperBound...]
            }
            return false
        }
        let named = file.origins.keys.sorted().filter { key in
            guard let dot = key.firstIndex(of: ".") else { return false }
            return containsWord(key) || (message.contains(key[...dot]) && containsWord(String(key[key.index(after: dot)...])))
        }
        guard !named.isEmpty else { return message }
        return message + " (" + named.map { "\(file.where_($0)): \($0) = \(file[$0] ?? "")" }.joined(separator: "; ") + ")"
    }

    /// Loads a config file; nil path = the defaults.
    public static func load(path: String?) throws -> HomefeedConfig {
        guard let path else { return HomefeedConfig() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HomefeedError("cannot read config file \(path)")
        }
        return try HomefeedConfig(file: ConfigFile(text: String(decoding: data, as: UTF8.self), path: path))
    }

    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw HomefeedError("config: \(what)") } }
        try check((0.0...1.0).contains(data.relevanceWatchFraction), "data.relevance_watch_fraction must be in [0, 1]")
        try check((0.0...1.0).contains(data.maxBadRowFraction), "data.max_bad_row_fraction must be in [0, 1]")
        try check(refresh.activeDays >= 0, "refresh.active_days must be ≥ 0")
        try check((1...1000).contains(refresh.listSize), "refresh.list_size must be in 1...1000")
        try check((1...10000).contains(refresh.fallbackListSize), "refresh.fallback_list_size must be in 1...10000")
        try check(refresh.candidatesPerSource >= refresh.listSize, "refresh.candidates_per_source must be ≥ list_size")
        try check(refresh.popularHalfLifeHours > 0, "refresh.popular_half_life_hours must be > 0")
        try check(refresh.blockUsers > 0, "refresh.block_users must be > 0")
        try check(refresh.threads >= 0, "refresh.threads must be ≥ 0")
        try check((1...1024).contains(mf.factors), "mf.factors must be in 1...1024")
        try check(mf.iterations >= 1, "mf.iterations must be ≥ 1")
        try check(mf.regularization > 0, "mf.regularization must be > 0")
        try check(mf.unobservedWeight > 0, "mf.unobserved_weight must be > 0")
        try check(mf.cgSteps >= 0, "mf.cg_steps must be ≥ 0 (0 = exact solves)")
        try check(mf.alpha > 0, "mf.alpha must be > 0")
        for (name, v) in [("long_watch_weight", mf.longWatchWeight), ("partial_watch_weight", mf.partialWatchWeight),
                          ("like_weight", mf.likeWeight), ("share_weight", mf.shareWeight), ("comment_weight", mf.commentWeight),
                          ("dislike_weight", mf.dislikeWeight), ("recent_boost", mf.recentBoost),
                          ("popularity_weight", mf.popularityWeight), ("trending_weight", mf.trendingWeight)] {
            try check(v >= 0, "mf.\(name) must be ≥ 0")
        }
        try check(mf.tuneMaxPairs >= 0, "mf.tune_max_pairs must be ≥ 0")
        try check(mf.recentHalfRank > 0, "mf.recent_half_rank must be > 0")
        try check(["on", "off", "auto"].contains(mf.tune), "mf.tune must be on, off or auto (got '\(mf.tune)')")
        try check(["time", "random"].contains(mf.tuneSplit), "mf.tune_split must be time or random (got '\(mf.tuneSplit)')")
        try check(["time", "random"].contains(rank.rankerSplit), "rank.ranker_split must be time or random (got '\(rank.rankerSplit)')")
        try check(mf.validationFraction > 0 && mf.validationFraction < 1, "mf.validation_fraction must be in (0, 1)")
        try check(["exact", "ivf", "auto"].contains(mf.retrieval), "mf.retrieval must be exact, ivf or auto (got '\(mf.retrieval)')")
        try check(mf.ivfCells >= 0 && mf.ivfProbe >= 0 && mf.ivfMinVideos >= 0, "mf.ivf_* must be ≥ 0")
        try check(mf.keepModels >= 1, "mf.keep_models must be ≥ 1")
        try check((0...16384).contains(itemItem.videos), "item_item.videos must be in 0...16384 (a dense videos² model)")
        try check(itemItem.regularization > 0, "item_item.regularization must be > 0")
        try check(itemItem.weight >= 0, "item_item.weight must be ≥ 0")
        try check(itemItem.window >= 0, "item_item.window must be ≥ 0")
        try check((0...1).contains(itemItem.farWeight), "item_item.far_weight must be in 0...1")
        try check(mf.threads >= 0, "mf.threads must be ≥ 0")
        try check([twoTower.fieldDim, twoTower.hidden, twoTower.output, twoTower.idBuckets, twoTower.tokenBuckets,
                   twoTower.historyLength, twoTower.epochs, twoTower.batchSize].allSatisfy { $0 >= 1 },
                  "two_tower.field_dim, hidden, output, *_buckets, history_length, epochs, batch_size must be ≥ 1")
        try check(["before", "others"].contains(twoTower.trainingHistory), "two_tower.training_history must be before or others (got '\(twoTower.trainingHistory)')")
        try check(twoTower.learningRate > 0 && twoTower.temperature > 0 && twoTower.historyHalfRank > 0,
                  "two_tower.learning_rate, temperature, history_half_rank must be > 0")
        try check(twoTower.randomNegatives >= 0 && twoTower.patience >= 0 && twoTower.maxExamples >= 0 && twoTower.threads >= 0,
                  "two_tower.random_negatives, patience, max_examples, threads must be ≥ 0")
        try check(twoTower.validationFraction > 0 && twoTower.validationFraction < 1, "two_tower.validation_fraction must be in (0, 1)")
        try check(["learned", "mf"].contains(rank.ranker), "rank.ranker must be learned or mf (got '\(rank.ranker)')")
        try check(rank.rankerValidationFraction > 0 && rank.rankerValidationFraction < 1, "rank.ranker_validation_fraction must be in (0, 1)")
        try check(rank.freshSlots <= rank.freshSlotDepth, "rank.fresh_slots must be ≤ fresh_slot_depth")
        try check([rank.rankerUsers, rank.rankerPool, rank.freshCandidates, rank.freshSlots, rank.freshSlotDepth, rank.twoTowerCandidates, rank.maxPerChannel, rank.maxChannelRun,
                   rank.segmentMinUsers].allSatisfy { $0 >= 0 } && rank.freshHours >= 0,
                  "rank.ranker_users, ranker_pool, fresh_*, two_tower_candidates, max_*, segment_min_users must be ≥ 0")
        try check(store.keepVersions >= 1, "store.keep_versions must be ≥ 1")
        try check((0.0...1.0).contains(store.guardMaxDrop), "store.guard_max_drop must be in [0, 1]")
        try check((0...1024).contains(lookupd.threads), "lookupd.threads (--threads) must be in 0...1024 (0 = all cores)")
        try check(lookupd.maxConnections >= 1, "lookupd.max_connections must be ≥ 1")
        try check(lookupd.idleTimeoutSeconds > 0, "lookupd.idle_timeout_seconds must be > 0")
        try check(lookupd.defaultLimit >= 1 && lookupd.defaultLimit <= lookupd.maxLimit, "lookupd.default_limit must be in 1...max_limit")
        try check(store.blockCacheMB >= 0, "store.block_cache_mb must be ≥ 0")
        try check(lookupd.reloadIntervalSeconds > 0, "lookupd.reload_interval_seconds must be > 0")
        try check(lookupd.seenMaxPerUser >= 0 && lookupd.seenMaxUsers >= 0, "lookupd.seen_* must be ≥ 0")
        // ≤ a day: a typo (minutes as seconds × 60) should not keep a replica half-alive for hours.
        try check(lookupd.drainSeconds >= 0 && lookupd.drainSeconds <= 86400,
                  "lookupd.drain_seconds must be in 0...86400 (0 = stop at once)")
    }

    /// A stable digest of the effective configuration (recorded with each version).
    public var digest: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let bytes = (try? enc.encode(self)) ?? Foundation.Data()
        return hex(StableHash.fnv1a64(bytes))
    }
}

public func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// Worker threads to use: the configured count, or all cores when 0.
public func effectiveThreads(_ configured: Int) -> Int {
    configured > 0 ? configured : max(1, ProcessInfo.processInfo.activeProcessorCount)
}
