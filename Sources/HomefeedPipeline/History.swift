import HomefeedData

/// Each user's interactions, grouped: the seen videos (never recommended back) and the last activity time.
public struct UserHistory: Sendable {
    /// Interactions of user u: `order[offsets[u]..<offsets[u+1]]` (indices into Interactions, time order kept).
    public let offsets: [Int]
    public let order: [Int32]
    /// Videos user u watched, liked or disliked: `seen[seenOffsets[u]..<seenOffsets[u+1]]`, sorted, unique.
    public let seenOffsets: [Int]
    public let seen: [Int32]
    /// Newest interaction per user (Int64.min without history).
    public let lastActive: [Int64]

    public init(_ data: Dataset) {
        let users = data.users.count
        let ix = data.interactions
        // 1. Counting sort of interaction indices by user (stable: file order within a user).
        var counts = [Int](repeating: 0, count: users + 1)
        for u in ix.user { counts[Int(u) + 1] += 1 }
        for u in 0..<users { counts[u + 1] += counts[u] }
        var next = counts
        var order = [Int32](repeating: 0, count: ix.count)
        var last = [Int64](repeating: .min, count: users)
        for i in 0..<ix.count {
            let u = Int(ix.user[i])
            order[next[u]] = Int32(i); next[u] += 1
            if ix.timestamp[i] > last[u] { last[u] = ix.timestamp[i] }
        }
        // 2. Seen videos per user: watched, liked or disliked, deduplicated.
        var seenOffsets = [Int](repeating: 0, count: users + 1)
        var seen: [Int32] = []
        seen.reserveCapacity(ix.count / 2)
        var buf: [Int32] = []
        for u in 0..<users {
            buf.removeAll(keepingCapacity: true)
            for k in counts[u]..<counts[u + 1] {
                let i = Int(order[k])
                switch ix.event[i] {
                case .watch, .like, .dislike: buf.append(ix.video[i])
                default: break
                }
            }
            buf.sort()
            var prev: Int32 = -1
            for v in buf where v != prev { seen.append(v); prev = v }
            seenOffsets[u + 1] = seen.count
        }
        offsets = counts; self.order = order; self.seenOffsets = seenOffsets; self.seen = seen; lastActive = last
    }

    public func seen(of u: Int) -> ArraySlice<Int32> { seen[seenOffsets[u]..<seenOffsets[u + 1]] }
    public func interactions(of u: Int) -> ArraySlice<Int32> { order[offsets[u]..<offsets[u + 1]] }
    public func hasHistory(_ u: Int) -> Bool { offsets[u + 1] > offsets[u] }
}
