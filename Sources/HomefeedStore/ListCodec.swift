import HomefeedCore

/// Where a list entry came from (kept per entry for analysis; the daemon may expose it).
public enum CandidateSource: UInt8, Sendable, Codable, CaseIterable {
    case popularRegion = 0, popularLanguage = 1, popularGlobal = 2, mf = 3, twoTower = 4, fresh = 5, segment = 6

    /// The name reports use (`export --sources`, `meta.json` counts).
    public var name: String {
        switch self {
        case .popularRegion: "popular_region"
        case .popularLanguage: "popular_language"
        case .popularGlobal: "popular_global"
        case .mf: "mf"
        case .twoTower: "two_tower"
        case .fresh: "fresh"
        case .segment: "segment"
        }
    }

    /// Whether a `[CandidateSource]` is laid out as its raw values (one byte, case i stored as i, raw value i), so
    /// the encoder may copy the column in one go; checked once, not assumed.
    static let storedAsRawValue: Bool = MemoryLayout<CandidateSource>.size == 1 && allCases.allSatisfy { c in
        withUnsafeBytes(of: c) { $0[0] == c.rawValue }
    }
}

/// A recommendation list as the batch builds it, before encoding.
public struct RecommendationList: Sendable, Equatable {
    public var videos: [UInt32] = []          // indices into the version's video table
    public var scores: [Float] = []
    public var sources: [CandidateSource] = []
    /// For personalized lists: the user's country and language (the daemon's defaults for filtering and top-up).
    public var country: CountryCode = .unknown
    public var language: String = ""
    /// Bloom filter of the videos the user has seen (`SeenFilter`), so the daemon's top-up from popular lists
    /// does not bring them back; empty for popular lists.
    public var seenFilter: [UInt64] = []
    public init() {}
    public init(videos: [UInt32], scores: [Float], sources: [CandidateSource], country: CountryCode = .unknown,
                language: String = "") {
        self.videos = videos; self.scores = scores; self.sources = sources; self.country = country
        self.language = language
    }
    public var count: Int { videos.count }
}

/// The binary value of a user or popular list (little-endian):
///
///     u8  format version (ListCodec.formatVersion)
///     u8  flags (bit 0: a seen filter follows the entries)
///     u16 entry count n (≤ 65535)
///     u16 country (CountryCode.raw; "ZZ" when unknown)
///     u8  language length L (≤ 15), then L bytes of language
///     n × u32 video index, n × f32 score, n × u8 source
///     [flag bit 0] u16 word count W, W × u64 seen filter (see `SeenFilter`)
///
/// Columns rather than records so the daemon walks video indices without touching scores it filters out.
public enum ListCodec {
    public static let formatVersion: UInt8 = 1

    /// The number of bytes `encode` writes for `list`.
    @inline(__always)
    public static func encodedSize(_ list: RecommendationList) -> Int {
        let n = min(list.count, 65535)
        let words = min(list.seenFilter.count, SeenFilter.maxWords)
        return 7 + min(list.language.utf8.count, 15) + n * 9 + (words == 0 ? 0 : 2 + 8 * words)
    }

    /// Encodes into `out`, resized to fit (writers reuse it: one sized fill, then raw little-endian stores —
    /// per-element `Array.append` made the store writer 3× slower than a bare SstFileWriter).
    public static func encode(_ list: RecommendationList, into out: inout [UInt8]) {
        let size = encodedSize(list)
        if out.count != size {  // every byte is written, so a buffer of the right size is reused as is
            out.removeAll(keepingCapacity: true)
            out.append(contentsOf: repeatElement(0, count: size))
        }
        out.withUnsafeMutableBytes { encode(list, to: $0.baseAddress!) }
    }

    /// Writes exactly `encodedSize(list)` bytes at `b`.
    public static func encode(_ list: RecommendationList, to b: UnsafeMutableRawPointer) {
        let n = min(list.count, 65535)
        let langCount = min(list.language.utf8.count, 15)
        let words = min(list.seenFilter.count, SeenFilter.maxWords)
        let header = 7 + langCount
        b.storeBytes(of: formatVersion, as: UInt8.self)
        b.storeBytes(of: words == 0 ? 0 : 1, toByteOffset: 1, as: UInt8.self)
        b.storeBytes(of: UInt16(n).littleEndian, toByteOffset: 2, as: UInt16.self)
        b.storeBytes(of: list.country.raw.littleEndian, toByteOffset: 4, as: UInt16.self)
        b.storeBytes(of: UInt8(langCount), toByteOffset: 6, as: UInt8.self)
        for (k, c) in list.language.utf8.prefix(15).enumerated() { b.storeBytes(of: c, toByteOffset: 7 + k, as: UInt8.self) }
        // The columns are little-endian u32 / f32: on a little-endian host one memcpy each.
        #if _endian(little)
        list.videos.withUnsafeBytes { v in (b + header).copyMemory(from: v.baseAddress!, byteCount: 4 * n) }
        #else
        list.videos.withUnsafeBufferPointer { v in
            for i in 0..<n { b.storeBytes(of: v[i].littleEndian, toByteOffset: header + 4 * i, as: UInt32.self) }
        }
        #endif
        let scores = header + 4 * n, sources = header + 8 * n
        list.scores.withUnsafeBufferPointer { sc in
            let m = min(n, sc.count)
            #if _endian(little)
            if m > 0 { (b + scores).copyMemory(from: sc.baseAddress!, byteCount: 4 * m) }
            #else
            for i in 0..<m { b.storeBytes(of: sc[i].bitPattern.littleEndian, toByteOffset: scores + 4 * i, as: UInt32.self) }
            #endif
            for i in m..<n { b.storeBytes(of: UInt32(0), toByteOffset: scores + 4 * i, as: UInt32.self) }
        }
        list.sources.withUnsafeBufferPointer { so in
            let m = min(n, so.count)
            if CandidateSource.storedAsRawValue, m > 0 {
                (b + sources).copyMemory(from: UnsafeRawPointer(so.baseAddress!), byteCount: m)
            } else {
                for i in 0..<m { b.storeBytes(of: so[i].rawValue, toByteOffset: sources + i, as: UInt8.self) }
            }
            for i in m..<n { b.storeBytes(of: 0, toByteOffset: sources + i, as: UInt8.self) }
        }
        if words > 0 {
            let at = sources + n
            b.storeBytes(of: UInt16(words).littleEndian, toByteOffset: at, as: UInt16.self)
            list.seenFilter.withUnsafeBufferPointer { w in
                for k in 0..<words { b.storeBytes(of: w[k].littleEndian, toByteOffset: at + 2 + 8 * k, as: UInt64.self) }
            }
        }
    }

    public static func encode(_ list: RecommendationList) -> [UInt8] {
        var out: [UInt8] = []
        encode(list, into: &out)
        return out
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> RecommendationList {
        let view = try ListView(bytes)
        var list = RecommendationList()
        list.country = view.country
        list.language = view.language
        for i in 0..<view.count {
            list.videos.append(view.video(i)); list.scores.append(view.score(i)); list.sources.append(view.source(i))
        }
        list.seenFilter = (0..<view.seenWords).map {
            UInt64(littleEndian: view.seenBase.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))
        }
        return list
    }
}

/// A zero-copy view of an encoded list; valid as long as the bytes are.
public struct ListView {
    public let count: Int
    public let country: CountryCode
    @usableFromInline let videosBase: UnsafeRawPointer
    @usableFromInline let scoresBase: UnsafeRawPointer
    @usableFromInline let sourcesBase: UnsafeRawPointer
    @usableFromInline let seenBase: UnsafeRawPointer
    /// 64-bit words of the seen filter (0 = none).
    public let seenWords: Int
    let languageBytes: UnsafeRawBufferPointer

    public init(_ b: UnsafeRawBufferPointer) throws {
        guard b.count >= 7 else { throw HomefeedError("list value too short (\(b.count) bytes)") }
        guard b[0] == ListCodec.formatVersion else {
            throw HomefeedError("unsupported list format version \(b[0]) (this build reads \(ListCodec.formatVersion))")
        }
        let n = Int(b[2]) | Int(b[3]) << 8
        let langLen = Int(b[6])
        let header = 7 + langLen
        let entriesEnd = header + n * 9
        var words = 0
        if b[1] & 1 != 0, b.count >= entriesEnd + 2 {
            words = Int(b[entriesEnd]) | Int(b[entriesEnd + 1]) << 8
        }
        let expected = entriesEnd + (b[1] & 1 != 0 ? 2 + 8 * words : 0)
        guard b.count == expected, words <= SeenFilter.maxWords else {
            throw HomefeedError("corrupt list value: \(b.count) bytes for \(n) entries")
        }
        seenWords = words
        count = n
        country = CountryCode(raw: UInt16(b[4]) | UInt16(b[5]) << 8)
        languageBytes = UnsafeRawBufferPointer(rebasing: b[7..<header])
        videosBase = b.baseAddress! + header
        scoresBase = videosBase + 4 * n
        sourcesBase = scoresBase + 4 * n
        seenBase = sourcesBase + n + 2
    }

    /// Whether the user may have seen video v (false positives at the filter's rate, no false negatives);
    /// false when the list carries no filter.
    @inlinable public func mightHaveSeen(_ v: UInt32) -> Bool {
        guard seenWords > 0 else { return false }
        return SeenFilter.contains(v, words: seenWords) {
            UInt64(littleEndian: seenBase.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))
        }
    }

    public var language: String { String(decoding: languageBytes, as: UTF8.self) }

    @inlinable public func video(_ i: Int) -> UInt32 {
        UInt32(littleEndian: videosBase.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
    }
    @inlinable public func score(_ i: Int) -> Float {
        Float(bitPattern: UInt32(littleEndian: scoresBase.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
    }
    @inlinable public func source(_ i: Int) -> CandidateSource {
        CandidateSource(rawValue: sourcesBase.load(fromByteOffset: i, as: UInt8.self)) ?? .popularGlobal
    }
}

/// A Bloom filter over video indices: ~10 bits per video and 3 probes (~1.7% false positives), at most
/// `maxWords` words (users with more than ~1600 seen videos get a fuller, less exact filter).
///
///     h = mix64(v);  probe j = (h₁ + j·h₂) mod m,  h₁ = low 32 bits, h₂ = high 32 bits | 1
public enum SeenFilter {
    public static let maxWords = 256
    static let probes = 3

    public static func build<S: Collection>(_ videos: S) -> [UInt64] where S.Element == Int32 {
        guard !videos.isEmpty else { return [] }
        let words = min(maxWords, max(1, (videos.count * 10 + 63) / 64))
        var bits = [UInt64](repeating: 0, count: words)
        let m = UInt64(words * 64)
        for v in videos {
            let h = StableHash.mix64(UInt64(UInt32(bitPattern: v)))
            let h1 = h & 0xFFFF_FFFF, h2 = (h >> 32) | 1
            for j in 0..<UInt64(probes) {
                let bit = (h1 &+ j &* h2) % m
                bits[Int(bit >> 6)] |= 1 << (bit & 63)
            }
        }
        return bits
    }

    @inlinable
    public static func contains(_ v: UInt32, words: Int, word: (Int) -> UInt64) -> Bool {
        let h = StableHash.mix64(UInt64(v))
        let h1 = h & 0xFFFF_FFFF, h2 = (h >> 32) | 1
        let m = UInt64(words * 64)
        for j in 0..<UInt64(3) {
            let bit = (h1 &+ j &* h2) % m
            if word(Int(bit >> 6)) & (1 << (bit & 63)) == 0 { return false }
        }
        return true
    }
}
