import Testing
@testable import HomefeedCore
@testable import HomefeedData
@testable import HomefeedPipeline
@testable import HomefeedStore

/// Video v of a test list: channel `channels[v]`, key `keys[v]`, score decreasing with v (the list is best first).
struct DiversityCase {
    var channels: [Int32]
    var keys: [UInt64]

    init(_ channels: [Int32], keys: [UInt64]? = nil) {
        self.channels = channels
        self.keys = keys ?? [UInt64](repeating: 0, count: channels.count)
    }

    var ranked: [RankedCandidate] {
        channels.indices.map { (video: UInt32($0), score: Float(channels.count - $0), source: CandidateSource.mf) }
    }

    /// The re-ranked videos (their input positions).
    func run(_ caps: DiversityCaps, listSize: Int? = nil, scratch: inout DiversityScratch) -> [Int] {
        diversify(ranked, channel: { channels[Int($0)] }, duplicateKey: { keys[Int($0)] }, caps: caps,
                  listSize: listSize ?? channels.count, scratch: &scratch).map { Int($0.video) }
    }

    func run(_ caps: DiversityCaps, listSize: Int? = nil) -> [Int] {
        var scratch = DiversityScratch()
        return run(caps, listSize: listSize, scratch: &scratch)
    }

    /// The specification, naively: at each position drop every remaining candidate that can never be taken
    /// (duplicate key, full channel), then take the first remaining one that does not make a run too long.
    func reference(_ caps: DiversityCaps, listSize: Int) -> [Int] {
        var remaining = Array(channels.indices), out: [Int] = []
        while out.count < listSize {
            remaining.removeAll { i in
                let c = channels[i]
                if caps.dropNearDuplicates && keys[i] != 0 && out.contains(where: { keys[$0] == keys[i] }) { return true }
                return c >= 0 && caps.maxPerChannel > 0 && out.filter { channels[$0] == c }.count >= caps.maxPerChannel
            }
            let fits = remaining.firstIndex { i in
                let c = channels[i]
                guard c >= 0 && caps.maxChannelRun > 0 else { return true }
                return trailingRun(out, of: c) < caps.maxChannelRun
            }
            guard let k = fits else { break }
            out.append(remaining.remove(at: k))
        }
        return out
    }

    func trailingRun(_ out: [Int], of c: Int32) -> Int {
        var n = 0
        for i in out.reversed() { if channels[i] == c { n += 1 } else { break } }
        return n
    }

    /// Every cap honoured by `out`, each entry from the input once, at most `listSize` entries.
    func checkCaps(_ out: [Int], _ caps: DiversityCaps, listSize: Int, _ note: String = "") {
        #expect(out.count <= max(0, listSize), "\(note)")
        #expect(Set(out).count == out.count && out.allSatisfy { channels.indices.contains($0) }, "\(note)")
        var perChannel: [Int32: Int] = [:], seenKeys = Set<UInt64>()
        var runChannel: Int32 = -1, run = 0
        for i in out {
            let c = channels[i]
            if caps.dropNearDuplicates && keys[i] != 0 { #expect(seenKeys.insert(keys[i]).inserted, "duplicate \(i) \(note)") }
            if c >= 0 {
                perChannel[c, default: 0] += 1
                if caps.maxPerChannel > 0 { #expect(perChannel[c]! <= caps.maxPerChannel, "channel \(c) \(note)") }
                if c == runChannel { run += 1 } else { runChannel = c; run = 1 }
                if caps.maxChannelRun > 0 { #expect(run <= caps.maxChannelRun, "run of \(c) \(note)") }
            } else {
                runChannel = -1; run = 0
            }
        }
    }
}

@Suite struct DiversityTests {
    /// A list that already satisfies the caps comes out unchanged; no caps at all is the top listSize.
    @Test func listWithinTheCapsIsUnchanged() {
        let t = DiversityCase([0, 1, 0, 2, 1, 3, -1, 0, 2, 4], keys: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        let caps = DiversityCaps(maxPerChannel: 3, maxChannelRun: 1, dropNearDuplicates: true)
        #expect(t.run(caps) == Array(0..<10))
        #expect(t.run(DiversityCaps()) == Array(0..<10))
        #expect(!DiversityCaps().isActive && caps.isActive && DiversityCaps(maxChannelRun: 2).isActive)
        #expect(t.run(DiversityCaps(), listSize: 4) == [0, 1, 2, 3])
        // Duplicate keys without dropNearDuplicates, repeated channels without caps: kept.
        let same = DiversityCase([5, 5, 5, 5], keys: [9, 9, 9, 9])
        #expect(same.run(DiversityCaps()) == [0, 1, 2, 3])
    }

    /// All one channel: the per-channel cap and the run cap each bound the list (nothing else can take a position).
    @Test func allOneChannel() {
        let t = DiversityCase([Int32](repeating: 7, count: 50))
        #expect(t.run(DiversityCaps(maxPerChannel: 3)) == [0, 1, 2])
        #expect(t.run(DiversityCaps(maxChannelRun: 2)) == [0, 1])
        #expect(t.run(DiversityCaps(maxPerChannel: 5, maxChannelRun: 4)) == [0, 1, 2, 3])
        #expect(t.run(DiversityCaps(maxPerChannel: 1, maxChannelRun: 4)) == [0])
    }

    /// Alternating channels already satisfy a run cap of 1; a per-channel cap keeps the best of each.
    @Test func alternatingChannels() {
        let t = DiversityCase((0..<20).map { Int32($0 % 2) })
        #expect(t.run(DiversityCaps(maxChannelRun: 1)) == Array(0..<20))
        #expect(t.run(DiversityCaps(maxPerChannel: 2, maxChannelRun: 1)) == [0, 1, 2, 3])
        let pairs = DiversityCase((0..<12).map { Int32(($0 / 2) % 2) })   // 0 0 1 1 0 0 1 1 …
        #expect(pairs.run(DiversityCaps(maxChannelRun: 2)) == Array(0..<12))
        #expect(pairs.run(DiversityCaps(maxChannelRun: 1)) == [0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11])
    }

    /// A long run at the top is spread out: the deferred items move down, none disappears while other channels
    /// remain to break the run.
    @Test func longRunAtTheTopMovesDown() {
        //                    0  1  2  3  4  5  6  7  8  9
        let t = DiversityCase([0, 0, 0, 0, 0, 1, 2, 3, 4, 5])
        let out = t.run(DiversityCaps(maxChannelRun: 2))
        #expect(out == [0, 1, 5, 2, 3, 6, 4, 7, 8, 9])
        #expect(Set(out) == Set(0..<10))
        // Each deferred item lands later than it started; the others only move up (by the deferred ones).
        for (position, v) in out.enumerated() where [2, 3, 4].contains(v) { #expect(position > v) }
        // Run cap 1: the run is interleaved one by one.
        #expect(t.run(DiversityCaps(maxChannelRun: 1)) == [0, 5, 1, 6, 2, 7, 3, 8, 4, 9])
        // More of the run than can be interleaved: the rest is left out, and the list ends with a full run.
        let tail = DiversityCase([0, 0, 0, 0, 0, 0, 0, 1])
        #expect(tail.run(DiversityCaps(maxChannelRun: 2)) == [0, 1, 7, 2, 3])
        // listSize cuts the deferred items first when they do not fit in it.
        #expect(t.run(DiversityCaps(maxChannelRun: 2), listSize: 4) == [0, 1, 5, 2])
    }

    /// The same near-duplicate key keeps only the best; key 0 is no key; duplicates of a dropped item are not
    /// affected by it.
    @Test func nearDuplicatesDropped() {
        let t = DiversityCase([-1, -1, -1, -1, -1, -1, -1], keys: [1, 2, 1, 0, 0, 2, 3])
        #expect(t.run(DiversityCaps(dropNearDuplicates: true)) == [0, 1, 3, 4, 6])
        #expect(t.run(DiversityCaps(dropNearDuplicates: true), listSize: 3) == [0, 1, 3])
        #expect(t.run(DiversityCaps(dropNearDuplicates: false)) == Array(0..<7))
        // A duplicate that is deferred by the run cap and then meets its better copy taken is dropped.
        let d = DiversityCase([0, 0, 0, 1, 2], keys: [0, 0, 5, 5, 0])
        #expect(d.run(DiversityCaps(maxChannelRun: 2, dropNearDuplicates: true)) == [0, 1, 3, 4])
    }

    @Test func listSizeRespected() {
        let t = DiversityCase((0..<100).map { Int32($0 % 7) })
        for size in [0, 1, 5, 99, 100, 150] {
            let out = t.run(DiversityCaps(maxPerChannel: 20, maxChannelRun: 1), listSize: size)
            #expect(out.count == min(size, 100))
        }
        #expect(t.run(DiversityCaps(maxChannelRun: 1), listSize: -3).isEmpty)
        #expect(DiversityCase([]).run(DiversityCaps(maxPerChannel: 1)).isEmpty)
    }

    /// Channel −1 (none) is never capped and breaks runs of the others.
    @Test func noChannelIsNeverCapped() {
        let none = DiversityCase([Int32](repeating: -1, count: 30))
        #expect(none.run(DiversityCaps(maxPerChannel: 1, maxChannelRun: 1)) == Array(0..<30))
        let mixed = DiversityCase([3, -1, 3, -1, 3, 3, 4])
        #expect(mixed.run(DiversityCaps(maxChannelRun: 1)) == [0, 1, 2, 3, 4, 6, 5])
        #expect(mixed.run(DiversityCaps(maxPerChannel: 2)) == [0, 1, 2, 3, 6])
    }

    /// Random lists (long runs, few channels, repeated keys), random caps: every cap honoured, and the result is
    /// exactly the specification's (the naive greedy), also with a scratch reused across calls.
    @Test func randomListsHonourEveryCap() {
        var rng = SeededRandom(seed: 2024)
        var shared = DiversityScratch()
        for trial in 0..<1500 {
            let n = rng.nextInt(120)
            let channelCount = 1 + rng.nextInt(6)
            var channels: [Int32] = [], keys: [UInt64] = []
            for _ in 0..<n {
                // Runs: repeat the previous channel often; −1 sometimes.
                if let last = channels.last, rng.nextInt(10) < 6 { channels.append(last) } else {
                    channels.append(rng.nextInt(8) == 0 ? -1 : Int32(rng.nextInt(channelCount)))
                }
                keys.append(rng.nextInt(3) == 0 ? 0 : UInt64(1 + rng.nextInt(max(1, n / 3))))
            }
            let caps = DiversityCaps(maxPerChannel: rng.nextInt(6), maxChannelRun: rng.nextInt(4),
                                     dropNearDuplicates: rng.nextInt(2) == 0)
            let listSize = rng.nextInt(n + 6)
            let t = DiversityCase(channels, keys: keys)
            let out = t.run(caps, listSize: listSize, scratch: &shared)
            let note = "trial \(trial): \(caps) size \(listSize) channels \(channels) keys \(keys)"
            t.checkCaps(out, caps, listSize: listSize, note)
            #expect(out == t.reference(caps, listSize: listSize), "\(note)")
            #expect(out == t.run(caps, listSize: listSize), "\(note)")
            if caps.maxChannelRun > 0 && caps.maxPerChannel == 0 && !caps.dropNearDuplicates && out.count < min(listSize, n) {
                // Run cap only: what is left out is the tail of the last channel's full run, nothing else.
                let last = channels[out.last!]
                #expect(t.trailingRun(out, of: last) == caps.maxChannelRun, "\(note)")
                #expect(Set(0..<n).subtracting(out).allSatisfy { channels[$0] == last }, "\(note)")
            }
        }
    }

    /// Large lists take linear time (deferred candidates wait in a FIFO): 2000 candidates of one channel with a
    /// few others at the end.
    @Test func adversarialListIsFast() {
        let t = DiversityCase([Int32](repeating: 0, count: 1990) + (1...10).map { Int32($0) })
        var scratch = DiversityScratch()
        let start = TimeFormat.monotonic()
        var out: [Int] = []
        for _ in 0..<200 { out = t.run(DiversityCaps(maxChannelRun: 1), listSize: 100, scratch: &scratch) }
        let seconds = TimeFormat.monotonic() - start
        #expect(out == [0, 1990, 1, 1991, 2, 1992, 3, 1993, 4, 1994, 5, 1995, 6, 1996, 7, 1997, 8, 1998, 9, 1999, 10])
        #expect(seconds < 2, "\(seconds) s for 200 calls")
    }

    /// Title keys: digits, punctuation and extra whitespace do not count, case does not count; different words do.
    @Test func titleKeys() {
        let k = NearDuplicate.key(title:)
        #expect(k("Cats compilation #3") == k("cats compilation 4"))
        #expect(k("Cats compilation #3") == k("  CATS   compilation!!! (2024) "))
        #expect(k("Cats compilation #3") == StableHash.fnv1a64("cats compilation"))
        #expect(NearDuplicate.normalized("  Part 2: The   Return\t(HD) ") == "part the return hd")
        #expect(k("Cats compilation") != k("Dogs compilation"))
        #expect(k("cats compilation") != k("catscompilation"))
        #expect(k("") == 0 && k("  ") == 0 && k("2024 — #1!!") == 0)
        #expect(k("a") != 0)
        #expect(nearDuplicateKey("Cats compilation #3") == k("cats compilation 4"))
        // Unicode letters are lowercased; other scripts are kept.
        #expect(k("ÉCOLE d’été 2") == k("école d'été"))
        #expect(NearDuplicate.normalized("Ünïcode ÅNGSTRÖM") == "ünïcode ångström")
        #expect(k("猫の動画 1") == k("猫の動画 2") && k("猫の動画") != k("犬の動画"))
        // Bytes straight from the dataset's title column give the same keys (invalid UTF-8 is skipped).
        #expect(NearDuplicate.key(utf8: Array("Cats compilation #3".utf8)) == k("cats compilation"))
        #expect(NearDuplicate.key(utf8: [0x63, 0xFF, 0x61, 0x74]) == k("cat"))
        var videos = Videos()
        for t in ["Cats compilation #3", "", "dogs", "Cats compilation 4"] { videos.titles.append(t) }
        #expect(NearDuplicate.keys(videos) == [k("cats compilation"), 0, k("Dogs"), k("cats compilation")])
    }

    /// Fresh slots: with none of the fresh videos (ids ≥ 100) in the first 10 entries, the best-scored fresh candidate
    /// moves to position 10 (index 9), the entries from there shift down by one, nothing else moves; a window that
    /// already holds enough fresh videos is left alone.
    @Test func freshSlotsPromoteTheBestFreshCandidate() {
        let pool: [RankedCandidate] = (0..<20).map { (UInt32($0), Float(100 - $0), .mf) } + [(101, 50, .fresh)]
        let fresh: [RankedCandidate] = [(101, 50, .fresh), (102, 70, .fresh), (103, 10, .fresh)]
        var p = pool
        Refresh.reserveFreshSlots(&p, fresh: fresh, isFresh: { $0 >= 100 }, slots: 1, depth: 10)
        #expect(p.map(\.video) == Array(0..<9) + [102] + Array(9..<20) + [101])
        var two = pool
        Refresh.reserveFreshSlots(&two, fresh: fresh, isFresh: { $0 >= 100 }, slots: 2, depth: 10)
        #expect(two.map(\.video) == Array(0..<8) + [102, 101] + Array(8..<20))
        var already = p
        Refresh.reserveFreshSlots(&already, fresh: fresh, isFresh: { $0 >= 100 }, slots: 1, depth: 10)
        #expect(already.map(\.video) == p.map(\.video))
    }
}
