// The top-K micro-kernels (see Retrieval.swift for the search around them), written once and compiled twice:
// HomefeedModels inlines them for portable x86-64 (SSE), HomefeedKernelsAVX2 instantiates the same source for
// AVX2 + FMA. Everything here is `@inlinable` so that each client compiles it with its own -target-cpu; nothing
// here is called through a symbol of this module.

@inlinable @inline(__always)
package func topKLoad16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
package func topKStore16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// The sign bits of a − t: clear in the lanes where a ≥ t (a − t is +0 when equal, never −0), set where a < t
/// and where a is −∞ padding while t is still −∞ (x86's default NaN is negative). Bit patterns, because the
/// generic SIMD comparisons (`.>=`, `any`) compile to a per-lane loop.
@inlinable @inline(__always)
package func topKReached(_ a: SIMD16<Float>, _ t: Float) -> SIMD16<Int32> {
    unsafeBitCast(a - SIMD16(repeating: t), to: SIMD16<Int32>.self)
}

/// True when some lane of an AND of `topKReached` masks has its sign bit clear (some score reached its threshold).
@inlinable @inline(__always)
package func topKAnyReached(_ m: SIMD16<Int32>) -> Bool {
    let h8 = m.lowHalf & m.highHalf, h4 = h8.lowHalf & h8.highHalf, h2 = h4.lowHalf & h4.highHalf
    return h2[0] & h2[1] >= 0
}

/// An R × 16 register block: R packed queries against one panel of 16 items.
@usableFromInline package protocol TopKPanelKernel {
    static var rows: Int { get }
    /// Writes the R × 16 scores to `tile` and returns true when any of them reaches its row's threshold `t[r]`
    /// (otherwise the scores never leave the registers).
    static func score(_ q: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, dim: Int,
                      thresholds t: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) -> Bool
}

// Every kernel computes each score the same way, s = ((b + x_0 q_0) + x_1 q_1) + … in dimension order, so a
// (query, item) pair gets a bit-identical score whatever the kernel, block, position or instruction set: IVF with
// every cell probed equals the exact path exactly, and the kernel choice never changes a result. `v * q + a`, not
// `addingProduct`: Swift never contracts it into an FMA (so the AVX2 build rounds as the SSE one does), and
// `addingProduct` is a per-lane libm call in the portable build.

/// 2 × 16: 8 SSE accumulators, the widest block the portable build keeps in its 16 registers.
@usableFromInline package enum TopKKernel2: TopKPanelKernel {
    @inlinable package static var rows: Int { 2 }
    /// a_r = b + Σ_j x_j q_rj (x_j: dimension j of the 16 panel items, q_rj: query r's dimension j), r = 0, 1.
    @inlinable @inline(__always)
    package static func score(_ q: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, dim: Int,
                              thresholds t: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) -> Bool {
        let b = topKLoad16(bias)
        var a0 = b, a1 = b
        var q = q, x = x
        for _ in 0..<dim {
            let v = topKLoad16(x)
            a0 = v * SIMD16(repeating: q[0]) + a0
            a1 = v * SIMD16(repeating: q[1]) + a1
            q += 2; x += 16
        }
        guard topKAnyReached(topKReached(a0, t[0]) & topKReached(a1, t[1])) else { return false }
        topKStore16(a0, tile); topKStore16(a1, tile + 16)
        return true
    }
}

/// 4 × 16 (IVF groups of 3–4 queries).
@usableFromInline package enum TopKKernel4: TopKPanelKernel {
    @inlinable package static var rows: Int { 4 }
    /// a_r = b + Σ_j x_j q_rj, r = 0..<4.
    @inlinable @inline(__always)
    package static func score(_ q: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, dim: Int,
                              thresholds t: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) -> Bool {
        let b = topKLoad16(bias)
        var a0 = b, a1 = b, a2 = b, a3 = b
        var q = q, x = x
        for _ in 0..<dim {
            let v = topKLoad16(x)
            a0 = v * SIMD16(repeating: q[0]) + a0
            a1 = v * SIMD16(repeating: q[1]) + a1
            a2 = v * SIMD16(repeating: q[2]) + a2
            a3 = v * SIMD16(repeating: q[3]) + a3
            q += 4; x += 16
        }
        let m = topKReached(a0, t[0]) & topKReached(a1, t[1]) & topKReached(a2, t[2]) & topKReached(a3, t[3])
        guard topKAnyReached(m) else { return false }
        topKStore16(a0, tile); topKStore16(a1, tile + 16); topKStore16(a2, tile + 32); topKStore16(a3, tile + 48)
        return true
    }
}

/// 6 × 16: 12 AVX accumulators (the AVX2 register file holds them with the panel row and a broadcast; SSE spills).
@usableFromInline package enum TopKKernel6: TopKPanelKernel {
    @inlinable package static var rows: Int { 6 }
    /// a_r = b + Σ_j x_j q_rj, r = 0..<6.
    @inlinable @inline(__always)
    package static func score(_ q: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, dim: Int,
                              thresholds t: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) -> Bool {
        let b = topKLoad16(bias)
        var a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b
        var q = q, x = x
        for _ in 0..<dim {
            let v = topKLoad16(x)
            a0 = v * SIMD16(repeating: q[0]) + a0
            a1 = v * SIMD16(repeating: q[1]) + a1
            a2 = v * SIMD16(repeating: q[2]) + a2
            a3 = v * SIMD16(repeating: q[3]) + a3
            a4 = v * SIMD16(repeating: q[4]) + a4
            a5 = v * SIMD16(repeating: q[5]) + a5
            q += 6; x += 16
        }
        let m = topKReached(a0, t[0]) & topKReached(a1, t[1]) & topKReached(a2, t[2])
            & topKReached(a3, t[3]) & topKReached(a4, t[4]) & topKReached(a5, t[5])
        guard topKAnyReached(m) else { return false }
        topKStore16(a0, tile); topKStore16(a1, tile + 16); topKStore16(a2, tile + 32)
        topKStore16(a3, tile + 48); topKStore16(a4, tile + 64); topKStore16(a5, tile + 80)
        return true
    }
}

/// One packed group of `rows` (2, 4 or 6) queries against panels from, from + by, … (below `to`) of a panel
/// array (panel p: 16 items × dim at values + p·dim·16, their biases at bias + p·16): returns the first panel
/// with a score reaching its row's threshold, its scores in `tile`, or a value ≥ `to` when there is none. The
/// caller takes the hits and resumes after it (the thresholds may have risen: they are read again per panel).
/// The unit the AVX2 build dispatches: one call runs a whole block of panels, so the dispatch costs nothing.
@inlinable @inline(__always)
package func topKScanPanels(rows: Int, group: UnsafePointer<Float>, values: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>, dim: Int, from: Int, to: Int, by: Int,
                            thresholds: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) -> Int {
    switch rows {
    case 6: return topKScanPanels(TopKKernel6.self, group, values, bias, dim, from, to, by, thresholds, tile)
    case 4: return topKScanPanels(TopKKernel4.self, group, values, bias, dim, from, to, by, thresholds, tile)
    default: return topKScanPanels(TopKKernel2.self, group, values, bias, dim, from, to, by, thresholds, tile)
    }
}

@inlinable @inline(__always)
package func topKScanPanels<K: TopKPanelKernel>(_: K.Type, _ group: UnsafePointer<Float>, _ values: UnsafePointer<Float>,
                                                _ bias: UnsafePointer<Float>, _ dim: Int, _ from: Int, _ to: Int, _ by: Int,
                                                _ thresholds: UnsafePointer<Float>, _ tile: UnsafeMutablePointer<Float>) -> Int {
    var p = from
    while p < to {
        if K.score(group, values + p * dim * 16, bias + p * 16, dim: dim, thresholds: thresholds, tile: tile) { return p }
        p += by
    }
    return p
}
