import Foundation
import HomefeedCore
import HomefeedData
import HomefeedModels
import HomefeedStore

/// The two-tower model's inputs, built by the same code at training and at refresh time (docs/MODELS.md).
///
/// Every feature is a weighted bag of hashed tokens in its own field (the tower pools Σ weight · E_field[token]),
/// so categorical, multi-valued and numeric features share one shape. Tokens hash the *external* ids and strings
/// (FNV-1a 64, mixed): a model trained on yesterday's dataset finds the same rows in today's, whatever the dataset's
/// internal indices. Numbers are bucketed on a log scale. A bag's weights sum to 1 (a weighted mean).
struct FeatureEncoder: Sendable {
    /// The recipe of the tokens and bags below; bump it with any change, so models of another recipe are refused.
    static let version = 2

    /// User tower fields. History bags leave one video out at training time (the example's own positive).
    enum UserField: Int, CaseIterable {
        case id, age, gender, country, language
        case watched      // the newest relevant videos, recency-weighted by rank: 0.5^(r / history_half_rank)
        case liked        // the newest liked videos, same weights
        case historyTags  // the tags of the watched bag, same weights shared among a video's tags
        case queries      // the words of the newest searches, recency-weighted
        case hour, weekday, device   // the user's usual context: frequency of each among their interactions
    }
    /// Video tower fields.
    enum VideoField: Int, CaseIterable {
        case id, language, duration, title, tags, views, likes, age, channel
    }

    let config: HomefeedConfig.TwoTower
    /// Per video: its token bag (all fields, precomputed) and, for history bags, its id and tag tokens.
    let videoOffsets: [Int]
    let videoField: [UInt8]
    let videoToken: [UInt32]
    let videoWeight: [Float]
    let videoIDToken: [UInt32]
    let videoTagOffsets: [Int32]
    let videoTagTokens: [UInt32]
    /// Per user: the static part of their bag, and their relevant videos newest first (liked flagged; the time of
    /// the newest relevant interaction with each).
    let userOffsets: [Int]
    let userField: [UInt8]
    let userToken: [UInt32]
    let userWeight: [Float]
    let sequenceOffsets: [Int]
    let sequenceVideo: [Int32]
    let sequenceLiked: [Bool]
    let sequenceTime: [Int64]
    /// Per user, newest first: every interaction's time and context (UTC hour, weekday 0 = Monday, device), and the
    /// searches' times and word tokens. A row cuts them at its time, so a training example sees only what came before.
    let contextOffsets: [Int]
    let contextTime: [Int64]
    let contextHour: [UInt8]
    let contextWeekday: [UInt8]
    let contextDevice: [UInt8]
    let searchOffsets: [Int]
    let searchTime: [Int64]
    let searchWordOffsets: [Int]
    let searchWords: [UInt32]
    /// Per user: disliked videos (hard negatives in training; never in the user's relevant sequence).
    let dislikeOffsets: [Int]
    let dislikes: [Int32]
    /// decay[r] = 0.5^(r / history_half_rank): the weight of the history entry r places back.
    let decay: [Float]

    static func token(_ field: String, _ s: String) -> UInt32 {
        UInt32(truncatingIfNeeded: StableHash.mix64(StableHash.fnv1a64(s, seed: StableHash.fnv1a64(field))))
    }
    static func token(_ field: String, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(truncatingIfNeeded: StableHash.mix64(StableHash.fnv1a64(bytes, seed: StableHash.fnv1a64(field))))
    }
    /// ⌊log2(1 + x)⌋, capped: the bucket of a count, a duration or an age.
    static func logBucket(_ x: Double, cap: Int = 24) -> UInt32 { UInt32(min(cap, max(0, Int(log2(1 + max(0, x)))))) }

    /// The towers' shapes for this configuration.
    static func spec(_ c: HomefeedConfig.TwoTower) -> TwoTowerSpec {
        func field(_ name: String, _ buckets: Int) -> FeatureField { FeatureField(name: name, buckets: buckets, dim: c.fieldDim) }
        let user: [FeatureField] = UserField.allCases.map { f in
            switch f {
            case .id: field("user_id", c.idBuckets)
            case .age: field("age", 16)
            case .gender: field("gender", 8)
            case .country: field("country", 4096)
            case .language: field("language", 1024)
            case .watched: field("watched", c.idBuckets)
            case .liked: field("liked", c.idBuckets)
            case .historyTags: field("history_tags", c.tokenBuckets)
            case .queries: field("queries", c.tokenBuckets)
            case .hour: field("hour", 24)
            case .weekday: field("weekday", 7)
            case .device: field("device", 64)
            }
        }
        let video: [FeatureField] = VideoField.allCases.map { f in
            switch f {
            case .id: field("video_id", c.idBuckets)
            case .language: field("language", 1024)
            case .duration: field("duration", 32)
            case .title: field("title", c.tokenBuckets)
            case .tags: field("tags", c.tokenBuckets)
            case .views: field("views", 32)
            case .likes: field("likes", 32)
            case .age: field("age", 32)
            case .channel: field("channel", c.tokenBuckets)
            }
        }
        return TwoTowerSpec(user: TowerSpec(fields: user, hidden: c.hidden, output: c.output),
                            video: TowerSpec(fields: video, hidden: c.hidden, output: c.output),
                            temperature: Float(c.temperature))
    }

    /// Precomputes the tables of `data` as of `asOf` (video ages and counts are measured there).
    init(_ data: Dataset, history: UserHistory, asOf: Int64, config: HomefeedConfig) {
        self.config = config.twoTower
        decay = (0..<max(config.twoTower.historyLength, 20)).map { Float(exp2(-Double($0) / config.twoTower.historyHalfRank)) }
        let videos = data.videos, ix = data.interactions
        let watchFraction = config.data.relevanceWatchFraction
        // 1. Video counts: watches and likes up to asOf.
        var views = [Int](repeating: 0, count: videos.count), likes = [Int](repeating: 0, count: videos.count)
        for i in 0..<ix.count where ix.video[i] >= 0 && ix.timestamp[i] <= asOf {
            let v = Int(ix.video[i])
            if ix.event[i] == .like { likes[v] += 1 } else if ix.event[i] == .watch { views[v] += 1 }
        }
        // 2. Video bags.
        var vOff = [0], vField: [UInt8] = [], vToken: [UInt32] = [], vWeight: [Float] = []
        var idTok = [UInt32](repeating: 0, count: videos.count)
        var tagOff: [Int32] = [0], tagTok: [UInt32] = []
        let languageTokens = (0..<data.languages.count).map { Self.token("lang", data.languages[$0]) }
        let tagTokens = (0..<data.tags.count).map { Self.token("tag", data.tags[$0]) }
        let channelTokens = (0..<data.channels.count).map { Self.token("channel", data.channels[$0]) }
        for v in 0..<videos.count {
            func put(_ f: VideoField, _ t: UInt32, _ w: Float = 1) { vField.append(UInt8(f.rawValue)); vToken.append(t); vWeight.append(w) }
            let id = videos.ids.withBytes(v) { Self.token("video", $0) }
            idTok[v] = id
            put(.id, id)
            put(.language, languageTokens[Int(videos.language[v])])
            put(.duration, Self.logBucket(Double(videos.durationSeconds[v])))
            let words = Self.words(videos.titles[v])
            for w in words { put(.title, Self.token("word", w), 1 / Float(words.count)) }
            let tags = videos.tags(of: v)
            for t in tags { put(.tags, tagTokens[Int(t)], 1 / Float(tags.count)); tagTok.append(tagTokens[Int(t)]) }
            tagOff.append(Int32(tagTok.count))
            put(.views, Self.logBucket(Double(views[v])))
            put(.likes, Self.logBucket(Double(likes[v])))
            let published = videos.publishedAt[v]
            put(.age, published == Int64.min ? 31 : Self.logBucket(Double(asOf - published) / 3600))
            if videos.channel[v] >= 0 { put(.channel, channelTokens[Int(videos.channel[v])]) }
            vOff.append(vToken.count)
        }
        videoOffsets = vOff; videoField = vField; videoToken = vToken; videoWeight = vWeight
        videoIDToken = idTok; videoTagOffsets = tagOff; videoTagTokens = tagTok

        // 3. User bags: static features; context events and searches newest first; relevant videos newest first;
        //    dislikes.
        var uOff = [0], uField: [UInt8] = [], uToken: [UInt32] = [], uWeight: [Float] = []
        var sOff = [0], sVideo: [Int32] = [], sLiked: [Bool] = [], sTime: [Int64] = []
        var dOff = [0], dis: [Int32] = []
        var cOff = [0], cTime: [Int64] = [], cHour: [UInt8] = [], cDay: [UInt8] = [], cDevice: [UInt8] = []
        var qOff = [0], qTime: [Int64] = [], qWordOff = [0], qWords: [UInt32] = []
        cTime.reserveCapacity(ix.count); cHour.reserveCapacity(ix.count); cDay.reserveCapacity(ix.count); cDevice.reserveCapacity(ix.count)
        let users = data.users
        var seq: [(t: Int64, v: Int32, liked: Bool)] = [], searches: [(t: Int64, q: Int32)] = []
        var context: [(t: Int64, i: Int32)] = []
        for u in 0..<users.count {
            func put(_ f: UserField, _ t: UInt32, _ w: Float = 1) { uField.append(UInt8(f.rawValue)); uToken.append(t); uWeight.append(w) }
            put(.id, users.ids.withBytes(u) { Self.token("user", $0) })
            put(.age, UInt32(AgeBucket(age: Int(users.age[u])).rawValue))
            put(.gender, UInt32(users.gender[u].rawValue))
            put(.country, Self.token("country", users.country[u].description))
            put(.language, languageTokens[Int(users.language[u])])
            uOff.append(uToken.count)
            seq.removeAll(keepingCapacity: true); searches.removeAll(keepingCapacity: true); context.removeAll(keepingCapacity: true)
            let dislikeStart = dis.count
            for i32 in history.interactions(of: u) {
                let i = Int(i32)
                let t = ix.timestamp[i]
                guard t <= asOf else { continue }
                if ix.event[i] == .search {
                    if ix.query[i] >= 0 { searches.append((t, ix.query[i])) }
                } else if ix.event[i] == .dislike {
                    dis.append(ix.video[i])
                } else if data.isRelevant(i, watchFraction: watchFraction) {
                    seq.append((t, ix.video[i], ix.event[i] == .like))
                }
                context.append((t, i32))
            }
            // Context events newest first (ties: file order), in UTC.
            context.sort { $0.t != $1.t ? $0.t > $1.t : $0.i < $1.i }
            for (t, i) in context {
                let secondOfDay = ((t % 86400) + 86400) % 86400
                cTime.append(t)
                cHour.append(UInt8(secondOfDay / 3600))
                cDay.append(UInt8((((t / 86400) % 7) + 7 + 3) % 7))   // 1970-01-01 was a Thursday: 0 = Monday
                cDevice.append(ix.device[Int(i)])
            }
            cOff.append(cTime.count)
            // Searches newest first, with their words.
            searches.sort { $0.t > $1.t }
            for s in searches {
                qTime.append(s.t)
                for word in Self.words(data.queries[Int(s.q)]) { qWords.append(Self.token("word", word)) }
                qWordOff.append(qWords.count)
            }
            qOff.append(qTime.count)
            // Relevant videos newest first, one entry per video (its newest relevant interaction; liked if any like);
            // a disliked video is no positive, whatever else the user did with it (as in MF).
            dis[dislikeStart...].sort()
            let disliked = dis[dislikeStart...]
            seq.sort { $0.t != $1.t ? $0.t > $1.t : $0.v < $1.v }
            var seenHere = Set<Int32>(), likedHere = Set<Int32>()
            for e in seq where e.liked { likedHere.insert(e.v) }
            for e in seq where !binarySearch(disliked, e.v) && seenHere.insert(e.v).inserted {
                sVideo.append(e.v); sLiked.append(likedHere.contains(e.v)); sTime.append(e.t)
            }
            sOff.append(sVideo.count)
            dOff.append(dis.count)
        }
        userOffsets = uOff; userField = uField; userToken = uToken; userWeight = uWeight
        sequenceOffsets = sOff; sequenceVideo = sVideo; sequenceLiked = sLiked; sequenceTime = sTime
        dislikeOffsets = dOff; dislikes = dis
        contextOffsets = cOff; contextTime = cTime; contextHour = cHour; contextWeekday = cDay; contextDevice = cDevice
        searchOffsets = qOff; searchTime = qTime; searchWordOffsets = qWordOff; searchWords = qWords
    }

    /// Lowercased words of letters and digits (titles, queries).
    static func words(_ s: String) -> [String] {
        s.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }

    /// Appends user `u`'s row as the refresh sees it: static features, usual context, searches and history bags of
    /// everything up to as-of. A user without history is embedded without their id (its bucket was never trained
    /// for them).
    func userRow(_ u: Int, into rows: inout FeatureRows) {
        userRow(u, before: -1, withID: hasHistory(u), into: &rows)
    }

    /// Appends the user side of a training example: the user as they were just before their relevant video at
    /// sequence position `position` (0 = newest): the history bags hold only the older entries, and the context and
    /// search bags only what happened before that video's time, so the model learns to predict what comes next from
    /// what came before — what the refresh asks of it. `withID` false leaves the id out (a share of the examples,
    /// so rows without an id — new users, segments — are not out of distribution).
    ///
    /// `others` (`[two_tower] training_history = "others"`): the history bags hold every other entry instead, newer
    /// ones included, and the context and search bags everything — what a random holdout of a user's history
    /// (MovieLens' item-stratified protocol) rewards.
    func userRow(_ u: Int, before position: Int, withID: Bool, others: Bool = false, into rows: inout FeatureRows) {
        for k in userOffsets[u]..<userOffsets[u + 1] where withID || userField[k] != UInt8(UserField.id.rawValue) {
            rows.add(Int(userField[k]), userToken[k], userWeight[k])
        }
        let start = sequenceOffsets[u]
        let before = others || position < 0 ? Int64.max : sequenceTime[start + position]
        appendContext(u, before: before, into: &rows)
        appendSearches(u, before: before, into: &rows)
        if others {
            appendHistory(start..<sequenceOffsets[u + 1], skipping: position < 0 ? -1 : start + position, into: &rows)
        } else {
            appendHistory((start + position + 1)..<sequenceOffsets[u + 1], skipping: -1, into: &rows)
        }
        rows.endRow()
    }

    /// Appends a row for someone known only by attributes (a cold-start segment): no id, no history, no context.
    func attributeRow(country: CountryCode, language: String, age: AgeBucket, gender: SegmentGender, into rows: inout FeatureRows) {
        rows.add(UserField.age.rawValue, UInt32(age.rawValue))
        rows.add(UserField.gender.rawValue, UInt32(gender.rawValue))
        rows.add(UserField.country.rawValue, Self.token("country", country.description))
        rows.add(UserField.language.rawValue, Self.token("lang", language))
        rows.endRow()
    }

    /// The first index in `range` of the newest-first `times` that is older than `before` (Int64.max: no cut).
    private func firstOlder(_ times: [Int64], _ range: Range<Int>, than before: Int64) -> Int {
        if before == .max { return range.lowerBound }
        var lo = range.lowerBound, hi = range.upperBound
        while lo < hi {
            let mid = (lo + hi) / 2
            if times[mid] >= before { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The usual-context bags: the share of the user's interactions before `before` in each UTC hour, weekday and
    /// device.
    private func appendContext(_ u: Int, before: Int64, into rows: inout FeatureRows) {
        let end = contextOffsets[u + 1]
        let first = firstOlder(contextTime, contextOffsets[u]..<end, than: before)
        guard first < end else { return }
        let events = Float(end - first)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 24 + 7 + 256) { counts in
            counts.initialize(repeating: 0)
            for k in first..<end {
                counts[Int(contextHour[k])] += 1; counts[24 + Int(contextWeekday[k])] += 1; counts[31 + Int(contextDevice[k])] += 1
            }
            for h in 0..<24 where counts[h] > 0 { rows.add(UserField.hour.rawValue, UInt32(h), counts[h] / events) }
            for d in 0..<7 where counts[24 + d] > 0 { rows.add(UserField.weekday.rawValue, UInt32(d), counts[24 + d] / events) }
            for d in 0..<256 where counts[31 + d] > 0 { rows.add(UserField.device.rawValue, UInt32(d), counts[31 + d] / events) }
        }
    }

    /// The query bag: the words of the user's newest 20 searches before `before`, the search r places back weighted
    /// 0.5^(r / history_half_rank) and shared among its words; weights sum to 1.
    private func appendSearches(_ u: Int, before: Int64, into rows: inout FeatureRows) {
        let end = searchOffsets[u + 1]
        let first = firstOlder(searchTime, searchOffsets[u]..<end, than: before)
        let kept = first..<min(end, first + 20)
        // The total sums every word's weight, not decay[r] per search: the same float sum as the weights below.
        var total: Float = 0
        for (r, s) in kept.enumerated() {
            let n = searchWordOffsets[s + 1] - searchWordOffsets[s]
            for _ in 0..<n { total += decay[r] / Float(n) }
        }
        guard total > 0 else { return }
        for (r, s) in kept.enumerated() {
            let words = searchWordOffsets[s]..<searchWordOffsets[s + 1]
            for k in words { rows.add(UserField.queries.rawValue, searchWords[k], decay[r] / Float(words.count) / total) }
        }
    }

    /// The watched, liked and history-tag bags of the newest `history_length` entries of `range`.
    private func appendHistory(_ range: Range<Int>, skipping: Int, into rows: inout FeatureRows) {
        let kept = range.lazy.filter { $0 != skipping }.prefix(config.historyLength)
        guard !kept.isEmpty else { return }
        // 1. Normalizers: Σ 0.5^(r / half) over the kept entries (watched), and over the liked ones.
        var watchedTotal: Float = 0, likedTotal: Float = 0, likedRank = 0
        for (r, k) in kept.enumerated() {
            watchedTotal += decay[r]
            if sequenceLiked[k] { likedTotal += decay[likedRank]; likedRank += 1 }
        }
        // 2. The bags.
        likedRank = 0
        for (r, k) in kept.enumerated() {
            let v = Int(sequenceVideo[k])
            let w = decay[r] / watchedTotal
            rows.add(UserField.watched.rawValue, videoIDToken[v], w)
            let tags = Int(videoTagOffsets[v])..<Int(videoTagOffsets[v + 1])
            for t in tags { rows.add(UserField.historyTags.rawValue, videoTagTokens[t], w / Float(tags.count)) }
            if sequenceLiked[k] {
                rows.add(UserField.liked.rawValue, videoIDToken[v], decay[likedRank] / likedTotal)
                likedRank += 1
            }
        }
    }

    /// Appends video `v`'s row.
    func videoRow(_ v: Int, into rows: inout FeatureRows) {
        for k in videoOffsets[v]..<videoOffsets[v + 1] { rows.add(Int(videoField[k]), videoToken[k], videoWeight[k]) }
        rows.endRow()
    }

    func dislikes(of u: Int) -> ArraySlice<Int32> { dislikes[dislikeOffsets[u]..<dislikeOffsets[u + 1]] }
    func hasHistory(_ u: Int) -> Bool { sequenceOffsets[u + 1] > sequenceOffsets[u] }
}
