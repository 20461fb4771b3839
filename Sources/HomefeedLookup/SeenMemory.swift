import HomefeedCore
import Synchronization

/// The real-time "already seen" filter: videos a user was just shown, posted by the homepage, excluded from that
/// user's next responses. Per process (the homepage routes a user to one replica); bounded in users and videos
/// per user, entries expire after `ttl` seconds. Up to 64 lock-striped shards keep threads from contending.
public final class SeenMemory: Sendable {
    struct Entry { var videos: [(id: String, expires: Double)] }
    struct Shard { var users: [String: Entry] = [:]; var order: [String] = []; var orderHead = 0 }

    final class Stripe: Sendable { let lock = Locked(Shard()) }
    private let shards: [Stripe]
    private let maxUsersPerShard: Int
    private let maxPerUser: Int
    private let ttl: Double
    private let users = Atomic<Int>(0)

    private let maxUsers: Int
    /// One bit per FNV-1a hash bucket of every user ever recorded (never cleared): a clear bit proves the user has
    /// nothing remembered, so most lookups skip the String key, the lock and the dictionary. 131,072 buckets.
    private let presence: InlineArray<2048, Atomic<UInt64>>

    public init(maxUsers: Int, maxPerUser: Int, ttlSeconds: Double) {
        // Up to 64 shards, fewer for a small memory, so that shards × users per shard never exceeds maxUsers.
        var count = 1
        while count < 64 && count * 2 <= maxUsers / 16 { count *= 2 }
        shards = (0..<count).map { _ in Stripe() }
        maxUsersPerShard = max(1, maxUsers / count)
        self.maxUsers = maxUsers
        self.maxPerUser = maxPerUser
        ttl = ttlSeconds
        presence = InlineArray { _ in Atomic(0) }
    }

    private func presenceBit(_ hash: UInt64) -> (word: Int, mask: UInt64) {
        (Int((hash >> 6) & 2047), 1 << (hash & 63))
    }

    /// The user's unexpired seen videos, from the id's bytes (the request path).
    public func seen(userID: UnsafeRawBufferPointer, now: Double = TimeFormat.monotonic()) -> [String] {
        if userCount == 0 { return [] }
        let (w, m) = presenceBit(StableHash.fnv1a64(userID))
        if presence[w].load(ordering: .relaxed) & m == 0 { return [] }
        return seen(user: String(decoding: userID, as: UTF8.self), now: now)
    }

    /// Users currently remembered (cheap check that lets lookups skip the memory entirely when it is empty).
    public var userCount: Int { users.load(ordering: .relaxed) }

    private func shard(_ user: String) -> Int { Int(StableHash.fnv1a64(user) & UInt64(shards.count - 1)) }

    /// Entries of the shards' eviction order (live users plus stale ones not yet compacted away); for tests.
    var trackedEntries: Int { shards.reduce(0) { n, s in n + s.lock.withLock { $0.order.count - $0.orderHead } } }

    /// Remembers `videos` for `user`; the newest `maxPerUser` are kept.
    public func record(user: String, videos: [String], now: Double = TimeFormat.monotonic()) {
        guard maxPerUser > 0, maxUsers > 0, !videos.isEmpty else { return }
        let expires = now + ttl
        let (w, m) = presenceBit(StableHash.fnv1a64(user))
        presence[w].bitwiseOr(m, ordering: .relaxed)
        shards[shard(user)].lock.withLock { s in
            if var e = s.users[user] {
                e.videos.removeAll { $0.expires <= now || videos.contains($0.id) }
                e.videos.append(contentsOf: videos.suffix(maxPerUser).map { ($0, expires) })
                if e.videos.count > maxPerUser { e.videos.removeFirst(e.videos.count - maxPerUser) }
                s.users[user] = e
            } else {
                // Evict the oldest users of this shard when full (insertion order approximates recency).
                while s.users.count >= maxUsersPerShard && s.orderHead < s.order.count {
                    let old = s.order[s.orderHead]
                    s.orderHead += 1
                    if s.users.removeValue(forKey: old) != nil { users.subtract(1, ordering: .relaxed) }
                }
                s.users[user] = Entry(videos: videos.suffix(maxPerUser).map { ($0, expires) })
                s.order.append(user)
                users.add(1, ordering: .relaxed)
                // Users dropped on expiry (and evicted ones before orderHead) leave stale entries behind: compact
                // once they outnumber the live ones, keeping each live user's latest position.
                if s.order.count > 2 * s.users.count + 16 {
                    var kept = Set<String>()
                    var fresh: [String] = []
                    for u in s.order[s.orderHead...].reversed() where s.users[u] != nil && kept.insert(u).inserted {
                        fresh.append(u)
                    }
                    s.order = fresh.reversed()
                    s.orderHead = 0
                }
            }
        }
    }

    /// The user's unexpired seen videos.
    public func seen(user: String, now: Double = TimeFormat.monotonic()) -> [String] {
        shards[shard(user)].lock.withLock { s in
            guard let e = s.users[user] else { return [] }
            let live = e.videos.filter { $0.expires > now }
            if live.isEmpty {
                s.users[user] = nil
                users.subtract(1, ordering: .relaxed)
            }
            return live.map(\.id)
        }
    }
}
