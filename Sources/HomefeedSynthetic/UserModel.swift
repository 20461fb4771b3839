import Glibc
import HomefeedCore

/// A user's attributes, re-derived from the user's own random stream (seed, index) whenever needed.
struct UserProfile {
    var country = -1                 // index into Vocabulary.countries, -1 = unknown
    var language = 0
    var age = 0                      // 0 = unknown
    var gender = 0                   // 0 unknown, 1 f, 2 m, 3 o
    var signup: Int64 = .min         // .min = unknown
    var hasHistory = true
    var device = 0
    var hourUTC = 20
    var engagements = 0
    var firstActive: Int64 = 0
    var lastActive: Int64 = 0
    var sameLanguage = 0.7           // chance to draw from the user's language table of a topic
    var tasteMean = 0.0
    var tasteSD = 1.0

    var ageBucket: Int {
        switch age {
        case 0: 6
        case ..<18: 0
        case ..<25: 1
        case ..<35: 2
        case ..<50: 3
        case ..<65: 4
        default: 5
        }
    }
}

/// Per-worker scratch and the per-user generative model: attributes, taste, sessions and events.
final class UserModel {
    let world: World
    /// Taste vector u (log preference per topic) and the cumulative topic-choice table of the current user.
    var taste: [Double]
    var topicCumulative: [Double]
    private var sessions: [Int64] = []
    private var userId = RowBuffer(capacity: 32)
    /// Rows written per event kind.
    var eventCounts = [Int](repeating: 0, count: Vocabulary.events.count)

    private let eventBytes: [[UInt8]] = Vocabulary.events.map { Array($0.utf8) }
    private let deviceBytes: [[UInt8]] = Vocabulary.devices.map { Array($0.utf8) }
    private let deviceTable = AliasTable(weights: Vocabulary.deviceWeights)
    private let countryBytes: [[UInt8]] = Vocabulary.countries.map { Array($0.code.utf8) }
    private let languageBytes: [[UInt8]] = Vocabulary.languages.map { Array($0.utf8) }
    private let topicNameBytes: [[UInt8]] = Vocabulary.topics.map { Array($0.name.utf8) }
    private let topicWordBytes: [[[UInt8]]] = Vocabulary.topics.map { $0.words.map { Array($0.utf8) } }
    private let queryPrefixBytes: [[UInt8]] = Vocabulary.titlePrefix.map { Array($0.lowercased().utf8) }
    private let genderBytes: [[UInt8]] = [[], [UInt8(ascii: "f")], [UInt8(ascii: "m")], [UInt8(ascii: "o")]]
    /// Mean rows per engaged video (impressions, click, watch, reactions, searches); calibrates engagements per
    /// user so the mean rows per user matches `interactionsPerUser`.
    static let rowsPerEngagement = 4.04

    init(world: World) {
        self.world = world
        taste = [Double](repeating: 0, count: world.topicCount)
        topicCumulative = [Double](repeating: 0, count: world.topicCount)
    }

    /// The random stream of user `u`.
    static func stream(_ config: GeneratorConfig, _ u: Int) -> SeededRandom {
        SeededRandom(seed: streamSeed(config.seed, 10, UInt64(u)))
    }

    // MARK: Profile

    /// Draws user `u`'s attributes and taste (into `taste` / `topicCumulative`) from `rng`.
    func profile(_ rng: inout SeededRandom) -> UserProfile {
        let cfg = world.config
        var p = UserProfile()
        let start = cfg.startTime, end = cfg.endTime
        p.hasHistory = !rng.chance(cfg.noHistoryFraction)

        // Country (0.5% unknown) and language.
        if rng.chance(0.005) {
            p.country = -1
            p.language = rng.chance(0.7) ? Vocabulary.en : Int(world.languageTable.sample(&rng))
        } else {
            p.country = Int(world.countryTable.sample(&rng))
            let c = Vocabulary.countries[p.country]
            let r = rng.nextDouble()
            p.language = r < c.mainShare ? c.main : r < c.mainShare + c.secondShare ? c.second
                : Int(world.languageTable.sample(&rng))
        }
        // Age: skewed young, 13–80, 6% unknown. Gender: 4% unknown, 2% other.
        let ageDraw = 13 + 14 * exp(0.7 * rng.normal())
        p.age = rng.chance(0.06) ? 0 : min(80, Int(ageDraw))
        let g = rng.nextDouble()
        p.gender = g < 0.04 ? 0 : g < 0.50 ? 1 : g < 0.98 ? 2 : 3

        // Signup: 2% unknown; new users (8%, more among those without history) sign up inside the window.
        let newUser = rng.chance(p.hasHistory ? 0.08 : 0.4)
        let signupDraw: Int64
        if newUser {
            signupDraw = start + Int64(rng.nextDouble() * Double(end - start - 7200))
        } else {
            let u = rng.nextDouble()
            signupDraw = start - 3600 - Int64(pow(u, 1.7) * 12 * 365 * 86_400) - Int64(rng.nextInt(86_400))
        }
        p.signup = rng.chance(0.02) ? .min : signupDraw

        // Habits: a preferred device, a usual local evening hour (converted to UTC).
        p.device = Int(deviceTable.sample(&rng))
        let localHour = rng.chance(0.75) ? rng.between(17, 23) : rng.nextInt(24)
        let offset = p.country >= 0 ? Vocabulary.countries[p.country].utcOffset : 0
        p.hourUTC = ((localHour - offset) % 24 + 24) % 24

        // Activity: heavy-tailed (log-normal) engagements; ~12% active only in the older part of the window.
        let perHistoryUser = cfg.noHistoryFraction >= 1 ? 0 : cfg.interactionsPerUser / (1 - cfg.noHistoryFraction)
        let mean = perHistoryUser / Self.rowsPerEngagement
        let sigma = 1.1
        let lambda = min(mean * exp(sigma * rng.normal() - sigma * sigma / 2), 5000)
        p.engagements = p.hasHistory ? Int(lambda + rng.nextDouble()) : 0
        if p.hasHistory && p.engagements == 0 && mean > 0 { p.engagements = 1 }
        p.firstActive = max(start, signupDraw)
        p.lastActive = end
        if rng.chance(0.12) {
            p.lastActive = start + Int64((0.3 + 0.45 * rng.nextDouble()) * Double(end - start))
        }
        if p.lastActive - p.firstActive < 3600 { p.lastActive = end }
        p.sameLanguage = p.language == Vocabulary.en ? 0.5 : 0.65 + 0.3 * rng.nextDouble()

        // Taste: segment vectors (country, language, age bucket, gender) + individual noise + 1–3 favorites.
        let T = world.topicCount
        let cBase = p.country >= 0 ? p.country * T : -1
        let lBase = p.language * T, aBase = p.ageBucket * T, gBase = p.gender * T
        for t in 0..<T {
            var x = world.languageTaste[lBase + t] + world.ageTaste[aBase + t] + world.genderTaste[gBase + t]
            if cBase >= 0 { x += world.countryTaste[cBase + t] }
            taste[t] = x + 0.6 * rng.normal()
        }
        let favorites = 1 + rng.nextInt(3)
        for _ in 0..<favorites { taste[Int(world.topicTable.sample(&rng))] += 1.6 }
        var sum = 0.0, sq = 0.0
        for t in 0..<T { sum += taste[t]; sq += taste[t] * taste[t] }
        p.tasteMean = sum / Double(T)
        p.tasteSD = max(1e-6, (sq / Double(T) - p.tasteMean * p.tasteMean).squareRoot())
        // Topic choice ∝ g_t^0.5 · exp(b · u_t).
        let b = cfg.tasteStrength
        var acc = 0.0
        for t in 0..<T {
            acc += world.topicWeight[t].squareRoot() * exp(b * (taste[t] - p.tasteMean))
            topicCumulative[t] = acc
        }
        return p
    }

    /// Standardized taste match of video `v` for the current user (taste·topics, z-scored over the user's topics).
    @inline(__always)
    func match(_ p: UserProfile, _ v: Int) -> Double {
        let s = taste.withUnsafeBufferPointer { world.tasteScore($0, v) }
        return (s - p.tasteMean) / p.tasteSD
    }

    @inline(__always)
    func sampleTopic(_ rng: inout SeededRandom) -> Int {
        topicCumulative.withUnsafeBufferPointer { rng.pick(cumulative: $0) }
    }

    // MARK: Video choice

    /// A video the user engages with at time `t`: mostly from a topic of their taste (in their language when
    /// possible), sometimes trending or fresh; always published by `t` and available in their country.
    func pickEngaged(_ p: UserProfile, topic fixed: Int, at t: Int64, _ rng: inout SeededRandom) -> Int? {
        let w = world
        for _ in 0..<24 {
            var v: Int
            let r = rng.nextDouble()
            if fixed < 0 && r < 0.04 && !w.recentTable.isEmpty {
                v = Int(w.recentTable.sample(&rng))
            } else if fixed < 0 && r < 0.16 {
                v = Int(w.globalTable.sample(&rng))
            } else {
                let topic = fixed >= 0 ? fixed : sampleTopic(&rng)
                let lt = w.topicLanguageTables[topic * w.languageCount + p.language]
                if !lt.isEmpty && rng.chance(p.sameLanguage) {
                    v = Int(lt.sample(&rng))
                } else {
                    let tt = w.topicTables[topic]
                    if tt.isEmpty { continue }
                    v = Int(tt.sample(&rng))
                }
            }
            let g = w.gates.withUnsafeBufferPointer { $0[v] }
            if g.published > t || !w.isAvailable(g, country: p.country) { continue }
            let vl = Int(g.language)
            if vl != p.language && !rng.chance(vl == Vocabulary.en ? 0.5 : 0.12) { continue }
            return v
        }
        return nil
    }

    /// A video shown on the homepage but not clicked: half trending, half from a topic drawn by global weight.
    func pickShown(_ p: UserProfile, at t: Int64, _ rng: inout SeededRandom) -> Int? {
        let w = world
        for _ in 0..<8 {
            let v: Int
            if rng.chance(0.5) {
                v = Int(w.globalTable.sample(&rng))
            } else {
                let tt = w.topicTables[Int(w.topicTable.sample(&rng))]
                if tt.isEmpty { continue }
                v = Int(tt.sample(&rng))
            }
            let g = w.gates.withUnsafeBufferPointer { $0[v] }
            if g.published > t || !w.isAvailable(g, country: p.country) { continue }
            let vl = Int(g.language)
            if vl != p.language && !rng.chance(vl == Vocabulary.en ? 0.6 : 0.3) { continue }
            return v
        }
        return nil
    }

    // MARK: Rows

    /// Writes user `u`'s users.csv row and interactions.csv rows. Returns whether any interaction was written.
    func generate(user u: Int, users: RowBuffer, events out: RowBuffer) -> Bool {
        var rng = Self.stream(world.config, u)
        let p = profile(&rng)

        userId.reset()
        userId.id(UInt8(ascii: "u"), u)
        users.append(userId.bytes); users.comma()
        if p.country >= 0 { users.append(countryBytes[p.country]) }
        users.comma()
        users.append(languageBytes[p.language]); users.comma()
        if p.age > 0 { users.int(p.age) }
        users.comma()
        users.append(genderBytes[p.gender]); users.comma()
        if p.signup != .min { users.int(p.signup) }
        users.newline()

        if p.engagements == 0 { return false }
        let before = out.count
        writeEvents(u, p, &rng, out)
        return out.count > before
    }

    private func writeEvents(_ u: Int, _ p: UserProfile, _ rng: inout SeededRandom, _ out: RowBuffer) {
        let w = world
        let end = w.config.endTime
        // Sessions: 1 + geometric engagements each, started at the user's usual hour on a random active day,
        // packed as start << 20 | length and sorted by time.
        sessions.removeAll(keepingCapacity: true)
        var remaining = p.engagements
        let span = Double(p.lastActive - p.firstActive)
        while remaining > 0 {
            var len = 1
            while len < 1000 && rng.chance(0.6) { len += 1 }
            len = min(len, remaining)
            remaining -= len
            var s = p.firstActive + Int64(rng.nextDouble() * span)
            if rng.chance(0.8) {
                let day = s >= 0 ? s / 86_400 : (s - 86_399) / 86_400
                let h = ((p.hourUTC + Int((2 * rng.normal()).rounded())) % 24 + 24) % 24
                let snapped = day * 86_400 + Int64(h * 3600 + rng.nextInt(3600))
                if snapped >= p.firstActive && snapped <= p.lastActive { s = snapped }
            }
            sessions.append(s << 20 | Int64(len))
        }
        sessions.sort()

        for packed in sessions {
            var t = packed >> 20
            let len = Int(packed & 0xFFFFF)
            var searchTopic = -1, searchLeft = 0
            if rng.chance(0.12) {
                searchTopic = sampleTopic(&rng)
                row(.search, video: -1, watch: -1, at: t, p, &rng, out, query: searchTopic)
                searchLeft = min(len, rng.chance(0.6) ? 1 : 2)
                t += Int64(rng.between(3, 20))
            }
            for _ in 0..<len {
                if t > end { break }   // the log ends at endTime: the rest of the session is cut off
                let fromSearch = searchLeft > 0
                if fromSearch { searchLeft -= 1 }
                guard let v = pickEngaged(p, topic: fromSearch ? searchTopic : -1, at: t, &rng) else {
                    t += 30
                    continue
                }
                let z = match(p, v) * w.config.tasteStrength
                if !fromSearch && rng.chance(0.75) {
                    row(.impression, video: v, watch: -1, at: t, p, &rng, out)
                    for _ in 0..<rng.nextInt(4) {
                        if let s = pickShown(p, at: t, &rng), s != v {
                            row(.impression, video: s, watch: -1, at: t, p, &rng, out)
                        }
                    }
                    t += Int64(rng.between(2, 40))
                }
                if rng.chance(0.92) {
                    row(.click, video: v, watch: -1, at: t, p, &rng, out)
                    t += Int64(rng.between(1, 4))
                }
                // Watch depth: higher for a better taste match and quality, lower for long videos.
                let d = Double(w.duration[v])
                let q = Double(w.quality[v])
                var f: Double
                if rng.chance(0.06) {
                    f = 0.05 * rng.nextDouble()
                } else {
                    f = sigmoid(1.3 * z + 0.35 * q + 0.7 * rng.normal() - 0.6 * log10(d / 400) - 0.7)
                    if f > 0.95 { f = 1 }
                }
                let ws = max(1, Int((f * d).rounded(.down)))
                row(.watch, video: v, watch: ws, at: t, p, &rng, out)
                let tReact = t + Int64(max(1, ws - rng.nextInt(max(1, ws / 4))))
                if f >= 0.25 && rng.chance(sigmoid(1.4 * z + 0.3 * q - 3.3)) {
                    row(.like, video: v, watch: -1, at: tReact, p, &rng, out)
                } else if rng.chance(sigmoid(-1.6 * z - 0.3 * q - 3.0 + (f < 0.25 ? 1 : 0))) {
                    row(.dislike, video: v, watch: -1, at: tReact, p, &rng, out)
                }
                if f >= 0.5 && rng.chance(0.005 + 0.04 * sigmoid(2 * z - 3)) {
                    row(.share, video: v, watch: -1, at: tReact, p, &rng, out)
                }
                if rng.chance(0.006 + 0.03 * sigmoid(1.5 * z - 2)) {
                    row(.comment, video: v, watch: -1, at: tReact, p, &rng, out)
                }
                t += Int64(ws + rng.between(3, 60))
            }
        }
    }

    /// One interactions.csv row: user_id,video_id,event,watch_seconds,timestamp,device,query.
    @inline(__always)
    private func row(_ e: Event, video: Int, watch: Int, at t: Int64, _ p: UserProfile, _ rng: inout SeededRandom,
                     _ out: RowBuffer, query topic: Int = -1) {
        if t > world.config.endTime { return }   // cut off by the end of the log
        eventCounts[e.rawValue] += 1
        out.append(userId.bytes); out.comma()
        if video >= 0 { out.id(UInt8(ascii: "v"), video) }
        out.comma()
        out.append(eventBytes[e.rawValue]); out.comma()
        if watch >= 0 { out.int(watch) }
        out.comma()
        out.int(t); out.comma()
        out.append(deviceBytes[rng.chance(0.85) ? p.device : Int(deviceTable.sample(&rng))])
        out.comma()
        if topic >= 0 {
            // Query: sometimes a localized prefix, 1–2 topic words, sometimes the topic name.
            if p.language != Vocabulary.en && rng.chance(0.3) {
                out.append(queryPrefixBytes[p.language]); out.byte(UInt8(ascii: " "))
            }
            let words = topicWordBytes[topic]
            out.append(words[rng.nextInt(words.count)])
            if rng.chance(0.5) { out.byte(UInt8(ascii: " ")); out.append(words[rng.nextInt(words.count)]) }
            if rng.chance(0.3) { out.byte(UInt8(ascii: " ")); out.append(topicNameBytes[topic]) }
        }
        out.newline()
    }
}
