// swift-tools-version: 6.0
import PackageDescription

// Release-mode kernels: bounds checks off in the compute layer only matters in -O builds; tests run in debug.
let package = Package(
    name: "Balcony",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "BalconyCore", targets: ["BalconyCore"]),
        .executable(name: "balcony", targets: ["balcony"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // Already in Hummingbird's graph; named because the server imports them directly.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3"])]
        ),
        .target(
            name: "BalconyCore",
            dependencies: ["CKernels", .target(name: "CBLAS", condition: .when(platforms: [.linux]))],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        // The HTTP layer of `balcony serve`; BalconyCore stays free of server dependencies.
        .target(
            name: "BalconyServer",
            dependencies: [
                "BalconyCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "balcony",
            dependencies: [
                "BalconyCore",
                "BalconyServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "BalconyCoreTests",
            dependencies: ["BalconyCore"],
            // Golden fixtures are read from the source tree via #filePath, not bundled.
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "BalconyCLITests", dependencies: ["BalconyCore", "balcony"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
