import Glibc
import HomefeedCore

/// Walker/Vose alias table: O(1) sampling of `items` in proportion to their weights. Each slot packs its
/// threshold, item and alias item into 16 bytes, so a draw touches one cache line.
struct AliasTable: Sendable {
    struct Slot: Sendable {
        var prob: Double
        var item: Int32
        var aliasItem: Int32
    }
    private var slots: [Slot] = []

    var isEmpty: Bool { slots.isEmpty }
    var count: Int { slots.count }

    init() {}

    /// Items with weight ≤ 0 (or not finite) are dropped; all-zero weights give an empty table.
    init(items inItems: [Int32], weights inWeights: [Double]) {
        precondition(inItems.count == inWeights.count)
        var its: [Int32] = [], ws: [Double] = []
        its.reserveCapacity(inItems.count); ws.reserveCapacity(inItems.count)
        var total = 0.0
        for (i, w) in zip(inItems, inWeights) where w > 0 && w.isFinite {
            its.append(i); ws.append(w); total += w
        }
        let n = its.count
        if n == 0 { return }
        var prob = [Double](repeating: 1, count: n)
        var alias = [Int32](repeating: 0, count: n)
        var scaled = ws.map { $0 * Double(n) / total }
        var small: [Int32] = [], large: [Int32] = []
        for i in 0..<n { if scaled[i] < 1 { small.append(Int32(i)) } else { large.append(Int32(i)) } }
        while let s = small.last, let l = large.last {
            small.removeLast()
            prob[Int(s)] = scaled[Int(s)]
            alias[Int(s)] = l
            scaled[Int(l)] = (scaled[Int(l)] + scaled[Int(s)]) - 1
            if scaled[Int(l)] < 1 { large.removeLast(); small.append(l) }
        }
        for l in large { prob[Int(l)] = 1; alias[Int(l)] = l }
        for s in small { prob[Int(s)] = 1; alias[Int(s)] = s }   // rounding leftovers
        slots = (0..<n).map { Slot(prob: prob[$0], item: its[$0], aliasItem: its[Int(alias[$0])]) }
    }

    init(weights: [Double]) {
        self.init(items: (0..<weights.count).map { Int32($0) }, weights: weights)
    }

    /// A random item (the table must not be empty).
    @inline(__always)
    func sample(_ rng: inout SeededRandom) -> Int32 {
        slots.withUnsafeBufferPointer { s in
            let slot = s[rng.nextInt(s.count)]
            return rng.nextDouble() < slot.prob ? slot.item : slot.aliasItem
        }
    }
}

extension SeededRandom {
    /// Standard normal (Box–Muller, one value per call).
    @inline(__always)
    mutating func normal() -> Double {
        let u1 = 1 - nextDouble()     // (0, 1]
        let u2 = nextDouble()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    @inline(__always)
    mutating func chance(_ p: Double) -> Bool { nextDouble() < p }

    /// Uniform integer in lo...hi.
    @inline(__always)
    mutating func between(_ lo: Int, _ hi: Int) -> Int { lo + nextInt(hi - lo + 1) }

    /// Index drawn from a cumulative weight table (last entry = total).
    @inline(__always)
    mutating func pick(cumulative c: UnsafeBufferPointer<Double>) -> Int {
        let x = nextDouble() * c[c.count - 1]
        var lo = 0, hi = c.count - 1
        while lo < hi {
            let mid = (lo + hi) >> 1
            if c[mid] > x { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// Fisher–Yates shuffle of 0..<n.
    mutating func permutation(_ n: Int) -> [Int32] {
        var a = (0..<n).map { Int32($0) }
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) { a.swapAt(i, nextInt(i + 1)) }
        }
        return a
    }
}

@inline(__always) func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

/// Stream seeds: a distinct, well-mixed seed per (seed, purpose, index).
@inline(__always)
func streamSeed(_ seed: UInt64, _ purpose: UInt64, _ index: UInt64) -> UInt64 {
    StableHash.mix64(StableHash.mix64(seed ^ (purpose &* 0x9E37_79B9_7F4A_7C15)) &+ index)
}
