import HomefeedCore
import HomefeedData
import HomefeedStore

/// Scores a served version's lists against what its users did after it was built: the relevant interactions of a
/// newer dataset with a timestamp after the version's as-of time (docs/EVALUATION.md, "Replay").
public enum Replay {
    /// Replays `version` against `data` (typically the dataset the next refresh just loaded).
    ///
    /// Ids are matched as strings: the version's users and video table against the dataset's interned ids.
    /// Active users (≥ 1 relevant interaction after `version.metadata.asOf`) with a list in the version are scored
    /// on that list; the others on the popular list the daemon serves them (their region's, else their language's,
    /// else the global one). Coverage is over every user list of the version.
    /// - Parameters:
    ///   - ks: cut-offs (≥ 1).
    ///   - watchFraction: relevance threshold (`[data] relevance_watch_fraction`).
    public static func run(version: StoreVersion, data: Dataset, ks: [Int] = [10, 100],
                           watchFraction: Double = 0.5) throws -> ReplayReport {
        let asOf = version.metadata.asOf
        var report = ReplayReport(version: version.name, asOf: asOf)
        report.watchFraction = watchFraction
        let ix = data.interactions

        // 1. Ground truth: distinct (user, video) of the relevant interactions after asOf, grouped by user.
        var pairs: [UInt64] = []
        for i in 0..<ix.count where ix.timestamp[i] > asOf {
            report.windowEnd = max(report.windowEnd, ix.timestamp[i])
            if data.isRelevant(i, watchFraction: watchFraction) {
                report.relevantInteractions += 1
                pairs.append(Holdout.pairKey(ix.user[i], ix.video[i]))
            }
        }
        pairs.sort()
        Holdout.dedupe(&pairs)
        var activeUsers: [Int32] = [], truthOffsets = [0], truth: [Int32] = []
        var activePosition = [Int32](repeating: -1, count: data.users.count)
        for p in pairs {
            let u = Int32(truncatingIfNeeded: p >> 32)
            if activeUsers.last != u {
                if !activeUsers.isEmpty { truthOffsets.append(truth.count) }
                activePosition[Int(u)] = Int32(activeUsers.count)
                activeUsers.append(u)
            }
            truth.append(Int32(truncatingIfNeeded: p & 0xFFFF_FFFF))
        }
        if !activeUsers.isEmpty { truthOffsets.append(truth.count) }
        func truthOf(_ pos: Int) -> ArraySlice<Int32> { truth[truthOffsets[pos]..<truthOffsets[pos + 1]] }
        report.activeUsers = activeUsers.count
        report.truthPairs = truth.count

        // 2. Truth pairs already seen at or before asOf (watch, like or dislike).
        var seenBefore: [UInt64] = []
        for i in 0..<ix.count where ix.timestamp[i] <= asOf {
            let pos = activePosition[Int(ix.user[i])]
            guard pos >= 0 else { continue }
            let e = ix.event[i]
            guard e == .watch || e == .like || e == .dislike else { continue }
            if contains(truthOf(Int(pos)), ix.video[i]) { seenBefore.append(Holdout.pairKey(ix.user[i], ix.video[i])) }
        }
        seenBefore.sort()
        Holdout.dedupe(&seenBefore)
        report.truthSeenBefore = seenBefore.count

        // 3. The version's video table mapped to dataset indices by id (-1: unknown to the dataset).
        let vt = version.videos
        var toData = [Int32](repeating: -1, count: vt.count)
        var inVersion = [Bool](repeating: false, count: data.videos.count)
        for v in 0..<vt.count {
            if let d = data.videos.ids.index(of: vt.ids[v]) { toData[v] = d; inVersion[Int(d)] = true }
        }
        report.truthNotInVersion = truth.reduce(0) { $0 + (inVersion[Int($1)] ? 0 : 1) }

        // 4. Personalized lists: every user list of the version (coverage), the active ones scored.
        var personal = try MetricsAccumulator(ks: ks, catalogSize: data.videos.count)
        let maxK = personal.ks.last!
        var bestRank = [Int32](repeating: .max, count: vt.count)
        var hasList = [Bool](repeating: false, count: activeUsers.count)
        var mapped: [Int32] = []
        try version.forEachUser { id, view in
            report.listUsers += 1
            let n = min(view.count, maxK)
            for i in 0..<n {
                let v = Int(view.video(i))
                if v < bestRank.count && Int32(i + 1) < bestRank[v] { bestRank[v] = Int32(i + 1) }
            }
            guard !activeUsers.isEmpty, let u = data.users.ids.index(of: id), activePosition[Int(u)] >= 0 else { return }
            let pos = Int(activePosition[Int(u)])
            mapped.removeAll(keepingCapacity: true)
            for i in 0..<n {
                let v = Int(view.video(i))
                mapped.append(v < toData.count ? toData[v] : -1)
            }
            personal.add(list: mapped, truth: truthOf(pos))
            hasList[pos] = true
        }
        report.personalizedUsers = personal.testUsers
        report.coverage = personal.ks.map { k in
            let videos = bestRank.reduce(0) { $0 + ($1 <= Int32(clamping: k) ? 1 : 0) }
            return ReplayReport.Coverage(k: k, videos: videos, share: vt.count > 0 ? Double(videos) / Double(vt.count) : 0)
        }

        // 5. Fallback users: the popular list the daemon would serve (region, else language, else global).
        var fallback = try MetricsAccumulator(ks: ks, catalogSize: data.videos.count)
        var cache: [String: [Int32]] = [:]
        func popular(_ scope: PopularScope, _ code: String) -> [Int32]? {
            let key = "\(scope.rawValue):\(code)"
            if let l = cache[key] { return l }
            guard let list = version.popularList(scope, code) else { return nil }
            let l = list.videos.prefix(maxK).map { Int($0) < toData.count ? toData[Int($0)] : -1 }
            cache[key] = l
            return l
        }
        for (pos, u) in activeUsers.enumerated() where !hasList[pos] {
            let country = data.users.country[Int(u)].description
            let language = data.languages[data.users.language[Int(u)]]
            let list = popular(.region, country) ?? popular(.language, language) ?? popular(.global, "") ?? []
            fallback.add(list: list, truth: truthOf(pos), fallback: true)
        }
        report.fallbackUsers = fallback.testUsers
        report.personalized = personal.replayMetrics()
        report.fallback = fallback.replayMetrics()
        return report
    }

    static func contains(_ sorted: ArraySlice<Int32>, _ x: Int32) -> Bool {
        var lo = sorted.startIndex, hi = sorted.endIndex
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo < sorted.endIndex && sorted[lo] == x
    }
}

extension MetricsAccumulator {
    /// Replay averages: every added user in the denominator (an empty list counts 0).
    func replayMetrics() -> [ReplayReport.AtK] {
        let n = Double(max(testUsers, 1))
        return ks.indices.map { i in
            ReplayReport.AtK(k: ks[i], precision: precisionSum[i] / n, recall: recallSum[i] / n, ndcg: ndcgSum[i] / n,
                             hitRate: Double(hitUsers[i]) / n)
        }
    }
}
