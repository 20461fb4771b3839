/// FNV-1a 64: a stable hash for everything persisted or shared between processes (store keys, shard ranges,
/// config digests). Swift's `Hasher` is seeded per process and must never be used for those.
public enum StableHash {
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let prime: UInt64 = 0x0000_0100_0000_01b3

    @inlinable
    public static func fnv1a64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = offsetBasis) -> UInt64 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* prime }
        return h
    }

    @inlinable
    public static func fnv1a64<C: Collection>(_ bytes: C, seed: UInt64 = offsetBasis) -> UInt64 where C.Element == UInt8 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* prime }
        return h
    }

    public static func fnv1a64(_ string: String, seed: UInt64 = offsetBasis) -> UInt64 {
        var s = string
        return s.withUTF8 { fnv1a64(UnsafeRawBufferPointer($0), seed: seed) }
    }

    /// SplitMix64 finalizer: a cheap, well-mixed 64-bit integer hash (seeding PRNG streams, id buckets).
    @inlinable
    public static func mix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// A small, fast, seedable PRNG (xoshiro256**) so every random choice in Homefeed is reproducible.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var x = seed
        func next() -> UInt64 { x = x &+ 0x9e37_79b9_7f4a_7c15; return StableHash.mix64(x) }
        s0 = next(); s1 = next(); s2 = next(); s3 = next()
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    @inlinable
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in 0..<n (n > 0), Lemire's multiply-shift (tiny bias is irrelevant here).
    @inlinable
    public mutating func nextInt(_ n: Int) -> Int { Int((UInt128(next()) &* UInt128(UInt64(n))) >> 64) }
}
