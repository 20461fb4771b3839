import HomefeedCore
import HomefeedData
import HomefeedStore

/// One entry of a ranked list as the refresh writes it.
typealias RankedCandidate = (video: UInt32, score: Float, source: CandidateSource)

/// The diversity re-rank's caps; 0 (or false) = no cap.
struct DiversityCaps: Sendable, Equatable {
    /// At most this many items of one channel in the list.
    var maxPerChannel = 0
    /// At most this many consecutive items of one channel.
    var maxChannelRun = 0
    /// Keep only the best of items with the same non-zero near-duplicate key (`NearDuplicate.key`).
    var dropNearDuplicates = false

    init(maxPerChannel: Int = 0, maxChannelRun: Int = 0, dropNearDuplicates: Bool = false) {
        self.maxPerChannel = maxPerChannel; self.maxChannelRun = maxChannelRun; self.dropNearDuplicates = dropNearDuplicates
    }

    /// Whether any cap is on (else the re-rank is the top listSize).
    var isActive: Bool { maxPerChannel > 0 || maxChannelRun > 0 || dropNearDuplicates }
}

/// The diversity re-rank of one user's best-first list, with its scratch (one per worker thread, reused for every
/// user: after the first users no call allocates).
///
/// Greedy, one position at a time: each position takes the best remaining candidate that breaks no cap. A candidate
/// is **dropped** when it is a near-duplicate of one already taken (same non-zero key) or its channel already has
/// `maxPerChannel` items; it is **deferred** when taking it would make a run of more than `maxChannelRun` consecutive
/// items of its channel, and retried at the next positions (it moves down instead of disappearing). Channel < 0 means
/// none: never capped, never part of a run (it breaks one). The list stops at `listSize`, or earlier when the input
/// is used up and only deferred candidates remain (all of the channel whose run is full: no position can take them;
/// the daemon's top-up fills the rest).
///
/// Deferred candidates are always of one channel (the full run's: once another channel's item breaks the run, the
/// next position takes the best deferred one, or drops them), so they wait in a FIFO and each candidate is looked at
/// O(1) times: O(n + listSize) per call, with small open-addressing tables of the taken channels and keys.
struct DiversityScratch {
    /// The result of the last `select`: positions into the caller's list, in list order.
    private(set) var picked: [Int32] = []
    private var deferred: [(position: Int32, channel: Int32, key: UInt64)] = []
    private var deferredHead = 0
    /// Taken channels and their counts (key Int32.min = empty slot), taken keys (0 = empty slot).
    private var channelSlots: [Int32] = []
    private var channelCounts: [Int32] = []
    private var keySlots: [UInt64] = []
    private var mask = 0

    init() {}

    /// Fills `picked` for a best-first list of `count` candidates, candidate i having channel `channel(i)` and
    /// near-duplicate key `duplicateKey(i)` (each called at most once per candidate, and only when a cap needs it).
    mutating func select(count: Int, caps: DiversityCaps, listSize: Int, channel: (Int) -> Int32,
                         duplicateKey: (Int) -> UInt64) {
        picked.removeAll(keepingCapacity: true)
        deferred.removeAll(keepingCapacity: true)
        deferredHead = 0
        let size = min(listSize, count)
        if size <= 0 { return }
        if !caps.isActive {
            for i in 0..<size { picked.append(Int32(i)) }
            return
        }
        // Tables for at most `size` taken items, load ≤ 1/2.
        var slots = 16
        while slots < 2 * size { slots *= 2 }
        if channelSlots.count < slots {
            channelSlots = [Int32](repeating: .min, count: slots)
            channelCounts = [Int32](repeating: 0, count: slots)
            keySlots = [UInt64](repeating: 0, count: slots)
        } else {
            for s in 0..<channelSlots.count { channelSlots[s] = .min; keySlots[s] = 0 }
        }
        mask = channelSlots.count - 1
        let perChannel = caps.maxPerChannel, runCap = caps.maxChannelRun, dedup = caps.dropNearDuplicates
        let needChannel = perChannel > 0 || runCap > 0
        var runChannel: Int32 = -1, runLength = 0

        enum Verdict { case take, wait, drop }
        func verdict(_ c: Int32, _ key: UInt64) -> Verdict {
            if c >= 0 && runCap > 0 && c == runChannel && runLength >= runCap { return .wait }
            if dedup && key != 0 && containsKey(key) { return .drop }
            if c >= 0 && perChannel > 0 && channelCount(c) >= perChannel { return .drop }
            return .take
        }
        func take(_ position: Int32, _ c: Int32, _ key: UInt64) {
            picked.append(position)
            if dedup && key != 0 { insertKey(key) }
            if c >= 0 {
                if perChannel > 0 { incrementChannel(c) }
                if c == runChannel { runLength += 1 } else { runChannel = c; runLength = 1 }
            } else {
                runChannel = -1; runLength = 0
            }
        }

        var next = 0
        positions: while picked.count < size {
            // 1. The best deferred candidate, unless the run that blocks them all is still full.
            if deferredHead < deferred.count && !(deferred[deferredHead].channel == runChannel && runLength >= runCap) {
                while deferredHead < deferred.count {
                    let d = deferred[deferredHead]
                    deferredHead += 1
                    switch verdict(d.channel, d.key) {
                    case .take: take(d.position, d.channel, d.key); continue positions
                    case .drop: continue
                    case .wait:   // cannot happen (they share a channel); were it to, it waits on
                        assertionFailure("diversify: deferred candidates of two channels")
                        deferredHead -= 1
                    }
                    break
                }
            }
            if deferredHead == deferred.count { deferred.removeAll(keepingCapacity: true); deferredHead = 0 }
            // 2. The next candidates of the input.
            while next < count {
                let i = next
                next += 1
                let c = needChannel ? channel(i) : -1
                let key = dedup ? duplicateKey(i) : 0
                switch verdict(c, key) {
                case .take: take(Int32(i), c, key); continue positions
                case .drop: continue
                case .wait: deferred.append((Int32(i), c, key))
                }
            }
            break   // input used up; whatever is deferred is blocked by the full run
        }
    }

    @inline(__always) private func slot(_ h: UInt64) -> Int { Int(truncatingIfNeeded: StableHash.mix64(h)) & mask }

    private func channelCount(_ c: Int32) -> Int {
        var s = slot(UInt64(UInt32(bitPattern: c)))
        while true {
            let v = channelSlots[s]
            if v == c { return Int(channelCounts[s]) }
            if v == .min { return 0 }
            s = (s + 1) & mask
        }
    }

    private mutating func incrementChannel(_ c: Int32) {
        var s = slot(UInt64(UInt32(bitPattern: c)))
        while channelSlots[s] != c && channelSlots[s] != .min { s = (s + 1) & mask }
        if channelSlots[s] == .min { channelSlots[s] = c; channelCounts[s] = 0 }
        channelCounts[s] += 1
    }

    private func containsKey(_ k: UInt64) -> Bool {
        var s = slot(k)
        while true {
            let v = keySlots[s]
            if v == k { return true }
            if v == 0 { return false }
            s = (s + 1) & mask
        }
    }

    private mutating func insertKey(_ k: UInt64) {
        var s = slot(k)
        while keySlots[s] != k && keySlots[s] != 0 { s = (s + 1) & mask }
        keySlots[s] = k
    }
}

/// The diversity re-rank of a best-first list (see `DiversityScratch`): the kept entries, in order.
func diversify(_ ranked: [RankedCandidate], channel: (UInt32) -> Int32, duplicateKey: (UInt32) -> UInt64,
               caps: DiversityCaps, listSize: Int, scratch: inout DiversityScratch) -> [RankedCandidate] {
    ranked.withUnsafeBufferPointer { r in
        scratch.select(count: r.count, caps: caps, listSize: listSize, channel: { channel(r[$0].video) },
                       duplicateKey: { duplicateKey(r[$0].video) })
    }
    return scratch.picked.map { ranked[Int($0)] }
}

/// The same with a scratch of its own (tests, one-off calls).
func diversify(_ ranked: [RankedCandidate], channel: (UInt32) -> Int32, duplicateKey: (UInt32) -> UInt64,
               caps: DiversityCaps, listSize: Int) -> [RankedCandidate] {
    var scratch = DiversityScratch()
    return diversify(ranked, channel: channel, duplicateKey: duplicateKey, caps: caps, listSize: listSize, scratch: &scratch)
}

/// `NearDuplicate.key(title:)`: the near-duplicate key of a title (0 = none).
func nearDuplicateKey(_ title: String) -> UInt64 { NearDuplicate.key(title: title) }

/// Near-duplicate keys from titles: "Cats compilation #3" and "cats compilation 4" are the same video for the
/// diversity re-rank.
enum NearDuplicate {
    /// FNV-1a 64 (`StableHash`) of the normalized title's UTF-8: letters lowercased (combining marks kept), digits,
    /// punctuation, symbols and control characters removed, whitespace runs collapsed to one space, no space at
    /// either end. 0 when nothing is left (an empty title has no duplicates); a title hashing to 0 gets 1.
    static func key<Bytes: Sequence<UInt8>>(utf8 title: Bytes) -> UInt64 {
        var h = StableHash.offsetBasis
        var empty = true
        normalize(utf8: title) { b in h = (h ^ UInt64(b)) &* StableHash.prime; empty = false }
        return empty ? 0 : (h == 0 ? 1 : h)
    }

    static func key(title: String) -> UInt64 { key(utf8: title.utf8) }

    /// The normalized title (what `key` hashes), for reports and tests.
    static func normalized(_ title: String) -> String {
        var bytes: [UInt8] = []
        normalize(utf8: title.utf8) { bytes.append($0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Every video's key, from the dataset's title column.
    static func keys(_ videos: Videos) -> [UInt64] {
        let t = videos.titles
        return t.bytes.withUnsafeBufferPointer { b in
            (0..<t.count).map { key(utf8: UnsafeBufferPointer(rebasing: b[t.offsets[$0]..<t.offsets[$0 + 1]])) }
        }
    }

    /// Emits the normalized title's UTF-8 bytes. Invalid UTF-8 sequences count as removed characters.
    static func normalize<Bytes: Sequence<UInt8>>(utf8 title: Bytes, _ emit: (UInt8) -> Void) {
        var pendingSpace = false, started = false
        func letter(_ b: UInt8) {
            if pendingSpace { emit(0x20); pendingSpace = false }
            emit(b)
            started = true
        }
        var input = title.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&input) {
            case .emptyInput: return
            case .error: continue
            case .scalarValue(let u):
                if u.isASCII {
                    switch u.value {
                    case 0x41...0x5A: letter(UInt8(u.value + 0x20))
                    case 0x61...0x7A: letter(UInt8(u.value))
                    case 0x09...0x0D, 0x20: if started { pendingSpace = true }
                    default: break   // digits, punctuation, symbols, controls
                    }
                    continue
                }
                let p = u.properties
                switch p.generalCategory {
                case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                     .nonspacingMark, .spacingMark, .enclosingMark:
                    if p.changesWhenLowercased {
                        for l in p.lowercaseMapping.unicodeScalars { UTF8.encode(l) { letter($0) } }
                    } else {
                        UTF8.encode(u) { letter($0) }
                    }
                case .spaceSeparator, .lineSeparator, .paragraphSeparator:
                    if started { pendingSpace = true }
                default:
                    break
                }
            }
        }
    }
}
