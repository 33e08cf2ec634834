// swift-tools-version:6.2
// PostLens: a CPU-first Qwen3-VL engine, server and analysis tools in Swift.
//
// Module graph: each of our modules and the modules of ours it imports (tests/build/test_module_graph.py checks these
// lines against the targets below; docs/architecture.md draws the paths through them):
//   postlens ─► JSON, Engine, Qwen3VL, SafeTensors, Tokenizer, Imaging, Kernels, Hub, Server, Analysis, Store, PostgresStore
//   Server ─► JSON, Engine, Qwen3VL, Imaging, Kernels, Store, WebUI, Analysis, RemoteImages
//   Analysis ─► JSON, Engine, Qwen3VL, Imaging, RemoteImages, Store
//   WebUI ─► Store
//   PostgresStore ─► JSON, Store
//   Store ─► JSON
//   Engine ─► JSON, Qwen3VL, Kernels, Tensors
//   Qwen3VL ─► JSON, Tensors, Kernels, SafeTensors, Tokenizer, Imaging
//   Kernels ─► Tensors, CBLAS, CKernels, KernelsSIMD, KernelsAVX512
//   KernelsAVX512 ─► KernelsSIMD512
//   SafeTensors ─► JSON, Tensors
//   Tokenizer ─► JSON
//   Imaging ─► CImageCodecs
//   Hub ─►
//   RemoteImages ─►
//   TestSupport ─► Analysis, Engine, JSON, Qwen3VL
// CBLAS is OpenBLAS, CImageCodecs libjpeg/libpng/libwebp/libgif, CKernels the C of cpuid and the AMX tiles, KernelsSIMD
// and KernelsSIMD512 the SIMD words (built for Haswell and Ice Lake server); TestSupport serves the test targets only.
import Foundation
import PackageDescription

/// Build-time CPU selection. By default the compute targets are built for Haswell-class x86-64
/// (AVX2 + FMA + F16C) and get the `POSTLENS_AVX2` compilation condition; `POSTLENS_PORTABLE=1`
/// builds the portable SIMD path that runs on any x86-64 or arm64 machine.
let environment = ProcessInfo.processInfo.environment
let portable = environment["POSTLENS_PORTABLE"] == "1"
#if arch(x86_64)
let useAVX2 = !portable
#else
let useAVX2 = false
#endif

/// Compute targets are optimized even in debug builds: `swift test` builds debug, and unoptimized
/// SIMD code runs ~75x slower. `-enable-testing` is still passed in debug, so `@testable import` works.

var computeSettings: [SwiftSetting] = [
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]
if useAVX2 {
    computeSettings.append(.unsafeFlags(["-target-cpu", "haswell"]))
    computeSettings.append(.define("POSTLENS_AVX2"))
}

/// The AVX-512 kernels are a module of their own, built for Ice Lake server (AVX-512 F/BW/VL/DQ + VNNI, a
/// subset of every AVX-512 CPU since: Sapphire Rapids, Zen 4/5) in every x86-64 build; `KernelDispatch`
/// calls them only on a CPU that has those features.
let avx512Settings: [SwiftSetting] = [
    .unsafeFlags(["-O"], .when(configuration: .debug)),
    .unsafeFlags(["-target-cpu", "icelake-server"]),
]

let package = Package(
    name: "PostLens",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "postlens", targets: ["postlens"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .target(
            name: "CImageCodecs",
            path: "Sources/CImageCodecs",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [
                .linkedLibrary("jpeg"), .linkedLibrary("png16"), .linkedLibrary("webp"),
                .linkedLibrary("webpdemux"), .linkedLibrary("gif"),
            ]
        ),

        // MARK: Core
        // JSON sits below everything that reads or writes JSON; optimized in debug too (tokenizer.json is 11 MB).
        .target(name: "JSON", swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "Tensors", swiftSettings: computeSettings),
        // CPU feature detection (cpuid, xgetbv, arch_prctl) and the AMX tile kernels: C because Swift cannot
        // issue those instructions; AMX code carries function-level target attributes.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "KernelsSIMD512", swiftSettings: avx512Settings),
        .target(name: "KernelsAVX512", dependencies: ["KernelsSIMD512"], swiftSettings: avx512Settings),
        .target(name: "KernelsSIMD", swiftSettings: computeSettings),
        .target(name: "Kernels", dependencies: ["Tensors", "CBLAS", "CKernels", "KernelsSIMD", "KernelsAVX512",
                                               .product(name: "Logging", package: "swift-log")], swiftSettings: computeSettings),
        .target(name: "SafeTensors", dependencies: ["JSON", "Tensors"], swiftSettings: computeSettings),
        .target(name: "Tokenizer", dependencies: ["JSON"], swiftSettings: computeSettings),
        .target(name: "Imaging", dependencies: ["CImageCodecs"], swiftSettings: computeSettings),
        .target(
            name: "Qwen3VL",
            dependencies: [
                "JSON", "Tensors", "Kernels", "SafeTensors", "Tokenizer", "Imaging",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: computeSettings
        ),
        .target(
            name: "Engine",
            dependencies: ["JSON", "Qwen3VL", "Kernels", "Tensors", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: computeSettings
        ),
        .target(
            name: "Hub",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        // MARK: Fetching images on a client's behalf (server and `postlens analyze`), guarded against SSRF
        .target(
            name: "RemoteImages",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        // MARK: Web UI: conversation store (SQLite via GRDB) and the page with its /api routes
        .target(
            name: "Store",
            dependencies: [
                "JSON",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "WebUI",
            dependencies: ["Store", .product(name: "Hummingbird", package: "hummingbird")],
            resources: [.copy("Assets")]
        ),
        // The shared backend: conversations and batch jobs in PostgreSQL (`--database postgres://…`).
        .target(
            name: "PostgresStore",
            dependencies: ["JSON", "Store", .product(name: "PostgresNIO", package: "postgres-nio")]
        ),
        .target(
            name: "Analysis",
            dependencies: [
                "JSON", "Engine", "Qwen3VL", "Imaging", "RemoteImages", "Store", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // MARK: Server
        .target(
            name: "Server",
            dependencies: [
                "JSON", "Engine", "Qwen3VL", "Imaging", "Kernels", "Store", "WebUI", "Analysis", "RemoteImages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: Command line
        .executableTarget(
            name: "postlens",
            dependencies: [
                "JSON", "Engine", "Qwen3VL", "SafeTensors", "Tokenizer", "Imaging", "Kernels", "Hub", "Server", "Analysis",
                "Store", "PostgresStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        // Stand-ins shared by the test targets (FakeEngine behind the ChatEngine protocol, example answers): a module the
        // product never links.
        .target(name: "TestSupport", dependencies: ["Analysis", "Engine", "JSON", "Qwen3VL"], path: "Tests/Support"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "KernelsSIMD", "Tensors"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "Tensors"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "JSON"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "Qwen3VL"]),
        .testTarget(name: "Qwen3VLTests", dependencies: ["Qwen3VL", "Kernels", "Tensors", "Tokenizer", "Imaging", "SafeTensors"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "JSON", "Qwen3VL", "Imaging", "Tokenizer"]),
        .testTarget(name: "CLITests", dependencies: ["postlens"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "JSON", "Engine", "Qwen3VL", "Imaging", "TestSupport", "postlens"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "JSON", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "PostgresStoreTests", dependencies: ["PostgresStore", "Store", "JSON", "Analysis", "TestSupport"]),
        .testTarget(
            name: "WebUITests",
            dependencies: ["WebUI", "Store", "JSON", .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
        .testTarget(name: "HubTests", dependencies: ["Hub"], exclude: ["fake_hub.py"]),
        .testTarget(
            name: "ServerTests",
            dependencies: ["Server", "Analysis", "JSON", "Engine", "Qwen3VL", "Kernels", "Imaging", "Store", "RemoteImages", "TestSupport",
                           .product(name: "HummingbirdTesting", package: "hummingbird")],
            exclude: ["image_host.py"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
