import Glibc
import HomefeedCore
import HomefeedStore

/// The per-video facts the request path reads, in flat raw buffers owned by this object: walking a list then
/// costs loads only — no array bounds checks, no reference counting of nested arrays. Everything a filter and
/// the JSON id need sits in one 16-byte record per video, so an entry costs one cache miss for the record and
/// one for the id bytes (list entries point at random videos). Built once per served state (version + blocklist).
final class FilterTable: @unchecked Sendable {  // immutable after init; the buffers are freed in deinit
    static let blockedFlag: UInt8 = 1, allowListFlag: UInt8 = 2, blockListFlag: UInt8 = 4

    struct Record {
        var published: Int64
        var idStart: UInt32       // the JSON-escaped, quoted id: idBytes[idStart ..< idStart + idLength]
        var countryStart: UInt32  // allow/block list: countries[countryStart ..< next record's countryStart]
    }

    let count: Int
    let records: UnsafeMutablePointer<Record>   // count + 1 (a sentinel closes the last ranges)
    let flags: UnsafeMutablePointer<UInt8>
    let countries: UnsafeMutablePointer<UInt16>
    let idBytes: UnsafeMutablePointer<UInt8>
    /// Longest quoted JSON id, to size the response buffer once.
    let maxIDBytes: Int
    /// Raw id bytes (`rawStart`) and an open-addressing table id → video (FNV-1a, -1 = empty) so `exclude` and
    /// seen ids resolve from request bytes without building Strings.
    let rawBytes: UnsafeMutablePointer<UInt8>
    let rawStart: UnsafeMutablePointer<UInt32>   // count + 1
    let slots: UnsafeMutablePointer<Int32>
    let slotMask: Int

    init(videos: VideoTable, blocked: [Bool]) {
        count = videos.count
        records = .allocate(capacity: count + 1)
        flags = .allocate(capacity: max(count, 1))
        let countryCount = videos.countries.reduce(0) { $0 + $1.count }
        countries = .allocate(capacity: max(countryCount, 1))
        let idByteCount = videos.jsonIDs.reduce(0) { $0 + $1.count }
        idBytes = .allocate(capacity: max(idByteCount, 1))
        maxIDBytes = videos.jsonIDs.reduce(0) { max($0, $1.count) }
        var c = 0, b = 0
        for v in 0..<count {
            var f: UInt8 = blocked[v] ? Self.blockedFlag : 0
            if videos.availability[v] == 1 { f |= Self.allowListFlag }
            if videos.availability[v] == 2 { f |= Self.blockListFlag }
            flags[v] = f
            records[v] = Record(published: videos.publishedAt[v], idStart: UInt32(b), countryStart: UInt32(c))
            for code in videos.countries[v] { countries[c] = code.raw; c += 1 }
            for byte in videos.jsonIDs[v] { idBytes[b] = byte; b += 1 }
        }
        records[count] = Record(published: 0, idStart: UInt32(b), countryStart: UInt32(c))
        let rawCount = videos.ids.reduce(0) { $0 + $1.utf8.count }
        rawBytes = .allocate(capacity: max(rawCount, 1))
        rawStart = .allocate(capacity: count + 1)
        var size = 16
        while size < 2 * count { size <<= 1 }
        slots = .allocate(capacity: size)
        slots.initialize(repeating: -1, count: size)
        slotMask = size - 1
        var r = 0
        for v in 0..<count {
            rawStart[v] = UInt32(r)
            for byte in videos.ids[v].utf8 { rawBytes[r] = byte; r += 1 }
            var slot = Int(truncatingIfNeeded: StableHash.fnv1a64(UnsafeRawBufferPointer(start: rawBytes + Int(rawStart[v]), count: r - Int(rawStart[v])))) & slotMask
            while slots[slot] >= 0 { slot = (slot + 1) & slotMask }
            slots[slot] = Int32(v)
        }
        rawStart[count] = UInt32(r)
    }

    /// The video with this id, or nil.
    func index(ofID id: UnsafeRawBufferPointer) -> UInt32? {
        var slot = Int(truncatingIfNeeded: StableHash.fnv1a64(id)) & slotMask
        while true {
            let v = Int(slots[slot])
            if v < 0 { return nil }
            let start = Int(rawStart[v]), n = Int(rawStart[v + 1]) - start
            if n == id.count && (n == 0 || memcmp(rawBytes + start, id.baseAddress!, n) == 0) { return UInt32(v) }
            slot = (slot + 1) & slotMask
        }
    }

    deinit {
        records.deallocate(); flags.deallocate(); countries.deallocate(); idBytes.deallocate()
        rawBytes.deallocate(); rawStart.deallocate(); slots.deallocate()
    }

    /// Whether video v may be served: exists, not blocked, published at or after `minPublished`, available in
    /// `region` (`.unknown`: only videos without an allow-list).
    @inline(__always)
    func passes(_ v: Int, region: CountryCode, minPublished: Int64) -> Bool {
        guard v < count else { return false }
        let f = flags[v]
        if f & Self.blockedFlag != 0 || records[v].published < minPublished { return false }
        if f & (Self.allowListFlag | Self.blockListFlag) == 0 { return true }
        // Region unknown (no `region` and no stored country): an allow-listed video may be shown only where it is
        // allowed, so it is left out; a block-listed one is fine.
        if region == .unknown { return f & Self.blockListFlag != 0 }
        var listed = false
        for k in Int(records[v].countryStart)..<Int(records[v + 1].countryStart) where countries[k] == region.raw {
            listed = true; break
        }
        return f & Self.allowListFlag != 0 ? listed : !listed
    }

    /// Writes video v's quoted JSON id.
    @inline(__always)
    func writeJSONID(_ v: Int, to out: inout JSONWriter) {
        let start = Int(records[v].idStart)
        out.write(idBytes + start, Int(records[v + 1].idStart) - start)
    }
}
