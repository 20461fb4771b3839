import CSystem
import Foundation

/// Which compiled copy of the numeric micro-kernels runs. Builds are portable x86-64; the top-K kernels are also
/// compiled for AVX2 + FMA (target HomefeedKernelsAVX2), which the searches call only when the CPU has both. The
/// choice changes speed, never a result (the kernels round identically; tests compare both paths).
public enum KernelDispatch {
    /// The CPU has AVX2 and FMA and the OS saves their registers (cpuid + xgetbv, once per process).
    public static let avx2Supported = csys_cpu_has_avx2_fma() != 0

    /// Run the portable kernels even on an AVX2 CPU (tests, benchmarks): true from the start when the environment
    /// has HOMEFEED_KERNELS=portable. Set it before searching, never while a search runs.
    nonisolated(unsafe) public static var forcePortable = ProcessInfo.processInfo.environment["HOMEFEED_KERNELS"] == "portable"

    /// Whether searches run the AVX2 kernels now.
    public static var useAVX2: Bool { avx2Supported && !forcePortable }

    /// "avx2" or "portable" (for benchmark and log lines).
    public static var name: String { useAVX2 ? "avx2" : "portable" }
}
