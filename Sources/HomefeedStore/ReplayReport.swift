// The result of replaying a served version against what its users did next (`Replay.run` in HomefeedEval,
// docs/EVALUATION.md); it lives here because each version's RunMetadata records one.

/// How a served version's lists fared against the relevant interactions that arrived after its as-of time.
///
/// Ground truth of user u: the distinct videos u liked, or watched for ≥ `watchFraction` of their duration, with a
/// timestamp in (asOf, windowEnd]. Users without such an interaction are not scored. Lists are the stored ones, as
/// the batch wrote them (before the daemon's request-time filters and top-ups), cut to k.
public struct ReplayReport: Codable, Sendable, Equatable {
    /// Metrics of one group of users at cut-off k. Every average is over **all** users of the group (a user whose
    /// list is empty counts 0).
    public struct AtK: Codable, Sendable, Equatable {
        public var k: Int
        /// mean of hits / k.
        public var precision: Double
        /// mean of hits / |T_u|.
        public var recall: Double
        /// mean of DCG / IDCG, binary gains, discount 1/ln(1 + rank), IDCG over min(|T_u|, k) positions.
        public var ndcg: Double
        /// share of users with at least one hit in their top k.
        public var hitRate: Double
        public init(k: Int, precision: Double, recall: Double, ndcg: Double, hitRate: Double) {
            self.k = k; self.precision = precision; self.recall = recall; self.ndcg = ndcg; self.hitRate = hitRate
        }
    }

    /// Catalog coverage of the version's user lists at cut-off k.
    public struct Coverage: Codable, Sendable, Equatable {
        public var k: Int
        /// Distinct videos among the first k entries of every user list of the version (all users, active or not).
        public var videos: Int
        /// videos / the version's video table size.
        public var share: Double
        public init(k: Int, videos: Int, share: Double) { self.k = k; self.videos = videos; self.share = share }
    }

    /// The version replayed (its name) and its as-of time: the window starts right after it.
    public var version: String
    public var asOf: Int64
    /// Newest interaction in the window (asOf when the window is empty).
    public var windowEnd: Int64
    /// The relevance threshold used.
    public var watchFraction: Double
    /// Relevant interactions in the window (all of them, before grouping by user and video).
    public var relevantInteractions: Int
    /// Users with at least one relevant interaction in the window: the users scored.
    public var activeUsers: Int
    /// Active users with a personalized list in the version (scored in `personalized`).
    public var personalizedUsers: Int
    /// Active users without one: the daemon served them a popular list (region, else language, else global);
    /// scored against that list in `fallback`.
    public var fallbackUsers: Int
    /// (user, video) ground-truth pairs, Σ |T_u| over active users.
    public var truthPairs: Int
    /// Pairs the user had already watched, liked or disliked at or before asOf (the lists exclude those, so they
    /// are misses by design; kept in T_u as the offline evaluation keeps seen videos).
    public var truthSeenBefore: Int
    /// Pairs on videos missing from the version's video table (uploaded after it; no list could contain them).
    public var truthNotInVersion: Int
    /// User lists in the version.
    public var listUsers: Int
    /// Metrics per k over the personalized and the fallback users.
    public var personalized: [AtK]
    public var fallback: [AtK]
    public var coverage: [Coverage]

    public init(version: String, asOf: Int64) {
        self.version = version; self.asOf = asOf; windowEnd = asOf; watchFraction = 0.5
        relevantInteractions = 0; activeUsers = 0; personalizedUsers = 0; fallbackUsers = 0
        truthPairs = 0; truthSeenBefore = 0; truthNotInVersion = 0; listUsers = 0
        personalized = []; fallback = []; coverage = []
    }
}
