import HomefeedCore

/// Where a list entry came from (kept per entry for analysis; the daemon may expose it).
public enum CandidateSource: UInt8, Sendable, Codable, CaseIterable {
    case popularRegion = 0, popularLanguage = 1, popularGlobal = 2, mf = 3, twoTower = 4, fresh = 5, segment = 6
}

/// A recommendation list as the batch builds it, before encoding.
public struct RecommendationList: Sendable, Equatable {
    public var videos: [UInt32] = []          // indices into the version's video table
    public var scores: [Float] = []
    public var sources: [CandidateSource] = []
    /// For personalized lists: the user's country and language (the daemon's defaults for filtering and top-up).
    public var country: CountryCode = .unknown
    public var language: String = ""
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
///     u8  flags (reserved, 0)
///     u16 entry count n (≤ 65535)
///     u16 country (CountryCode.raw; "ZZ" when unknown)
///     u8  language length L (≤ 15), then L bytes of language
///     n × u32 video index, n × f32 score, n × u8 source
///
/// Columns rather than records so the daemon walks video indices without touching scores it filters out.
public enum ListCodec {
    public static let formatVersion: UInt8 = 1

    public static func encode(_ list: RecommendationList, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        let n = min(list.count, 65535)
        let lang = Array(list.language.utf8.prefix(15))
        out.reserveCapacity(7 + lang.count + n * 9)
        out.append(formatVersion)
        out.append(0)
        out.append(UInt8(n & 0xFF)); out.append(UInt8(n >> 8))
        out.append(UInt8(list.country.raw & 0xFF)); out.append(UInt8(list.country.raw >> 8))
        out.append(UInt8(lang.count)); out.append(contentsOf: lang)
        for i in 0..<n { withUnsafeBytes(of: list.videos[i].littleEndian) { out.append(contentsOf: $0) } }
        for i in 0..<n { withUnsafeBytes(of: list.scores[i].bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        for i in 0..<n { out.append(i < list.sources.count ? list.sources[i].rawValue : 0) }
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
    let languageBytes: UnsafeRawBufferPointer

    public init(_ b: UnsafeRawBufferPointer) throws {
        guard b.count >= 7 else { throw HomefeedError("list value too short (\(b.count) bytes)") }
        guard b[0] == ListCodec.formatVersion else {
            throw HomefeedError("unsupported list format version \(b[0]) (this build reads \(ListCodec.formatVersion))")
        }
        let n = Int(b[2]) | Int(b[3]) << 8
        let langLen = Int(b[6])
        let header = 7 + langLen
        guard b.count == header + n * 9 else {
            throw HomefeedError("corrupt list value: \(b.count) bytes for \(n) entries")
        }
        count = n
        country = CountryCode(raw: UInt16(b[4]) | UInt16(b[5]) << 8)
        languageBytes = UnsafeRawBufferPointer(rebasing: b[7..<header])
        videosBase = b.baseAddress! + header
        scoresBase = videosBase + 4 * n
        sourcesBase = scoresBase + 4 * n
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
