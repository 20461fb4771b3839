import HomefeedCore
import HomefeedStore
import Testing

@Suite("Keys and shards")
struct KeysTests {
    /// FNV-1a-64 is persisted in every user key and decides shard membership: it must never change.
    @Test func fnv1a64KnownValues() {
        let known: [(String, UInt64)] = [
            ("", 0xcbf2_9ce4_8422_2325),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ]
        for (s, h) in known {
            #expect(StableHash.fnv1a64(s) == h, "fnv1a64(\"\(s)\")")
            #expect(StableHash.fnv1a64(Array(s.utf8)) == h, "collection overload, \"\(s)\"")
            let viaPointer = Array(s.utf8).withUnsafeBytes { StableHash.fnv1a64($0) }
            #expect(viaPointer == h, "pointer overload, \"\(s)\"")
        }
    }

    @Test func userKeyLayout() {
        for id in ["", "a", "foobar", "user-42", "Zoë 東京"] {
            let key = StoreKey.user(id)
            let h = StableHash.fnv1a64(id)
            let expected: [UInt8] = [UInt8(ascii: "U")] + (0..<8).map { UInt8(truncatingIfNeeded: h >> (56 - 8 * UInt64($0))) }
                + Array(id.utf8)
            #expect(key == expected, "key of '\(id)'")
            let back = key.withUnsafeBytes { String(decoding: StoreKey.userID(fromKey: $0), as: UTF8.self) }
            #expect(back == id)
            // The scratch-buffer form gives the same bytes and reuses the buffer.
            var scratch: [UInt8] = [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]
            var s = id
            s.withUTF8 { StoreKey.user(UnsafeRawBufferPointer($0), into: &scratch) }
            #expect(scratch == expected)
        }
        // "a" hashes to af63dc4c8601ec8c: the key is exactly U, those 8 bytes big-endian, then "a".
        #expect(StoreKey.user("a") == [0x55, 0xaf, 0x63, 0xdc, 0x4c, 0x86, 0x01, 0xec, 0x8c, 0x61])
    }

    @Test func otherKeysAndKindOrder() {
        #expect(StoreKey.runMetadata == Array("Mmeta".utf8))
        #expect(StoreKey.popular(.global) == Array("PG".utf8))
        #expect(StoreKey.popular(.region, "US") == Array("PRUS".utf8))
        #expect(StoreKey.popular(.language, "en") == Array("PLen".utf8))
        #expect(StoreKey.popular(.segment, "s7") == Array("PSs7".utf8))
        #expect(StoreKey.video(0) == [UInt8(ascii: "V"), 0, 0, 0, 0])
        #expect(StoreKey.video(0x0102_0304) == [UInt8(ascii: "V"), 1, 2, 3, 4])
        // Video keys sort in index order; the kinds sort M < P < U < V.
        #expect(StoreKey.video(255).lexicographicallyPrecedes(StoreKey.video(256)))
        let kinds = [StoreKey.runMetadata, StoreKey.popular(.segment, "zz"), StoreKey.user("x"), StoreKey.video(0)]
        for i in 0..<(kinds.count - 1) { #expect(kinds[i].lexicographicallyPrecedes(kinds[i + 1])) }
    }

    @Test(arguments: [1, 3, 7])
    func shardRangesPartitionTheHashSpace(count: Int) throws {
        let shards = try (0..<count).map { try ShardSpec(index: $0, count: count) }
        #expect(shards.first!.lowerHash == 0)
        #expect(shards.last!.upperHash == UInt64.max)
        for s in shards { #expect(s.lowerHash <= s.upperHash) }
        for i in 0..<(count - 1) {
            #expect(shards[i + 1].lowerHash == shards[i].upperHash + 1, "shards \(i) and \(i + 1) must touch")
            #expect(!shards[i].contains(hash: shards[i + 1].lowerHash))
            #expect(!shards[i + 1].contains(hash: shards[i].upperHash))
        }
        // Every hash belongs to exactly one shard: the bounds and random values.
        var rng = SeededRandom(seed: UInt64(count))
        var probes: [UInt64] = [0, 1, UInt64.max, UInt64.max - 1, 1 << 63]
        for s in shards { probes += [s.lowerHash, s.upperHash] }
        for _ in 0..<2000 { probes.append(rng.next()) }
        for h in probes { #expect(shards.filter { $0.contains(hash: h) }.count == 1, "hash \(h)") }
        // The ranges are (close to) equal: sizes differ by at most 1.
        let sizes = shards.map { UInt128($0.upperHash - $0.lowerHash) + 1 }
        #expect(sizes.reduce(0, +) == UInt128(1) << 64)
        #expect(sizes.max()! - sizes.min()! <= 1)
        if count == 1 { #expect(shards[0] == ShardSpec.all) }
    }

    @Test func shardParsing() throws {
        let s = try ShardSpec(parsing: "2/5")
        #expect(s.index == 2 && s.count == 5)
        #expect(s.description == "2/5")
        #expect(s.fileName == "users-2-of-5.sst")
        #expect(try ShardSpec(parsing: "0/1") == .all)
        expectHomefeedError("5/5") { try ShardSpec(parsing: "5/5") }
        expectHomefeedError("a/b") { try ShardSpec(parsing: "a/b") }
        for bad in ["", "2", "2/", "/5", "2//5", "2/5/", "/2/5", "1/2/3", "-1/3", "1/0", "0/65537", " 1/2"] {
            expectHomefeedError(bad.isEmpty ? "''" : bad) {
                try ShardSpec(parsing: bad)
            }
        }
        expectHomefeedError("3/2") { try ShardSpec(index: 3, count: 2) }
        #expect(try ShardSpec(parsing: "65535/65536").upperHash == UInt64.max)
    }
}
