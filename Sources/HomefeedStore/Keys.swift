import HomefeedCore

/// The key layout of a store version. One ASCII prefix byte per kind, chosen so the kinds sort in the order
/// they are written: M (metadata) < P (popular lists) < U (user lists) < V (video table).
public enum StoreKey {
    public static let metadataPrefix = UInt8(ascii: "M")
    public static let popularPrefix = UInt8(ascii: "P")
    public static let userPrefix = UInt8(ascii: "U")
    public static let videoPrefix = UInt8(ascii: "V")

    /// `M` + name. The run metadata lives under `Mmeta` (JSON).
    public static let runMetadata: [UInt8] = Array("Mmeta".utf8)

    /// The hash that leads a user key and so picks the user's shard: FNV-1a 64 of the id, then the SplitMix64
    /// finalizer. FNV-1a alone hardly moves its top bits with an id's last bytes, so sequential ids crowded a few
    /// shard ranges (store format 1). Persisted in every key: changing it needs a new `RunMetadata.currentStoreFormat`.
    @inlinable
    public static func userHash(_ id: UnsafeRawBufferPointer) -> UInt64 { StableHash.mix64(StableHash.fnv1a64(id)) }

    public static func userHash(_ id: String) -> UInt64 {
        var s = id
        return s.withUTF8 { userHash(UnsafeRawBufferPointer($0)) }
    }

    /// `U` + `userHash`(user id) big-endian + user id bytes. Hash first so a shard of users (a hash range) is one
    /// contiguous key range; the id after it makes the key exact (no collisions).
    @inlinable
    public static func user(_ id: UnsafeRawBufferPointer, into key: inout [UInt8]) {
        key.removeAll(keepingCapacity: true)
        key.append(userPrefix)
        appendBigEndian(userHash(id), to: &key)
        key.append(contentsOf: id)
    }

    /// The same key written into `key` (exactly 9 + id.count bytes), without allocating.
    @inlinable
    public static func user(_ id: UnsafeRawBufferPointer, into key: UnsafeMutableRawBufferPointer) {
        key[0] = userPrefix
        key.storeBytes(of: userHash(id).bigEndian, toByteOffset: 1, as: UInt64.self)
        if id.count > 0 { (key.baseAddress! + 9).copyMemory(from: id.baseAddress!, byteCount: id.count) }
    }

    public static func user(_ id: String) -> [UInt8] {
        var key: [UInt8] = []
        var s = id
        s.withUTF8 { user(UnsafeRawBufferPointer($0), into: &key) }
        return key
    }

    /// The user id inside a user key.
    public static func userID(fromKey key: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: key[9...])
    }

    /// `P` + scope + code: `PG` (global), `PR` + country (`PRUS`), `PL` + language (`PLen`), `PS` + segment.
    public static func popular(_ scope: PopularScope, _ code: String = "") -> [UInt8] {
        [popularPrefix, scope.rawValue] + Array(code.utf8)
    }

    /// `V` + video index (u32 big-endian): the version's video table, in index order.
    public static func video(_ index: UInt32) -> [UInt8] {
        var k: [UInt8] = [videoPrefix]
        k.reserveCapacity(5)
        appendBigEndian32(index, to: &k)
        return k
    }

    @inlinable
    static func appendBigEndian(_ v: UInt64, to a: inout [UInt8]) {
        for s in stride(from: 56, through: 0, by: -8) { a.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
    }
    static func appendBigEndian32(_ v: UInt32, to a: inout [UInt8]) {
        for s in stride(from: 24, through: 0, by: -8) { a.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
}

/// Which population a popular list is for.
public enum PopularScope: UInt8, Sendable, Codable {
    case global = 0x47    // "G"
    case language = 0x4C  // "L"
    case region = 0x52    // "R"
    case segment = 0x53   // "S"
}

/// Shard I of N owns the users whose key hash (`StoreKey.userHash`) lies in [I·2⁶⁴/N, (I+1)·2⁶⁴/N): one contiguous key range.
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// Bounds of the hash range (inclusive), computed once: `contains` runs for every user written.
    public let lowerHash: UInt64
    public let upperHash: UInt64

    public static let all = ShardSpec(uncheckedIndex: 0, count: 1)

    private init(uncheckedIndex: Int, count: Int) {
        index = uncheckedIndex; self.count = count
        lowerHash = UInt64((UInt128(uncheckedIndex) << 64) / UInt128(count))
        upperHash = UInt64(((UInt128(uncheckedIndex + 1) << 64) / UInt128(count)) - 1)
    }

    public init(index: Int, count: Int) throws {
        guard count >= 1, count <= 65536, index >= 0, index < count else {
            throw HomefeedError("shard must be I/N with 0 ≤ I < N ≤ 65536, got \(index)/\(count)")
        }
        self.init(uncheckedIndex: index, count: count)
    }

    /// Parses `I/N`.
    public init(parsing s: String) throws {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw HomefeedError("--shard expects I/N (e.g. 0/4), got '\(s)'")
        }
        try self.init(index: i, count: n)
    }

    public func contains(hash: UInt64) -> Bool { hash >= lowerHash && hash <= upperHash }

    public var description: String { "\(index)/\(count)" }
    public var fileName: String { "users-\(index)-of-\(count).sst" }
}
