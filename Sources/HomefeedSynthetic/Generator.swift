import Dispatch
import Foundation
import Glibc
import HomefeedCore
import Synchronization

/// `homefeed-batch generate`: writes users.csv, videos.csv and interactions.csv (docs/DATA.md) from a seeded
/// model with a planted taste structure. Deterministic for a config whatever the thread count (every user has
/// its own random stream and blocks are written in user order); streams rows to disk with bounded memory.
///
/// The model:
/// - 25 countries (Zipf sizes, each a main and second language, a UTC offset and favorite topics); 18 languages.
/// - 40 topics, each with a tag vocabulary; a video's tags are its topics' names and words (its topic mixture).
/// - Channels (~8 videos each): home country, language, 1–3 topics. Videos: Zipf popularity × quality,
///   log-normal duration (30 s–2 h), 3% published in the last 48 h, 15% inside the window, the rest older;
///   5% allow-listed to a few countries, 3% block-listed.
/// - A user's taste u (per topic) = country + language + age bucket + gender segment vectors + noise + 1–3
///   favorites. Engagements pick a topic ∝ g_t^0.5 · exp(b·u_t), then a video ∝ popularity^a in that topic
///   (in the user's language with a user-specific chance; other languages accepted rarely), sometimes a
///   trending or fresh video instead; only videos published by then and available in the user's country.
/// - Each engagement: impression (+ unclicked impressions) → click → watch whose depth rises with the
///   standardized match z = (u·topics − mean u) / sd u; likes for high z, dislikes for low z, shares, comments.
///   Sessions at the user's usual hour, heavy-tailed activity, 10% users without history, 12% lapsed users.
public enum Generator {
    public static let usersHeader = "user_id,country,language,age,gender,signup_time"
    public static let videosHeader = "video_id,language,duration_seconds,published_time,title,tags,channel_id,availability"
    public static let interactionsHeader = "user_id,video_id,event,watch_seconds,timestamp,device,query"
    public static let files = ["users.csv", "videos.csv", "interactions.csv"]

    /// Users per block: the unit of parallel work and of ordered writing.
    static let blockUsers = 1024

    @discardableResult
    public static func generate(_ config: GeneratorConfig, out: String, progress: Bool) throws -> GeneratorSummary {
        try config.validate()
        let t0 = TimeFormat.monotonic()
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw HomefeedError("cannot create output directory \(out): \(error)")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: out, isDirectory: &isDir), isDir.boolValue else {
            throw HomefeedError("output path \(out) is not a directory")
        }

        let world = World(config)
        var summary = GeneratorSummary()
        summary.videos = world.videoCount
        summary.channels = world.channelCount

        summary.bytes += try writeVideos(world, path: out + "/videos.csv")

        // Users and their interactions, block by block: workers fill blocks, the caller writes them in order.
        let usersFile = try OutputFile(path: out + "/users.csv")
        let eventsFile = try OutputFile(path: out + "/interactions.csv")
        let header = RowBuffer(capacity: 256)
        header.append(usersHeader); header.newline(); try usersFile.drain(header)
        header.append(interactionsHeader); header.newline(); try eventsFile.drain(header)

        let threads = config.threads > 0 ? config.threads : max(1, ProcessInfo.processInfo.activeProcessorCount)
        let blocks = (config.users + blockUsers - 1) / blockUsers
        let prog = Progress("generate interactions", total: config.users, unit: "users", quiet: !progress)
        var counts = [Int](repeating: 0, count: Vocabulary.events.count)
        var withHistory = 0

        // Pipeline: `threads` workers claim blocks in order and fill a ring of `window` slots; this thread writes
        // the slots in block order. A worker may claim block b only once block b - window is written (the
        // `free` semaphore), so memory stays bounded and output order never depends on scheduling.
        let window = max(2, threads * 4)
        let ring = SlotArray<BlockResult?>(count: window, initial: nil)
        let ready = (0..<window).map { _ in DispatchSemaphore(value: 0) }
        let free = DispatchSemaphore(value: window)
        let next = Counter()
        let failed = Counter()
        let group = DispatchGroup()
        for _ in 0..<threads {
            DispatchQueue.global().async(group: group) {
                let model = UserModel(world: world)
                while true {
                    free.wait()
                    let b = next.add(1)
                    if b >= blocks || failed.value != 0 { free.signal(); return }
                    let lo = b * blockUsers, hi = min(config.users, lo + blockUsers)
                    let r = BlockResult(users: hi - lo)
                    model.eventCounts = r.counts
                    for u in lo..<hi where model.generate(user: u, users: r.users, events: r.events) {
                        r.withHistory += 1
                    }
                    r.counts = model.eventCounts
                    ring[b % window] = r
                    prog.add(hi - lo)
                    ready[b % window].signal()
                }
            }
        }
        var writeError: Error?
        for b in 0..<blocks {
            ready[b % window].wait()
            let r = ring[b % window]!
            ring[b % window] = nil
            do {
                try usersFile.write(r.users.bytes)
                try eventsFile.write(r.events.bytes)
            } catch {
                writeError = error
                _ = failed.add(1)
                for _ in 0..<(threads + window) { free.signal() }
                break
            }
            withHistory += r.withHistory
            for k in counts.indices { counts[k] += r.counts[k] }
            free.signal()
        }
        group.wait()
        if let writeError { throw writeError }
        try usersFile.finish()
        try eventsFile.finish()
        prog.finish()

        summary.users = config.users
        summary.usersWithHistory = withHistory
        summary.interactions = counts.reduce(0, +)
        for (k, name) in Vocabulary.events.enumerated() { summary.events[name] = counts[k] }
        summary.bytes += usersFile.bytesWritten + eventsFile.bytesWritten
        summary.seconds = TimeFormat.monotonic() - t0
        return summary
    }

    /// videos.csv: `video_id,language,duration_seconds,published_time,title,tags,channel_id,availability`.
    static func writeVideos(_ w: World, path: String) throws -> Int {
        let file = try OutputFile(path: path)
        let buf = RowBuffer(capacity: 1 << 20)
        buf.append(videosHeader); buf.newline()
        let langs = Vocabulary.languages.map { Array($0.utf8) }
        let countries = Vocabulary.countries.map { Array($0.code.utf8) }
        for v in 0..<w.videoCount {
            var rng = SeededRandom(seed: streamSeed(w.config.seed, 4, UInt64(v)))
            let topics = (Int(w.topicOffsets[v])..<Int(w.topicOffsets[v + 1])).map { Int(w.videoTopic[$0]) }
            buf.id(UInt8(ascii: "v"), v); buf.comma()
            buf.append(langs[Int(w.videoLanguage[v])]); buf.comma()
            buf.int(Int(w.duration[v])); buf.comma()
            buf.int(w.published[v]); buf.comma()
            buf.field(title(v, topics: topics, language: Int(w.videoLanguage[v]), &rng)); buf.comma()
            // Tags: each topic's name and 1–2 of its words (tags tie the video to its topics), sometimes a generic one.
            var tags: [String] = []
            for t in topics {
                let topic = Vocabulary.topics[t]
                tags.append(topic.name)
                for _ in 0..<(1 + rng.nextInt(2)) {
                    let word = topic.words[rng.nextInt(topic.words.count)]
                    if !tags.contains(word) { tags.append(word) }
                }
            }
            if rng.chance(0.15) { tags.append(["hd", "4k", "new", "2026", "official"][rng.nextInt(5)]) }
            buf.field(tags.joined(separator: "|")); buf.comma()
            buf.id(UInt8(ascii: "c"), Int(w.videoChannel[v])); buf.comma()
            let mode = w.availability[v]
            if mode != 0 {
                buf.append(mode == 1 ? "allow:" : "block:")
                for k in Int(w.availabilityOffsets[v])..<Int(w.availabilityOffsets[v + 1]) {
                    if k > Int(w.availabilityOffsets[v]) { buf.byte(UInt8(ascii: "|")) }
                    buf.append(countries[Int(w.availabilityCountries[k])])
                }
            }
            buf.newline()
            if buf.count >= 1 << 20 { try file.drain(buf) }
        }
        try file.drain(buf)
        try file.finish()
        return file.bytesWritten
    }

    /// A title from topic words, sometimes with a localized prefix, an opener and a suffix (some need quoting).
    static func title(_ v: Int, topics: [Int], language: Int, _ rng: inout SeededRandom) -> String {
        func cap(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }
        var s = Vocabulary.titleOpeners[rng.nextInt(Vocabulary.titleOpeners.count)]
        if language != Vocabulary.en && rng.chance(0.5) { s += Vocabulary.titlePrefix[language] + " " }
        let main = Vocabulary.topics[topics[0]]
        s += cap(main.words[rng.nextInt(main.words.count)])
        if rng.chance(0.5) { s += " " + cap(main.words[rng.nextInt(main.words.count)]) }
        if topics.count > 1 && rng.chance(0.6) {
            let other = Vocabulary.topics[topics[1]]
            s += " & " + cap(other.words[rng.nextInt(other.words.count)])
        }
        if rng.chance(0.4) { s += " " + main.name }
        s += Vocabulary.titleSuffixes[rng.nextInt(Vocabulary.titleSuffixes.count)]
        return s
    }

    /// FNV-1a 64 over the bytes of users.csv, videos.csv and interactions.csv (in that order), as 16 hex digits.
    public static func digest(directory: String) throws -> String {
        var h = StableHash.offsetBasis
        let size = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buf.deallocate() }
        for name in files {
            let path = directory + "/" + name
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw HomefeedError("cannot open \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            while true {
                let n = read(fd, buf, size)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw HomefeedError("cannot read \(path): \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }
                h = StableHash.fnv1a64(UnsafeRawBufferPointer(start: buf, count: n), seed: h)
            }
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// One block's output.
final class BlockResult: @unchecked Sendable {
    let users: RowBuffer
    let events: RowBuffer
    var withHistory = 0
    var counts = [Int](repeating: 0, count: Vocabulary.events.count)
    init(users n: Int) {
        users = RowBuffer(capacity: n * 40)
        events = RowBuffer(capacity: n * 1024)
    }
}

/// Fixed slots, each written by one thread at a time (the invariant that makes it `@unchecked Sendable`).
final class SlotArray<T>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<T>
    let count: Int
    init(count: Int, initial: T) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: initial, count: count)
    }
    deinit { base.deinitialize(count: count); base.deallocate() }
    subscript(i: Int) -> T {
        get { base[i] }
        set { base[i] = newValue }
    }
}

/// A shared work counter (a class so `@Sendable` closures can capture the non-copyable `Atomic`).
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    /// Adds n and returns the old value.
    func add(_ n: Int) -> Int { atomic.add(n, ordering: .relaxed).oldValue }
    var value: Int { atomic.load(ordering: .relaxed) }
}
