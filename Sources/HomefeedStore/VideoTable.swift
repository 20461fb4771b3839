import HomefeedCore

/// What the daemon knows of each video of a version: its id, where it may be shown, when it was published and
/// its language. Written under `V` + index, loaded whole into memory when a version opens.
///
/// Record (little-endian): u8 format version, u8 availability (0 everywhere, 1 allow-list, 2 block-list),
/// i64 published (Unix s), u8 language length + bytes, u16 country count + u16 each, u16 id length + id bytes.
public struct VideoRecord: Sendable, Equatable {
    public var id: String
    public var availability: UInt8
    public var countries: [CountryCode]
    public var publishedAt: Int64
    public var language: String
    public init(id: String, availability: UInt8, countries: [CountryCode], publishedAt: Int64, language: String) {
        self.id = id; self.availability = availability; self.countries = countries; self.publishedAt = publishedAt
        self.language = language
    }

    public static let formatVersion: UInt8 = 1

    public func encode(into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.append(Self.formatVersion)
        out.append(availability)
        withUnsafeBytes(of: publishedAt.littleEndian) { out.append(contentsOf: $0) }
        let lang = Array(language.utf8.prefix(255))
        out.append(UInt8(lang.count)); out.append(contentsOf: lang)
        let n = min(countries.count, 65535)
        out.append(UInt8(n & 0xFF)); out.append(UInt8(n >> 8))
        for c in countries.prefix(n) { out.append(UInt8(c.raw & 0xFF)); out.append(UInt8(c.raw >> 8)) }
        let idb = Array(id.utf8.prefix(65535))
        out.append(UInt8(idb.count & 0xFF)); out.append(UInt8(idb.count >> 8)); out.append(contentsOf: idb)
    }

    public static func decode(_ b: UnsafeRawBufferPointer) throws -> VideoRecord {
        var pos = 0
        func need(_ n: Int) throws {
            if pos + n > b.count { throw HomefeedError("corrupt video record: \(b.count) bytes") }
        }
        try need(11)
        guard b[0] == formatVersion else {
            throw HomefeedError("unsupported video record format \(b[0]) (this build reads \(formatVersion))")
        }
        let availability = b[1]
        let published = Int64(littleEndian: b.loadUnaligned(fromByteOffset: 2, as: Int64.self))
        let langLen = Int(b[10]); pos = 11
        try need(langLen)
        let lang = String(decoding: b[pos..<(pos + langLen)], as: UTF8.self); pos += langLen
        try need(2)
        let n = Int(b[pos]) | Int(b[pos + 1]) << 8; pos += 2
        try need(2 * n)
        var countries: [CountryCode] = []
        countries.reserveCapacity(n)
        for _ in 0..<n { countries.append(CountryCode(raw: UInt16(b[pos]) | UInt16(b[pos + 1]) << 8)); pos += 2 }
        try need(2)
        let idLen = Int(b[pos]) | Int(b[pos + 1]) << 8; pos += 2
        try need(idLen)
        let id = String(decoding: b[pos..<(pos + idLen)], as: UTF8.self)
        return VideoRecord(id: id, availability: availability, countries: countries, publishedAt: published,
                           language: lang)
    }
}

/// The in-memory video table of an open version: columns for the daemon's filters plus an id → index map.
public struct VideoTable: Sendable {
    public private(set) var ids: [String] = []
    /// UTF-8 of each id, JSON-escaped once at load so responses copy bytes.
    public private(set) var jsonIDs: [[UInt8]] = []
    public private(set) var publishedAt: [Int64] = []
    public private(set) var availability: [UInt8] = []
    public private(set) var countries: [[CountryCode]] = []
    public private(set) var language: [String] = []
    private var index: [String: UInt32] = [:]

    public init() {}

    public var count: Int { ids.count }

    mutating func append(_ r: VideoRecord) {
        index[r.id] = UInt32(ids.count)
        ids.append(r.id)
        jsonIDs.append(JSONText.escaped(r.id))
        publishedAt.append(r.publishedAt)
        availability.append(r.availability)
        countries.append(r.countries)
        language.append(r.language)
    }

    public func index(of id: String) -> UInt32? { index[id] }

    @inlinable
    public func isAvailable(_ v: Int, in country: CountryCode) -> Bool {
        switch availability[v] {
        case 1: return countries[v].contains(country)
        case 2: return !countries[v].contains(country)
        default: return true
        }
    }
}

/// JSON string escaping (RFC 8259) into bytes, quotes included.
public enum JSONText {
    public static func escaped(_ s: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        appendEscaped(s.utf8, to: &out)
        out.append(UInt8(ascii: "\""))
        return out
    }

    public static func appendEscaped<S: Sequence>(_ bytes: S, to out: inout [UInt8]) where S.Element == UInt8 {
        let hexDigits = Array("0123456789abcdef".utf8)
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""): out.append(92); out.append(b)
            case 92: out.append(92); out.append(92)
            case 0x0A: out.append(92); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(92); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(92); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8)); out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 15)])
            default: out.append(b)
            }
        }
    }
}
