import HomefeedCore
import HomefeedStore

/// The per-video facts the request path reads, in flat raw buffers owned by this object: walking a list then
/// costs loads only — no array bounds checks, no reference counting of nested arrays — which is what keeps a
/// 100-entry request within a few microseconds. Built once per served state (version + blocklist).
final class FilterTable: @unchecked Sendable {  // immutable after init; the buffers are freed in deinit
    static let blockedFlag: UInt8 = 1, allowListFlag: UInt8 = 2, blockListFlag: UInt8 = 4

    let count: Int
    let published: UnsafeMutablePointer<Int64>
    let flags: UnsafeMutablePointer<UInt8>
    /// Countries of video v's allow/block list: `countries[countryStart[v]..<countryStart[v+1]]`.
    let countryStart: UnsafeMutablePointer<Int32>
    let countries: UnsafeMutablePointer<UInt16>
    /// The JSON-escaped, quoted id of video v: `idBytes[idStart[v]..<idStart[v+1]]`.
    let idStart: UnsafeMutablePointer<Int32>
    let idBytes: UnsafeMutablePointer<UInt8>
    let idByteCount: Int
    let countryCount: Int
    /// Longest quoted JSON id, to size the response buffer once.
    let maxIDBytes: Int

    init(videos: VideoTable, blocked: [Bool]) {
        count = videos.count
        published = .allocate(capacity: max(count, 1))
        flags = .allocate(capacity: max(count, 1))
        countryStart = .allocate(capacity: count + 1)
        idStart = .allocate(capacity: count + 1)
        countryCount = videos.countries.reduce(0) { $0 + $1.count }
        countries = .allocate(capacity: max(countryCount, 1))
        idByteCount = videos.jsonIDs.reduce(0) { $0 + $1.count }
        idBytes = .allocate(capacity: max(idByteCount, 1))
        maxIDBytes = videos.jsonIDs.reduce(0) { max($0, $1.count) }
        var c = 0, b = 0
        for v in 0..<count {
            published[v] = videos.publishedAt[v]
            var f: UInt8 = blocked[v] ? Self.blockedFlag : 0
            if videos.availability[v] == 1 { f |= Self.allowListFlag }
            if videos.availability[v] == 2 { f |= Self.blockListFlag }
            flags[v] = f
            countryStart[v] = Int32(c)
            for code in videos.countries[v] { countries[c] = code.raw; c += 1 }
            idStart[v] = Int32(b)
            for byte in videos.jsonIDs[v] { idBytes[b] = byte; b += 1 }
        }
        countryStart[count] = Int32(c)
        idStart[count] = Int32(b)
    }

    deinit {
        published.deallocate(); flags.deallocate(); countryStart.deallocate(); countries.deallocate()
        idStart.deallocate(); idBytes.deallocate()
    }

    /// Whether video v may be served: exists, not blocked, published at or after `minPublished`, available in
    /// `region` (`.unknown` = no region check).
    @inline(__always)
    func passes(_ v: Int, region: CountryCode, minPublished: Int64) -> Bool {
        guard v < count else { return false }
        let f = flags[v]
        if f & Self.blockedFlag != 0 || published[v] < minPublished { return false }
        if f & (Self.allowListFlag | Self.blockListFlag) == 0 || region == .unknown { return true }
        var listed = false
        for k in Int(countryStart[v])..<Int(countryStart[v + 1]) where countries[k] == region.raw { listed = true; break }
        return f & Self.allowListFlag != 0 ? listed : !listed
    }

    /// Writes video v's quoted JSON id.
    @inline(__always)
    func writeJSONID(_ v: Int, to out: inout JSONWriter) {
        out.write(idBytes + Int(idStart[v]), Int(idStart[v + 1] - idStart[v]))
    }
}
