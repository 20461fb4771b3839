import HomefeedKernels

// Compiled with -target-cpu haswell (Package.swift): every instruction of this module may be AVX2/FMA, so it must
// only run once HomefeedModels' CPU check (`KernelDispatch.avx2Supported`) has passed. Hence no `@inlinable`
// here (nothing of it may be inlined into portable code), no globals or types (their initializers and metadata
// accessors would be AVX2 code too): only functions, each a whole unit of work.

/// `topKScanPanels` compiled for AVX2: SIMD16 in two YMM registers, the 6-row block in 12 accumulators.
package func topKScanPanelsAVX2(rows: Int, group: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>, dim: Int, from: Int, to: Int, by: Int,
                                thresholds: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) -> Int {
    topKScanPanels(rows: rows, group: group, values: values, bias: bias, dim: dim, from: from, to: to, by: by,
                   thresholds: thresholds, tile: tile)
}
