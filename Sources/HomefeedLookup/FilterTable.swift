import Glibc
import HomefeedCore
import HomefeedStore

/// The per-video facts the request path reads, in flat raw buffers owned by this object: walking a list then
/// costs loads only — no array bounds checks, no reference counting of nested arrays. List entries point at
/// random videos, so what matters is cache misses: everything a filter and the JSON output need — published
/// time, flags, where the video's countries start, and the quoted JSON id itself when it fits (18 bytes: any
/// 11-character YouTube-style id) — sits in one 32-byte record, 32-byte aligned, so an entry costs one miss.
/// (Separate flag, record and id arrays cost three; the id load alone was ~15 % of a request under perf.)
/// Built once per served state (version + blocklist).
final class FilterTable: @unchecked Sendable {  // immutable after init; the buffers are freed in deinit
    static let blockedFlag: UInt8 = 1, allowListFlag: UInt8 = 2, blockListFlag: UInt8 = 4

    /// Record layout (byte offsets): published Int64 at 0, countryStart UInt32 at 8 (allow/block list:
    /// countries[countryStart ..< next record's countryStart]), flags at 12, then the quoted id: its length at
    /// 13 and its bytes inline at 14 (length ≤ 18), or for longer ids 0xFF at 13 and their UInt32 offset into
    /// `longIDs` at 16 and UInt32 length at 20.
    static let recordSize = 32, inlineIDBytes = 18, longIDMarker: UInt8 = 0xFF

    let count: Int
    let records: UnsafeMutableRawPointer   // count + 1 records (a sentinel closes the last country range)
    let countries: UnsafeMutablePointer<UInt16>
    let longIDs: UnsafeMutablePointer<UInt8>
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
        records = .allocate(byteCount: (count + 1) * Self.recordSize, alignment: Self.recordSize)
        records.initializeMemory(as: UInt8.self, repeating: 0, count: (count + 1) * Self.recordSize)
        let countryCount = videos.countries.reduce(0) { $0 + $1.count }
        countries = .allocate(capacity: max(countryCount, 1))
        let longCount = videos.jsonIDs.reduce(0) { $0 + ($1.count > Self.inlineIDBytes ? $1.count : 0) }
        longIDs = .allocate(capacity: max(longCount, 1))
        maxIDBytes = videos.jsonIDs.reduce(0) { max($0, $1.count) }
        var c = 0, long = 0
        for v in 0...count {
            let r = records + v * Self.recordSize
            r.storeBytes(of: UInt32(c), toByteOffset: 8, as: UInt32.self)
            guard v < count else { break }
            var f: UInt8 = blocked[v] ? Self.blockedFlag : 0
            if videos.availability[v] == 1 { f |= Self.allowListFlag }
            if videos.availability[v] == 2 { f |= Self.blockListFlag }
            r.storeBytes(of: videos.publishedAt[v], toByteOffset: 0, as: Int64.self)
            r.storeBytes(of: f, toByteOffset: 12, as: UInt8.self)
            for code in videos.countries[v] { countries[c] = code.raw; c += 1 }
            let id = videos.jsonIDs[v]
            if id.count <= Self.inlineIDBytes {
                r.storeBytes(of: UInt8(id.count), toByteOffset: 13, as: UInt8.self)
                for (k, byte) in id.enumerated() { r.storeBytes(of: byte, toByteOffset: 14 + k, as: UInt8.self) }
            } else {
                r.storeBytes(of: Self.longIDMarker, toByteOffset: 13, as: UInt8.self)
                r.storeBytes(of: UInt32(long), toByteOffset: 16, as: UInt32.self)
                r.storeBytes(of: UInt32(id.count), toByteOffset: 20, as: UInt32.self)
                for byte in id { longIDs[long] = byte; long += 1 }
            }
        }
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
        records.deallocate(); countries.deallocate(); longIDs.deallocate()
        rawBytes.deallocate(); rawStart.deallocate(); slots.deallocate()
    }

    /// Whether video v may be served: exists, not blocked, published at or after `minPublished`, available in
    /// `region` (`.unknown`: only videos without an allow-list).
    @inline(__always)
    func passes(_ v: Int, region: CountryCode, minPublished: Int64) -> Bool {
        guard v < count else { return false }
        let r = records + v * Self.recordSize
        let f = r.load(fromByteOffset: 12, as: UInt8.self)
        if f & Self.blockedFlag != 0 || r.load(as: Int64.self) < minPublished { return false }
        if f & (Self.allowListFlag | Self.blockListFlag) == 0 { return true }
        // Region unknown (no `region` and no stored country): an allow-listed video may be shown only where it is
        // allowed, so it is left out; a block-listed one is fine.
        if region == .unknown { return f & Self.blockListFlag != 0 }
        var listed = false
        let first = Int(r.load(fromByteOffset: 8, as: UInt32.self))
        let end = Int(r.load(fromByteOffset: Self.recordSize + 8, as: UInt32.self))
        for k in first..<end where countries[k] == region.raw {
            listed = true; break
        }
        return f & Self.allowListFlag != 0 ? listed : !listed
    }

    /// Writes video v's quoted JSON id.
    @inline(__always)
    func writeJSONID(_ v: Int, to out: inout JSONWriter) {
        let r = records + v * Self.recordSize
        let n = r.load(fromByteOffset: 13, as: UInt8.self)
        if n != Self.longIDMarker {
            out.write(r + 14, Int(n))
        } else {
            out.write(longIDs + Int(r.load(fromByteOffset: 16, as: UInt32.self)), Int(r.load(fromByteOffset: 20, as: UInt32.self)))
        }
    }
}
