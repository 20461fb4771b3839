import HomefeedCore
import HomefeedStore
import Testing

@Suite("Keys and shards")
struct KeysTests {
    /// FNV-1a-64 is under every user key hash (`StoreKey.userHash`) and the config digest: it must never change.
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

    /// The user key hash is persisted in every key and decides shard membership (store format 2): pinned.
    @Test func userHashIsPinned() {
        let known: [(String, UInt64)] = [
            ("", 0xc381_7c01_6ba4_ff30),
            ("a", 0x5f29_c2aa_dd9b_8527),        // mix64(0xaf63dc4c8601ec8c = FNV-1a-64 of "a")
            ("user-42", 0xe28b_a372_823d_e243),
        ]
        for (s, h) in known {
            #expect(StoreKey.userHash(s) == h, "userHash(\"\(s)\")")
            #expect(Array(s.utf8).withUnsafeBytes { StoreKey.userHash($0) } == h, "pointer overload, \"\(s)\"")
            #expect(StoreKey.userHash(s) == StableHash.mix64(StableHash.fnv1a64(s)))
        }
    }

    /// Equal hash ranges of sequential ids hold near-equal user counts. Plain FNV-1a (store format 1) fails this
    /// badly — its top bits hardly move with an id's last bytes — which the test shows on the same ids.
    @Test(arguments: [
        ("u", 0..<20_000, 0.15),    // generated ids u0…u19999: measured 6.6 % (plain FNV-1a: 38 %)
        ("", 1..<944, 0.40),        // MovieLens 100K user ids 1…943, 59 a range: a uniform hash's σ is 13 % of that;
                                    // measured 21 % (plain FNV-1a: 239 %, 6 of 16 ranges empty)
        ("", 1..<6041, 0.15),       // MovieLens 1M user ids 1…6040: measured 7.5 % (plain FNV-1a: 85 %)
    ])
    func sequentialIdsSpreadEvenlyOverShards(prefix: String, ids: Range<Int>, bound: Double) throws {
        let shards = try (0..<16).map { try ShardSpec(index: $0, count: 16) }
        func worstDeviation(_ hash: (String) -> UInt64) -> Double {
            var counts = [Int](repeating: 0, count: shards.count)
            for i in ids {
                let h = hash(prefix + String(i))
                counts[shards.firstIndex { $0.contains(hash: h) }!] += 1
            }
            let mean = Double(ids.count) / Double(shards.count)
            return counts.map { abs(Double($0) - mean) / mean }.max()!
        }
        let keyed = worstDeviation(StoreKey.userHash)
        #expect(keyed <= bound, "userHash: a shard is \(Int((keyed * 100).rounded())) % off the mean")
        #expect(worstDeviation { StableHash.fnv1a64($0) } > 2 * bound, "plain FNV-1a was expected to fail this")
    }

    @Test func userKeyLayout() {
        for id in ["", "a", "foobar", "user-42", "Zoë 東京"] {
            let key = StoreKey.user(id)
            let h = StoreKey.userHash(id)
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
        // "a" hashes to 5f29c2aadd9b8527: the key is exactly U, those 8 bytes big-endian, then "a".
        #expect(StoreKey.user("a") == [0x55, 0x5f, 0x29, 0xc2, 0xaa, 0xdd, 0x9b, 0x85, 0x27, 0x61])
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
