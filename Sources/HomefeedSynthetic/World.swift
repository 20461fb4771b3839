import Glibc
import HomefeedCore

/// The static part of the synthetic world, built serially from the config: segment taste vectors, channels,
/// videos (language, duration, publication, popularity, topic mixture, availability) and the sampling tables.
/// Users are not stored: each is re-derived from its own random stream (see `UserModel`).
struct World: Sendable {
    let config: GeneratorConfig
    let topicCount: Int
    let languageCount: Int
    let countryCount: Int

    // Countries and languages.
    let countryCodes: [CountryCode]
    let countryTable: AliasTable
    let languageTable: AliasTable
    /// Global topic weight g_t and a table drawing topics by it.
    let topicWeight: [Double]
    let topicTable: AliasTable

    /// Segment taste vectors, flat [segment * topicCount + topic].
    let countryTaste: [Double]
    let languageTaste: [Double]
    let ageTaste: [Double]       // 7 buckets; the last (unknown) is zero
    let genderTaste: [Double]    // unknown, f, m, o; unknown is zero

    // Channels.
    let channelCount: Int

    // Videos (index = video number; id is "v<index>").
    let videoCount: Int
    let videoLanguage: [UInt8]
    let videoChannel: [Int32]
    let duration: [Int32]
    let published: [Int64]
    let quality: [Float]           // N(0,1): drives popularity and watch depth
    let popularity: [Double]       // Zipf-like weight (before the exponent)
    let topicOffsets: [Int32]      // CSR: topics of v = videoTopic[topicOffsets[v]..<topicOffsets[v+1]]
    let videoTopic: [UInt8]
    let videoTopicWeight: [Float]  // mixture weights, summing to 1 per video
    let availability: [UInt8]      // 0 everywhere, 1 allow list, 2 block list
    let availabilityOffsets: [Int32]
    let availabilityCountries: [UInt8]   // country indices
    /// What every draw checks (published, availability, language), packed in 16 bytes per video.
    let gates: [Gate]

    struct Gate: Sendable {
        var published: Int64
        var listStart: Int32
        var listCount: UInt8
        var mode: UInt8          // 0 everywhere, 1 allow list, 2 block list
        var language: UInt8
    }

    // Sampling tables (weights popularity^a, times the topic share for topic tables).
    let globalTable: AliasTable
    let recentTable: AliasTable          // published in the last 7 days, boosted
    let topicTables: [AliasTable]        // per topic
    let topicLanguageTables: [AliasTable] // per topic * languageCount + language

    static let recentDays: Int64 = 7
    static let freshSeconds: Int64 = 48 * 3600

    init(_ config: GeneratorConfig) {
        self.config = config
        let T = Vocabulary.topics.count, L = Vocabulary.languages.count, C = Vocabulary.countries.count
        topicCount = T; languageCount = L; countryCount = C
        countryCodes = Vocabulary.countries.map { CountryCode($0.code)! }
        countryTable = AliasTable(weights: (0..<C).map { 1 / pow(Double($0 + 1), 0.9) })
        languageTable = AliasTable(weights: Vocabulary.languageWeights)
        let tw = (0..<T).map { 1 / pow(Double($0 + 2), 0.6) }
        topicWeight = tw
        topicTable = AliasTable(weights: tw)

        // Segment vectors: random background plus a boost on each segment's favorite topics.
        var rng = SeededRandom(seed: streamSeed(config.seed, 1, 0))
        func segment(_ count: Int, sd: Double, boost: Double, favorites: (Int) -> [String]) -> [Double] {
            var v = [Double](repeating: 0, count: count * T)
            for s in 0..<count {
                for t in 0..<T { v[s * T + t] = sd * rng.normal() }
                for name in favorites(s) { v[s * T + Vocabulary.topicIndex(name)] += boost }
            }
            return v
        }
        countryTaste = segment(C, sd: 0.35, boost: 1.5) { Vocabulary.countries[$0].favorites }
        languageTaste = segment(L, sd: 0.3, boost: 0) { _ in [] }
        var age = segment(6, sd: 0.3, boost: 1.2) { Vocabulary.ageFavorites[$0] }
        age += [Double](repeating: 0, count: T)
        ageTaste = age
        let gender = segment(3, sd: 0.25, boost: 0.8) { Vocabulary.genderFavorites[$0] }
        genderTaste = [Double](repeating: 0, count: T) + gender

        // Channels: a home country, a language, 1–3 topics, a size and a quality.
        let V = config.videos
        let nChannels = max(1, (V + 4) / 8)
        channelCount = nChannels
        var chCountry = [Int](repeating: 0, count: nChannels)
        var chLanguage = [Int](repeating: 0, count: nChannels)
        var chTopics = [[Int]](repeating: [], count: nChannels)
        var chQuality = [Double](repeating: 1, count: nChannels)
        var chSize = [Double](repeating: 1, count: nChannels)
        rng = SeededRandom(seed: streamSeed(config.seed, 2, 0))
        for c in 0..<nChannels {
            let home = Int(countryTable.sample(&rng))
            chCountry[c] = home
            let ct = Vocabulary.countries[home]
            let r = rng.nextDouble()
            chLanguage[c] = r < 0.8 ? ct.main : r < 0.95 ? Vocabulary.en : Int(languageTable.sample(&rng))
            // Primary topic leans to the home country's favorites.
            var topics: [Int] = []
            if rng.chance(0.35) {
                topics.append(Vocabulary.topicIndex(ct.favorites[rng.nextInt(ct.favorites.count)]))
            } else {
                topics.append(Int(topicTable.sample(&rng)))
            }
            let extra = rng.nextInt(3)
            for _ in 0..<extra {
                let t = Int(topicTable.sample(&rng))
                if !topics.contains(t) { topics.append(t) }
            }
            chTopics[c] = topics
            chQuality[c] = exp(0.5 * rng.normal())
            chSize[c] = exp(0.8 * rng.normal())
        }
        let channelTable = AliasTable(weights: chSize)

        // Videos.
        videoCount = V
        var vLang = [UInt8](repeating: 0, count: V)
        var vChannel = [Int32](repeating: 0, count: V)
        var vDuration = [Int32](repeating: 0, count: V)
        var vPublished = [Int64](repeating: 0, count: V)
        var vQuality = [Float](repeating: 0, count: V)
        var vPop = [Double](repeating: 0, count: V)
        var tOff: [Int32] = [0]; tOff.reserveCapacity(V + 1)
        var vTopic: [UInt8] = [], vTopicW: [Float] = []
        vTopic.reserveCapacity(V * 2); vTopicW.reserveCapacity(V * 2)
        var avail = [UInt8](repeating: 0, count: V)
        var aOff: [Int32] = [0]; aOff.reserveCapacity(V + 1)
        var aCountries: [UInt8] = []
        rng = SeededRandom(seed: streamSeed(config.seed, 3, 0))
        let popRank = rng.permutation(V)
        let end = config.endTime, start = config.startTime
        let shortsTopic = Vocabulary.topicIndex("shorts")
        for v in 0..<V {
            let c = Int(channelTable.sample(&rng))
            vChannel[v] = Int32(c)
            let topics = chTopics[c]
            let primary = rng.chance(0.65) ? topics[0] : topics[rng.nextInt(topics.count)]
            var second = -1
            if rng.chance(0.3) {
                let cand = topics.count > 1 && rng.chance(0.6) ? topics[rng.nextInt(topics.count)] : Int(topicTable.sample(&rng))
                if cand != primary { second = cand }
            }
            vTopic.append(UInt8(primary)); vTopicW.append(second < 0 ? 1 : 0.7)
            if second >= 0 { vTopic.append(UInt8(second)); vTopicW.append(0.3) }
            tOff.append(Int32(vTopic.count))
            vLang[v] = UInt8(rng.chance(0.93) ? chLanguage[c] : Int(languageTable.sample(&rng)))

            // Durations: log-normal, 30 s – 2 h; shorts are short, podcasts and movies long.
            var median = 420.0
            switch Vocabulary.topics[primary].name {
            case "shorts": median = 40
            case "podcast", "movies", "telenovela", "kdrama": median = 1800
            case "music", "dance", "kpop": median = 230
            case "education", "gaming", "news": median = 700
            default: break
            }
            let sd = primary == shortsTopic ? 0.3 : 0.8
            vDuration[v] = Int32(min(7200, max(30, (median * exp(sd * rng.normal())).rounded())))

            // Publication: a few % fresh (last 48 h), some more inside the window, the rest older catalog.
            let r = rng.nextDouble()
            if r < 0.03 {
                vPublished[v] = end - 60 - Int64(rng.nextDouble() * Double(Self.freshSeconds - 120))
            } else if r < 0.18 {
                vPublished[v] = start + Int64(rng.nextDouble() * Double(end - Self.freshSeconds - start))
            } else {
                let u = rng.nextDouble()
                vPublished[v] = start - 3600 - Int64(u * u * 8 * 365 * 86_400) - Int64(rng.nextInt(86_400))
            }

            let q = rng.normal()
            vQuality[v] = Float(q)
            vPop[v] = 1 / pow(Double(popRank[v]) + 1, 0.9) * exp(0.4 * q) * chQuality[c]

            // Region restrictions: ~5% allow lists (home country + a few), ~3% block lists.
            let ra = rng.nextDouble()
            if ra < 0.05 {
                avail[v] = 1
                var list = [UInt8(chCountry[c])]
                for _ in 0..<rng.nextInt(4) {
                    let k = UInt8(countryTable.sample(&rng))
                    if !list.contains(k) { list.append(k) }
                }
                aCountries += list
            } else if ra < 0.08 {
                avail[v] = 2
                var list: [UInt8] = []
                for _ in 0..<(1 + rng.nextInt(3)) {
                    let k = UInt8(countryTable.sample(&rng))
                    if k != UInt8(chCountry[c]) && !list.contains(k) { list.append(k) }
                }
                if list.isEmpty { list.append(UInt8((chCountry[c] + 1) % C)) }
                aCountries += list
            }
            aOff.append(Int32(aCountries.count))
        }
        videoLanguage = vLang; videoChannel = vChannel; duration = vDuration; published = vPublished
        quality = vQuality; popularity = vPop
        topicOffsets = tOff; videoTopic = vTopic; videoTopicWeight = vTopicW
        availability = avail; availabilityOffsets = aOff; availabilityCountries = aCountries
        gates = (0..<V).map {
            Gate(published: vPublished[$0], listStart: aOff[$0], listCount: UInt8(aOff[$0 + 1] - aOff[$0]),
                 mode: avail[$0], language: vLang[$0])
        }

        // Sampling tables.
        let a = config.popularityExponent
        let w = vPop.map { pow($0, a) }
        let all = (0..<V).map { Int32($0) }
        globalTable = AliasTable(items: all, weights: w)
        var recentItems: [Int32] = [], recentWeights: [Double] = []
        for v in 0..<V where vPublished[v] >= end - Self.recentDays * 86_400 {
            recentItems.append(Int32(v)); recentWeights.append(w[v])
        }
        recentTable = AliasTable(items: recentItems, weights: recentWeights)
        var ti = [[Int32]](repeating: [], count: T), tws = [[Double]](repeating: [], count: T)
        var li = [[Int32]](repeating: [], count: T * L), lws = [[Double]](repeating: [], count: T * L)
        for v in 0..<V {
            for k in Int(tOff[v])..<Int(tOff[v + 1]) {
                let t = Int(vTopic[k]), x = w[v] * Double(vTopicW[k])
                ti[t].append(Int32(v)); tws[t].append(x)
                let j = t * L + Int(vLang[v])
                li[j].append(Int32(v)); lws[j].append(x)
            }
        }
        topicTables = (0..<T).map { AliasTable(items: ti[$0], weights: tws[$0]) }
        topicLanguageTables = (0..<(T * L)).map { AliasTable(items: li[$0], weights: lws[$0]) }
    }

    /// Whether video `v` may be shown in country index `c` (-1 = unknown country: only unrestricted or
    /// block-listed videos).
    @inline(__always)
    func isAvailable(_ v: Int, country c: Int) -> Bool {
        gates.withUnsafeBufferPointer { isAvailable($0[v], country: c) }
    }

    @inline(__always)
    func isAvailable(_ g: Gate, country c: Int) -> Bool {
        if g.mode == 0 { return true }
        var found = false
        if c >= 0 {
            let start = Int(g.listStart)
            for k in start..<(start + Int(g.listCount)) where Int(availabilityCountries[k]) == c { found = true; break }
        }
        return g.mode == 1 ? found : !found
    }

    /// taste·topics of video `v` for a taste vector.
    @inline(__always)
    func tasteScore(_ taste: UnsafeBufferPointer<Double>, _ v: Int) -> Double {
        var s = 0.0
        for k in Int(topicOffsets[v])..<Int(topicOffsets[v + 1]) {
            s += taste[Int(videoTopic[k])] * Double(videoTopicWeight[k])
        }
        return s
    }

    /// Whether the video was published in the last 48 h before the end time.
    func isFresh(_ v: Int) -> Bool { published[v] > config.endTime - Self.freshSeconds }
}
