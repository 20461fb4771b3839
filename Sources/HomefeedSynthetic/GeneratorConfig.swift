import HomefeedCore

/// Parameters of the synthetic world. Output depends only on these (never on `threads`); the defaults are frozen
/// (the pinned-digest test guards them).
public struct GeneratorConfig: Sendable, Equatable {
    /// Users in users.csv (including those without history).
    public var users = 10_000
    /// Videos in videos.csv.
    public var videos = 2_000
    /// Seed of every random choice.
    public var seed: UInt64 = 1
    /// Mean interactions.csv rows per user (over all users, those without history included).
    public var interactionsPerUser = 20.0
    /// Newest possible event time (Unix seconds); events fall in the `days` before it.
    public var endTime: Int64 = 1_793_491_200   // 2026-11-01T00:00:00Z
    /// Length of the activity window, days.
    public var days = 30
    /// Share of users that appear in users.csv only.
    public var noHistoryFraction = 0.10
    /// Exponent on the per-video popularity weight in the engagement model (popularity^a).
    public var popularityExponent = 1.0
    /// Strength of the planted taste structure (b in exp(b · taste·topics)); 0 = popularity only.
    public var tasteStrength = 1.0
    /// Worker threads; 0 = all cores. Does not change the output.
    public var threads = 0

    public init() {}

    public init(users: Int, videos: Int, seed: UInt64 = 1) {
        self.users = users; self.videos = videos; self.seed = seed
    }

    public var startTime: Int64 { endTime - Int64(days) * 86_400 }

    /// Throws a message naming the bad parameter.
    public func validate() throws {
        guard users >= 1 else { throw HomefeedError("generate: users must be at least 1 (got \(users))") }
        guard videos >= 1 else { throw HomefeedError("generate: videos must be at least 1 (got \(videos))") }
        guard users <= 2_000_000_000, videos <= 2_000_000_000 else {
            throw HomefeedError("generate: users and videos must be at most 2000000000")
        }
        guard days >= 1 && days <= 3650 else { throw HomefeedError("generate: days must be in 1...3650 (got \(days))") }
        guard interactionsPerUser.isFinite && interactionsPerUser >= 0 && interactionsPerUser <= 100_000 else {
            throw HomefeedError("generate: interactions per user must be in 0...100000 (got \(interactionsPerUser))")
        }
        guard noHistoryFraction >= 0 && noHistoryFraction <= 1 else {
            throw HomefeedError("generate: no-history fraction must be in 0...1 (got \(noHistoryFraction))")
        }
        guard popularityExponent.isFinite && popularityExponent >= 0 && popularityExponent <= 4 else {
            throw HomefeedError("generate: popularity exponent must be in 0...4 (got \(popularityExponent))")
        }
        guard tasteStrength.isFinite && tasteStrength >= 0 && tasteStrength <= 4 else {
            throw HomefeedError("generate: taste strength must be in 0...4 (got \(tasteStrength))")
        }
        guard threads >= 0 else { throw HomefeedError("generate: threads must be >= 0 (got \(threads))") }
        guard endTime > Int64(days) * 86_400 && endTime < 32_503_680_000 else {
            throw HomefeedError("generate: end time \(endTime) is out of range")
        }
    }
}

/// What `Generator.generate` wrote.
public struct GeneratorSummary: Sendable {
    public var users = 0
    public var usersWithHistory = 0
    public var videos = 0
    public var channels = 0
    public var interactions = 0
    /// Rows per event name (`impression`, `click`, …).
    public var events: [String: Int] = [:]
    /// Bytes of users.csv, videos.csv, interactions.csv.
    public var bytes = 0
    public var seconds = 0.0
    public init() {}
}

extension GeneratorSummary: CustomStringConvertible {
    /// One line for the command's output: counts, then events by kind.
    public var description: String {
        let kinds = events.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "\(users) users (\(usersWithHistory) with history), \(videos) videos, \(channels) channels, \(interactions) interactions (\(kinds)), \(Format.bytes(bytes))"
    }
}
