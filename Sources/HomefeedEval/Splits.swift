import HomefeedCore
import HomefeedData

// Holdout splits over a loaded `Dataset` (docs/EVALUATION.md): a train `Dataset` for the model, and a test set of
// ground truths. Three ways to hold out:
//
//   time split     per user, the last `testFraction` of their interactions by timestamp (ties by file order)
//   random split   per user, a seeded uniform `testFraction` of their interactions
//   given files    a second data folder's interactions are the test set (e.g. a shared split's test.tsv)
//
// Per user with n interactions, train keeps round((1 − testFraction) · n) of them, rounding half to even (numpy's
// round, as rec_eval's `chrono_split` and `stratified_split`); the rest are test. Every interaction kind counts
// (impressions, searches…): the split is a cut in the user's own timeline. Ground truth T_u = the distinct videos
// of the user's **relevant** test interactions (a like, or a watch of ≥ `watchFraction` of the video,
// `Dataset.isRelevant`); dislikes and other test events are not in it, and no test interaction stays in train.

/// How test interactions become ground truth.
public struct TestSetOptions: Sendable, Equatable {
    /// A watch is relevant when it covers at least this fraction of the video (`[data] relevance_watch_fraction`).
    public var watchFraction: Double
    /// Remove from T_u the videos the user had seen in train (watched, liked or disliked: docs/DATA.md). Off by
    /// default, as in rec_eval, which keeps them (and expects the recommender to remove seen items, so they are
    /// misses); `SplitStats.truthSeenInTrain` says how many there are either way.
    public var dropSeenInTrain: Bool

    public init(watchFraction: Double = 0.5, dropSeenInTrain: Bool = false) {
        self.watchFraction = watchFraction; self.dropSeenInTrain = dropSeenInTrain
    }
}

/// One test user: dense user index of the train `Dataset`, ground truth, and what they saw in train.
public struct TestUser: Sendable, Equatable {
    public let user: Int32
    /// Relevant test videos in the train catalog (dataset video indices), sorted, distinct.
    public let truth: ArraySlice<Int32>
    /// Relevant test videos that are not in the train catalog (given files only): they count in |T_u| but no list
    /// can contain them.
    public let unreachable: Int
    /// Videos the user watched, liked or disliked in train, sorted, distinct (empty for cold users).
    public let seen: ArraySlice<Int32>
    /// |T_u|.
    public var relevantCount: Int { truth.count + unreachable }
}

/// Test users in ascending user index, with their ground truths (compact CSR storage).
public struct TestUsers: RandomAccessCollection, Sendable {
    /// Dense user indices, ascending.
    public let users: [Int32]
    let truthOffsets: [Int]
    let truthVideos: [Int32]
    let unreachableCounts: [Int32]
    let seenOffsets: [Int]
    let seenVideos: [Int32]

    init(users: [Int32] = [], truthOffsets: [Int] = [0], truthVideos: [Int32] = [], unreachable: [Int32] = [],
         seenOffsets: [Int] = [0], seenVideos: [Int32] = []) {
        self.users = users; self.truthOffsets = truthOffsets; self.truthVideos = truthVideos
        unreachableCounts = unreachable; self.seenOffsets = seenOffsets; self.seenVideos = seenVideos
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { users.count }
    public subscript(i: Int) -> TestUser {
        TestUser(user: users[i], truth: truthVideos[truthOffsets[i]..<truthOffsets[i + 1]],
                 unreachable: Int(unreachableCounts[i]), seen: seenVideos[seenOffsets[i]..<seenOffsets[i + 1]])
    }

    /// The test user with dense index `user`, or nil.
    public func find(user: Int32) -> TestUser? {
        var lo = 0, hi = users.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if users[mid] < user { lo = mid + 1 } else { hi = mid }
        }
        return lo < users.count && users[lo] == user ? self[lo] : nil
    }

    /// Σ |T_u| over these users.
    public var relevantPairs: Int { truthVideos.count + unreachableCounts.reduce(0) { $0 + Int($1) } }
}

/// What a split did, for the report (all counts are of the split's input unless noted).
public struct SplitStats: Codable, Sendable, Equatable {
    /// "time", "random" or "files".
    public var method: String
    /// The held-out fraction per user (nil for given files).
    public var testFraction: Double?
    /// The seed of a random split.
    public var seed: UInt64?
    public var watchFraction: Double
    public var dropSeenInTrain: Bool
    public var trainInteractions = 0
    public var testInteractions = 0
    /// Test interactions that are relevant (likes and long-enough watches).
    public var relevantTestInteractions = 0
    /// Users with at least one test interaction (known to the train users table).
    public var testUsers = 0
    /// Test users with at least one relevant test interaction.
    public var usersWithRelevantTest = 0
    /// Users to evaluate (`TestSet.users`): ≥ 1 relevant test video and ≥ 1 train interaction.
    public var evaluatedUsers = 0
    /// Users with ≥ 1 relevant test video and no train interaction (`TestSet.coldUsers`).
    public var coldUsers = 0
    /// (user, video) pairs of the ground truth of evaluated and cold users (Σ |T_u|).
    public var truthPairs = 0
    /// Pairs whose video the user had seen in train (kept in T_u unless `dropSeenInTrain`; then removed and not in
    /// `truthPairs`).
    public var truthSeenInTrain = 0
    /// Users whose ground truth became empty when seen videos were dropped (not evaluated).
    public var usersLeftWithoutTruth = 0
    /// Given files: relevant test pairs on videos missing from the train catalog (in `truthPairs`, never hit).
    public var truthOutsideCatalog = 0
    /// Given files: distinct test users missing from the train users table (not evaluated).
    public var unknownTestUsers = 0

    public init(method: String, testFraction: Double?, seed: UInt64?, options: TestSetOptions) {
        self.method = method; self.testFraction = testFraction; self.seed = seed
        watchFraction = options.watchFraction; dropSeenInTrain = options.dropSeenInTrain
    }
}

/// The ground truth of a split.
public struct TestSet: Sendable {
    /// The users to evaluate: ≥ 1 relevant test video and ≥ 1 train interaction.
    public var users: TestUsers
    /// Users with ≥ 1 relevant test video but no train interaction (the recommender only has fallbacks for them):
    /// report them separately, never mixed into `users`.
    public var coldUsers: TestUsers
    public var stats: SplitStats
}

/// A train dataset and its test set.
public struct HoldoutSplit: Sendable {
    /// The input dataset with the same users, videos and interned tables (same indices), holding only the train
    /// interactions (in file order). Train the model on this.
    public var train: Dataset
    public var test: TestSet
}

public enum Holdout {
    /// Interactions kept in train for a user with `n`: round((1 − testFraction) · n), half to even.
    /// E.g. testFraction 0.2: n = 1 → 1, 2 → 2, 3 → 2, 5 → 4, 10 → 8.
    public static func trainCount(_ n: Int, testFraction: Double) -> Int {
        Int(((1 - testFraction) * Double(n)).rounded(.toNearestOrEven))
    }

    /// Per-user time split: each user's last `testFraction` of interactions by timestamp (ties by file order) are
    /// test, the rest train. `heldOutUsers` < 1 holds out interactions of only that seeded share of the users.
    public static func timeSplit(_ data: Dataset, testFraction: Double, coldUsers: Double = 0, seed: UInt64 = 0,
                                 heldOutUsers: Double = 1,
                                 options: TestSetOptions = TestSetOptions()) throws -> HoldoutSplit {
        try check(testFraction)
        var order: [Int32] = []
        let offsets = groupByUser(data.interactions.user, users: data.users.count, order: &order)
        let ts = data.interactions.timestamp
        var isTest = [Bool](repeating: false, count: data.interactions.count)
        for u in 0..<data.users.count {
            let lo = offsets[u], hi = offsets[u + 1]
            if hi == lo { continue }
            if heldOutUsers < 1 && !isCold(data, u, fraction: heldOutUsers, seed: seed &+ 1) { continue }
            // order is file order within a user; sort by (timestamp, file position).
            order[lo..<hi].sort { a, b in ts[Int(a)] < ts[Int(b)] || (ts[Int(a)] == ts[Int(b)] && a < b) }
            let kept = isCold(data, u, fraction: coldUsers, seed: seed) ? 0 : trainCount(hi - lo, testFraction: testFraction)
            for k in (lo + kept)..<hi { isTest[Int(order[k])] = true }
        }
        var stats = SplitStats(method: "time", testFraction: testFraction, seed: nil, options: options)
        return split(data, isTest: isTest, stats: &stats, options: options)
    }

    /// Per-user random split: for each user with n interactions, a uniformly random subset of n − trainCount(n)
    /// of them is test. The draw of a user depends only on `seed`, the user's id and their interactions in file
    /// order (a `SeededRandom` seeded with FNV-1a 64 of the id; recipe in docs/EVALUATION.md): reproducible across
    /// runs and machines, and unaffected by other users.
    /// `heldOutUsers` < 1 holds out interactions of only that seeded share of the users (the others keep all theirs).
    public static func randomSplit(_ data: Dataset, testFraction: Double, seed: UInt64, coldUsers: Double = 0,
                                   heldOutUsers: Double = 1,
                                   options: TestSetOptions = TestSetOptions()) throws -> HoldoutSplit {
        try check(testFraction)
        var order: [Int32] = []
        let offsets = groupByUser(data.interactions.user, users: data.users.count, order: &order)
        var isTest = [Bool](repeating: false, count: data.interactions.count)
        let salt = StableHash.mix64(seed)
        for u in 0..<data.users.count {
            let lo = offsets[u], hi = offsets[u + 1]
            if hi == lo { continue }
            if heldOutUsers < 1 && !isCold(data, u, fraction: heldOutUsers, seed: seed &+ 1) { continue }
            let h = data.users.ids.withBytes(u) { StableHash.fnv1a64($0, seed: StableHash.offsetBasis ^ salt) }
            var rng = SeededRandom(seed: h)
            // Fisher–Yates (our own, so the order never depends on the standard library's shuffle).
            var i = hi - 1
            while i > lo {
                let j = lo + rng.nextInt(i - lo + 1)
                order.swapAt(i, j)
                i -= 1
            }
            let kept = isCold(data, u, fraction: coldUsers, seed: seed) ? 0 : trainCount(hi - lo, testFraction: testFraction)
            for k in (lo + kept)..<hi { isTest[Int(order[k])] = true }
        }
        var stats = SplitStats(method: "random", testFraction: testFraction, seed: seed, options: options)
        return split(data, isTest: isTest, stats: &stats, options: options)
    }

    /// Given test files: `test` (another data folder, loaded with `DatasetLoader`) holds the test interactions;
    /// `train` is used as is. Users and videos are matched by id. Test users missing from `train`'s users are
    /// counted (`unknownTestUsers`) and skipped; relevant test videos missing from its catalog stay in |T_u| as
    /// unreachable. Relevance uses the test folder's own video durations.
    public static func givenTest(train: Dataset, test: Dataset,
                                 options: TestSetOptions = TestSetOptions()) throws -> HoldoutSplit {
        var stats = SplitStats(method: "files", testFraction: nil, seed: nil, options: options)
        let userMap = (0..<test.users.count).map { u in test.users.ids.withBytes(u) { train.users.ids.index(of: $0) ?? -1 } }
        let videoMap = (0..<test.videos.count).map { v in test.videos.ids.withBytes(v) { train.videos.ids.index(of: $0) ?? -1 } }
        var testUser = [Bool](repeating: false, count: train.users.count)
        var unknown = [Bool](repeating: false, count: test.users.count)
        var pairs: [UInt64] = []
        let ix = test.interactions
        for i in 0..<ix.count {
            let u = userMap[Int(ix.user[i])]
            guard u >= 0 else { unknown[Int(ix.user[i])] = true; continue }
            testUser[Int(u)] = true
            guard test.isRelevant(i, watchFraction: options.watchFraction) else { continue }
            stats.relevantTestInteractions += 1
            let v = ix.video[i], mv = videoMap[Int(v)]
            pairs.append(pairKey(u, mv >= 0 ? mv : -(v + 1)))   // negative: outside the train catalog
        }
        stats.trainInteractions = train.interactions.count
        stats.testInteractions = ix.count
        stats.testUsers = testUser.reduce(0) { $0 + ($1 ? 1 : 0) }
        stats.unknownTestUsers = unknown.reduce(0) { $0 + ($1 ? 1 : 0) }
        let set = buildTestSet(train: train, pairs: pairs, stats: stats, options: options)
        return HoldoutSplit(train: train, test: set)
    }

    // MARK: - Shared steps

    /// Whether user u is held out whole (every interaction test: a cold-start user) — a seeded `fraction` of the
    /// users, chosen by a stable hash of the id.
    static func isCold(_ data: Dataset, _ u: Int, fraction: Double, seed: UInt64) -> Bool {
        guard fraction > 0 else { return false }
        // FNV-1a's top bits hardly move with an id's last bytes ("u17" vs "u18"): mix them in before comparing.
        let h = data.users.ids.withBytes(u) { StableHash.mix64(StableHash.fnv1a64($0, seed: StableHash.mix64(seed ^ 0xC01D))) }
        return Double(h >> 11) / Double(1 << 53) < fraction
    }

    static func check(_ f: Double) throws {
        guard f > 0 && f < 1 else { throw HomefeedError("test fraction must be in (0, 1), got \(f)") }
    }

    /// Interaction indices grouped by user, file order kept within a user (stable counting sort): user u's are
    /// `order[offsets[u]..<offsets[u + 1]]`. Returns the offsets.
    static func groupByUser(_ user: [Int32], users: Int, order: inout [Int32]) -> [Int] {
        var offsets = [Int](repeating: 0, count: users + 1)
        for u in user { offsets[Int(u) + 1] += 1 }
        for u in 0..<users { offsets[u + 1] += offsets[u] }
        var next = offsets
        order = [Int32](repeating: 0, count: user.count)
        for (i, u) in user.enumerated() { order[next[Int(u)]] = Int32(i); next[Int(u)] += 1 }
        return offsets
    }

    /// (user, video) as one sortable key; `video` may be negative (a video outside the catalog).
    static func pairKey(_ user: Int32, _ video: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: user)) << 32 | UInt64(UInt32(bitPattern: video))
    }

    /// Train = the interactions not marked test; the test set from the marked ones.
    static func split(_ data: Dataset, isTest: [Bool], stats: inout SplitStats, options: TestSetOptions) -> HoldoutSplit {
        var train = data
        var kept = Interactions()
        let ix = data.interactions
        let nTest = isTest.reduce(0) { $0 + ($1 ? 1 : 0) }
        kept.reserve(ix.count - nTest)
        var testUser = [Bool](repeating: false, count: data.users.count)
        var pairs: [UInt64] = []
        for i in 0..<ix.count {
            if isTest[i] {
                testUser[Int(ix.user[i])] = true
                if data.isRelevant(i, watchFraction: options.watchFraction) {
                    stats.relevantTestInteractions += 1
                    pairs.append(pairKey(ix.user[i], ix.video[i]))
                }
            } else {
                kept.user.append(ix.user[i]); kept.video.append(ix.video[i]); kept.event.append(ix.event[i])
                kept.watchSeconds.append(ix.watchSeconds[i]); kept.timestamp.append(ix.timestamp[i])
                kept.device.append(ix.device[i]); kept.query.append(ix.query[i])
            }
        }
        train.interactions = kept
        stats.trainInteractions = kept.count
        stats.testInteractions = nTest
        stats.testUsers = testUser.reduce(0) { $0 + ($1 ? 1 : 0) }
        return HoldoutSplit(train: train, test: buildTestSet(train: train, pairs: pairs, stats: stats, options: options))
    }

    /// Groups the relevant test pairs by user into ground truths, splits warm from cold users by their train
    /// history, and looks up what each saw in train.
    static func buildTestSet(train: Dataset, pairs unsorted: [UInt64], stats s: SplitStats,
                             options: TestSetOptions) -> TestSet {
        var stats = s
        var pairs = unsorted
        pairs.sort()
        dedupe(&pairs)
        // Train history: interaction count per user, and seen (watch / like / dislike) pairs of the test users.
        var trainCount = [Int32](repeating: 0, count: train.users.count)
        for u in train.interactions.user { trainCount[Int(u)] &+= 1 }
        var needed = [Bool](repeating: false, count: train.users.count)
        for p in pairs { needed[Int(p >> 32)] = true }
        var seen: [UInt64] = []
        let tix = train.interactions
        for i in 0..<tix.count where needed[Int(tix.user[i])] {
            let e = tix.event[i]
            if (e == .watch || e == .like || e == .dislike) && tix.video[i] >= 0 {
                seen.append(pairKey(tix.user[i], tix.video[i]))
            }
        }
        seen.sort()
        dedupe(&seen)

        var warm = Builder(), cold = Builder()
        var p = 0, q = 0
        var truth: [Int32] = [], userSeen: [Int32] = []
        while p < pairs.count {
            let u = Int32(truncatingIfNeeded: pairs[p] >> 32)
            truth.removeAll(keepingCapacity: true); userSeen.removeAll(keepingCapacity: true)
            var unreachable = 0
            while q < seen.count && Int32(truncatingIfNeeded: seen[q] >> 32) < u { q += 1 }
            while q < seen.count && Int32(truncatingIfNeeded: seen[q] >> 32) == u {
                userSeen.append(Int32(truncatingIfNeeded: seen[q] & 0xFFFF_FFFF)); q += 1
            }
            var seenPairs = 0
            while p < pairs.count && Int32(truncatingIfNeeded: pairs[p] >> 32) == u {
                let v = Int32(bitPattern: UInt32(truncatingIfNeeded: pairs[p]))
                p += 1
                if v < 0 { unreachable += 1; continue }
                if binarySearch(userSeen, v) {
                    seenPairs += 1
                    if options.dropSeenInTrain { continue }
                }
                truth.append(v)   // ascending: pairs are sorted and videos ≥ 0 sort numerically
            }
            stats.usersWithRelevantTest += 1
            stats.truthSeenInTrain += seenPairs
            stats.truthOutsideCatalog += unreachable
            if truth.isEmpty && unreachable == 0 { stats.usersLeftWithoutTruth += 1; continue }
            stats.truthPairs += truth.count + unreachable
            if trainCount[Int(u)] > 0 { warm.add(u, truth, unreachable, userSeen) }
            else { cold.add(u, truth, unreachable, []) }
        }
        stats.evaluatedUsers = warm.users.count
        stats.coldUsers = cold.users.count
        return TestSet(users: warm.build(), coldUsers: cold.build(), stats: stats)
    }

    struct Builder {
        var users: [Int32] = [], truthOffsets = [0], truthVideos: [Int32] = [], unreachable: [Int32] = []
        var seenOffsets = [0], seenVideos: [Int32] = []
        mutating func add(_ u: Int32, _ truth: [Int32], _ unreachableCount: Int, _ seen: [Int32]) {
            users.append(u)
            truthVideos.append(contentsOf: truth); truthOffsets.append(truthVideos.count)
            unreachable.append(Int32(clamping: unreachableCount))
            seenVideos.append(contentsOf: seen); seenOffsets.append(seenVideos.count)
        }
        func build() -> TestUsers {
            TestUsers(users: users, truthOffsets: truthOffsets, truthVideos: truthVideos, unreachable: unreachable,
                      seenOffsets: seenOffsets, seenVideos: seenVideos)
        }
    }

    static func dedupe(_ a: inout [UInt64]) {
        guard a.count > 1 else { return }
        var w = 1
        for r in 1..<a.count where a[r] != a[w - 1] { a[w] = a[r]; w += 1 }
        a.removeLast(a.count - w)
    }

    static func binarySearch(_ a: [Int32], _ x: Int32) -> Bool {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo < a.count && a[lo] == x
    }
}
