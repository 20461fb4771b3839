// swift-tools-version:6.0
// Homefeed: offline precompute (homefeed-batch) + online lookup (homefeed-lookupd) of homepage video lists.
// No Swift package dependencies by design; the one system library is Debian's librocksdb-dev.
import PackageDescription

// Builds are portable x86-64. The top-K kernels are compiled a second time for AVX2 + FMA (HomefeedKernelsAVX2)
// and HomefeedModels picks them at run time when the CPU has them (docs/ARCHITECTURE.md, "CPU dispatch").
#if arch(x86_64)
let avx2Flags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let avx2Flags: [SwiftSetting] = []  // never dispatched to off x86
#endif
// Opt-in: HOMEFEED_TARGET_CPU=haswell swift build -c release compiles the other numeric code (ALS, two-tower,
// data loading) for that CPU too; the binary then needs it (see docs/BENCHMARKS.md for what it buys).
let targetCPU = Context.environment["HOMEFEED_TARGET_CPU"]
let kernelFlags: [SwiftSetting] = targetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []
// Models, evaluation and the pipeline are optimized in debug builds too: unoptimized numeric Swift is ~50× slower,
// and the tests train, tune and rank with real (small) models, also through the commands.
let optimizedInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Homefeed",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "homefeed-batch", targets: ["homefeed-batch"]),
        .executable(name: "homefeed-lookupd", targets: ["homefeed-lookupd"]),
    ],
    targets: [
        // System and C shims.
        .systemLibrary(name: "CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),
        .target(name: "CSystem"),

        // Libraries, bottom to top.
        .target(name: "HomefeedCore", dependencies: ["CSystem"]),
        .target(name: "HomefeedData", dependencies: ["HomefeedCore"], swiftSettings: kernelFlags),
        .target(name: "HomefeedSynthetic", dependencies: ["HomefeedCore"]),
        .target(name: "HomefeedStore", dependencies: ["HomefeedCore", "CRocksDB"]),
        // The top-K micro-kernels, one source (all @inlinable) compiled into HomefeedModels (portable) and into
        // HomefeedKernelsAVX2 (haswell), which HomefeedModels calls only after a cpuid check.
        .target(name: "HomefeedKernels", swiftSettings: optimizedInDebug),
        .target(name: "HomefeedKernelsAVX2", dependencies: ["HomefeedKernels"], swiftSettings: avx2Flags + optimizedInDebug),
        .target(name: "HomefeedModels", dependencies: ["HomefeedCore", "CSystem", "HomefeedKernels", "HomefeedKernelsAVX2"],
                swiftSettings: kernelFlags + optimizedInDebug),
        .target(name: "HomefeedEval", dependencies: ["HomefeedCore", "HomefeedData", "HomefeedStore"],
                swiftSettings: optimizedInDebug),
        .target(name: "HomefeedPipeline",
                dependencies: ["HomefeedCore", "HomefeedData", "HomefeedStore", "HomefeedModels", "HomefeedEval"],
                swiftSettings: kernelFlags + optimizedInDebug),
        .target(name: "HomefeedHTTP", dependencies: ["CSystem"]),
        .target(name: "HomefeedLookup", dependencies: ["HomefeedCore", "HomefeedStore", "HomefeedHTTP"]),

        // Fixtures shared by the test suites (real CSV files in temp dirs).
        .target(name: "HomefeedTestSupport"),

        // Commands.
        .executableTarget(name: "homefeed-batch",
                          dependencies: ["HomefeedCore", "HomefeedData", "HomefeedSynthetic", "HomefeedStore", "HomefeedModels",
                                         "HomefeedEval", "HomefeedPipeline"]),
        .executableTarget(name: "homefeed-lookupd", dependencies: ["HomefeedCore", "HomefeedLookup"]),
        .executableTarget(name: "homefeed-bench",
                          dependencies: ["HomefeedCore", "HomefeedData", "HomefeedStore", "HomefeedPipeline",
                                         "HomefeedHTTP", "HomefeedLookup", "HomefeedModels"]),

        // Tests: one suite per library, all with real files, real RocksDB and real loopback sockets.
        .testTarget(name: "HomefeedCoreTests", dependencies: ["HomefeedCore"]),
        .testTarget(name: "HomefeedDataTests", dependencies: ["HomefeedData", "HomefeedCore"]),
        .testTarget(name: "HomefeedSyntheticTests", dependencies: ["HomefeedSynthetic", "HomefeedData", "HomefeedCore"]),
        .testTarget(name: "HomefeedModelsTests", dependencies: ["HomefeedModels", "HomefeedCore"]),
        .testTarget(name: "HomefeedEvalTests",
                    dependencies: ["HomefeedEval", "HomefeedData", "HomefeedStore", "HomefeedSynthetic", "HomefeedTestSupport",
                                   "HomefeedCore"]),
        .testTarget(name: "HomefeedStoreTests", dependencies: ["HomefeedStore", "HomefeedCore"]),
        .testTarget(name: "HomefeedPipelineTests",
                    dependencies: ["HomefeedPipeline", "HomefeedData", "HomefeedSynthetic", "HomefeedStore", "HomefeedModels",
                                   "HomefeedEval", "HomefeedTestSupport", "HomefeedCore"]),
        .testTarget(name: "HomefeedHTTPTests", dependencies: ["HomefeedHTTP"]),
        // Runs the built commands as a user would (real processes, real files, real signals).
        .testTarget(name: "HomefeedCLITests", dependencies: ["HomefeedTestSupport", "HomefeedHTTP"]),
        .testTarget(name: "HomefeedLookupTests",
                    dependencies: ["HomefeedLookup", "HomefeedPipeline", "HomefeedData", "HomefeedSynthetic", "HomefeedStore",
                                   "HomefeedHTTP", "HomefeedTestSupport", "HomefeedCore"]),
    ],
    swiftLanguageModes: [.v6]
)
