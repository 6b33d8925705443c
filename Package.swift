// swift-tools-version:6.1
import PackageDescription

// Strict concurrency is the Swift 6 language mode default; the flags below keep
// the codecs honest about their own rules as well.
//
// Tools/fuzz builds with WMQ_FUZZ set: the project's parser modules then get libFuzzer's
// coverage instrumentation. Dependencies are built with AddressSanitizer only, since
// their edges would slow every run down without guiding the fuzzer into our parsers.
// WMQ_FUZZ=codecs instruments only the codecs (ByteStream, MQTTWire, WebSocketWire): libFuzzer
// scans every counter of the binary after each run, so the codec targets, whose runs are a few
// microseconds, run in a build of their own with a quarter of the counters. WMQ_FUZZ=all (or 1)
// instruments every parser module, for the other targets.
let fuzzMode = Context.environment["WMQ_FUZZ"]
let coverageFlags: [SwiftSetting] = [
    .unsafeFlags(["-sanitize=address", "-sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp"]),
]
/// The codec build leaves out trace-cmp and the run-time exclusivity checks: both cost the
/// codec targets' short runs more than they gave (measured in docs/fuzzing.md, "Keeping the
/// codec runs fast"); the tests, a debug build with the checks on, replay every corpus file.
let codecCoverageFlags: [SwiftSetting] = fuzzMode == "codecs"
    ? [.unsafeFlags(["-sanitize=address", "-sanitize-coverage=edge,inline-8bit-counters,pc-table",
                     "-enforce-exclusivity=unchecked"])]
    : coverageFlags
let frontEndSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]
/// The decoding pipeline's release builds leave out the run-time exclusivity checks (the
/// compile-time ones stay; debug and fuzz builds keep both): its state lives in classes, and the
/// checks were about a twentieth of wmq-decode's time (docs/fuzzing.md).
let pipelineSettings: [SwiftSetting] = fuzzMode == nil
    ? [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))] : []
/// The codecs' settings: coverage-instrumented in every fuzz build.
let codecSettings = frontEndSettings + (fuzzMode == nil ? [] : codecCoverageFlags)
/// The other parsers' settings: coverage-instrumented in the fuzz build of all targets.
let strictSettings = frontEndSettings + (fuzzMode == nil || fuzzMode == "codecs" ? [] : coverageFlags)

let package = Package(
    name: "wmq",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MQTTWire", targets: ["MQTTWire"]),
        .library(name: "WebSocketWire", targets: ["WebSocketWire"]),
        .library(name: "Dialects", targets: ["Dialects"]),
        .executable(name: "wmq-decode", targets: ["wmq-decode"]),
        .executable(name: "wmq-bench", targets: ["wmq-bench"]),
        .executable(name: "wmq-fuzz", targets: ["wmq-fuzz"]),
        .executable(name: "wmq-client", targets: ["wmq-client"]),
        .executable(name: "wmq-mock", targets: ["wmq-mock"]),
        .executable(name: "wmq-replay", targets: ["wmq-replay"]),
        .executable(name: "wmq-capture", targets: ["wmq-capture"]),
        .executable(name: "wmq-bench-client", targets: ["wmq-bench-client"]),
        .executable(name: "wmq-bench-mock", targets: ["wmq-bench-mock"]),
        .library(name: "WorksClient", targets: ["WorksClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        // System libraries, each through its own module map.
        .systemLibrary(
            name: "CPcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),

        // Codecs: pure, synchronous, no I/O.
        .target(
            name: "ByteStream",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: codecSettings + pipelineSettings
        ),
        .target(
            name: "MQTTWire",
            dependencies: ["ByteStream", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: codecSettings + pipelineSettings
        ),
        .target(
            name: "WebSocketWire",
            dependencies: [
                "ByteStream",
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: codecSettings + pipelineSettings
        ),
        .target(
            name: "Dialects",
            dependencies: [
                "ByteStream", "MQTTWire",
                "WebSocketWire",
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings + pipelineSettings
        ),

        // Pipelines.
        .target(
            name: "Capture",
            dependencies: ["CPcap", "ByteStream", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings + pipelineSettings
        ),
        .target(
            name: "Dissector",
            dependencies: [
                "ByteStream", "Capture", "MQTTWire", "WebSocketWire", "Dialects", "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: strictSettings + pipelineSettings
        ),

        // Live: the client under test.
        .target(
            name: "WorksClient",
            dependencies: [
                "MQTTWire", "WebSocketWire", "Dialects", "Capture", "Dissector", "NetworkErrors", "LiveWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: frontEndSettings
        ),

        // The mock server: the files it reads (scenarios, TOML configuration; no NIO, so the fuzz
        // harnesses take them cheaply), the broker core (a state machine), transports, Works mode.
        .target(
            name: "MockFiles",
            dependencies: ["MQTTWire", "Dialects", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        // The broker's rules as a value-type state machine (no I/O): the mock's core, fuzzed alone.
        .target(
            name: "Broker",
            dependencies: ["MQTTWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        // Recorded sessions: what replay and the mock's --serve consume, from any capture or scenario.
        .target(
            name: "Recordings",
            dependencies: [
                "Capture", "Dissector", "Dialects", "MQTTWire", "MockFiles",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: frontEndSettings
        ),
        // Replay: recorded sessions played live against a server (drive), to a client (serve), or both (check).
        .target(
            name: "Replay",
            dependencies: [
                "LiveWebSocket", "Recordings", "Capture", "MQTTWire", "WebSocketWire", "Dialects", "WorksClient", "NetworkErrors", "ChatClients",
                "LiveClock",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: frontEndSettings
        ),
        .target(
            name: "MockServer",
            dependencies: [
                "LiveWebSocket", "MQTTWire", "WebSocketWire", "Dialects", "MockFiles", "MockAgents", "Capture", "Dissector", "Recordings",
                "Broker", "WorksClient", "LiveClock",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Page")],
            swiftSettings: frontEndSettings
        ),

        // Fuzzing: harness bodies and the corpus generator (a library, so tests run the
        // committed corpora through them without any fuzzer), and the libFuzzer driver shim.
        // The time the live servers go by: the machine's, or one a test moves.
        .target(
            name: "LiveClock",
            dependencies: [.product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        // The mock's simulated participants: pure state machines that the live mock schedules
        // and the fuzzer drives (the chat-topic tree's AI core).
        // wmq-capture proxy's WebSocket proxy: clients in, one upstream each on WorksClient's
        // transport, the recorder and the live view as taps.
        .target(
            name: "CaptureProxy",
            dependencies: [
                "LiveWebSocket", "WorksClient", "Dissector", "Dialects",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "MockAgents",
            dependencies: ["Dialects", "MQTTWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Fuzzing",
            dependencies: [
                "ByteStream", "MQTTWire", "WebSocketWire", "Dialects", "Capture", "Dissector", "MockFiles", "MockAgents", "Broker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // NIO's frame decoder runs in an EmbeddedChannel as the frame parser's oracle.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: frontEndSettings
        ),
        .target(name: "CFuzzerDriver"),

        // The live WebSocket server pieces every live endpoint shares (the JSON chat sockets'
        // listener, plain HTTP answers to requests that are no upgrade); the passive parser in
        // WebSocketWire stays the reader of captures.
        .target(
            name: "LiveWebSocket",
            dependencies: [
                "WebSocketWire", "ByteStream",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: frontEndSettings
        ),
        // Clients of the other chat protocols, on the live client's transport (OneBot v11).
        .target(
            name: "ChatClients",
            dependencies: [
                "WorksClient", "Dialects", "WebSocketWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: frontEndSettings
        ),
        // Network failures in plain words (listening, connecting), for the live modules and the tools.
        .target(
            name: "NetworkErrors",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: frontEndSettings
        ),
        // Front ends.
        .target(
            name: "CommandLineSupport",
            dependencies: ["ByteStream", "LiveWebSocket", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: frontEndSettings
        ),
        .executableTarget(
            name: "wmq-decode",
            dependencies: [
                "ByteStream", "Capture", "Dialects", "Dissector", "CommandLineSupport", "MQTTWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: frontEndSettings + pipelineSettings
        ),
        .executableTarget(
            name: "wmq-fuzz",
            dependencies: [
                "Fuzzing", "CFuzzerDriver", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: frontEndSettings
        ),
        // The client side of the WebSocket conformance run (Tools/autobahn --client).
        .executableTarget(
            name: "wmq-autobahn-client",
            dependencies: [
                "WorksClient", "LiveWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Tools/AutobahnClient",
            swiftSettings: frontEndSettings
        ),
        .executableTarget(
            name: "wmq-bench-client",
            dependencies: [
                "WorksClient", "MQTTWire", "WebSocketWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ClientBench",
            swiftSettings: frontEndSettings
        ),
        .executableTarget(
            name: "wmq-replay",
            dependencies: [
                "Recordings", "Replay", "WorksClient", "Capture", "Dialects", "MQTTWire", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: frontEndSettings
        ),
        .executableTarget(
            name: "wmq-capture",
            dependencies: [
                "CaptureProxy", "LiveWebSocket", "Capture", "Dissector", "Dialects", "CommandLineSupport", "WorksClient", "WebSocketWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: frontEndSettings
        ),
        .executableTarget(
            name: "wmq-mock",
            dependencies: [
                "MockServer", "MockFiles", "Broker", "WorksClient", "Dialects", "CommandLineSupport", "MQTTWire", "NetworkErrors",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: frontEndSettings
        ),
        .executableTarget(
            name: "wmq-bench-mock",
            dependencies: [
                "WorksClient", "MQTTWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/MockBench",
            swiftSettings: frontEndSettings
        ),
        .executableTarget(
            name: "wmq-client",
            dependencies: [
                "WorksClient", "ChatClients", "Dialects", "Dissector", "MQTTWire", "CommandLineSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: frontEndSettings
        ),
        .executableTarget(
            name: "wmq-bench",
            dependencies: [
                "ByteStream", "MQTTWire", "WebSocketWire", "Capture", "Dissector", "Dialects",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Benchmarks/CodecBench",
            swiftSettings: frontEndSettings
        ),

        .testTarget(
            name: "ByteStreamTests",
            dependencies: ["TestSupport", "ByteStream", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "MQTTWireTests",
            dependencies: ["TestSupport", "MQTTWire", "Fuzzing", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "WebSocketWireTests",
            dependencies: ["TestSupport", 
                "WebSocketWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        .testTarget(
            name: "DialectsTests",
            dependencies: ["TestSupport", 
                "Dialects", "MQTTWire", "WebSocketWire", "ByteStream",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DissectorTests",
            dependencies: ["TestSupport", 
                "Dissector", "Fuzzing", "Dialects", "MQTTWire", "WebSocketWire", "Capture", "ByteStream",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "CaptureTests",
            dependencies: ["TestSupport", "Capture", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "CPcapTests",
            dependencies: ["TestSupport", "CPcap"]
        ),
        .testTarget(
            name: "FuzzingTests",
            dependencies: ["TestSupport", "Fuzzing", "MQTTWire", "WebSocketWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "WorksClientTests",
            dependencies: ["TestSupport", 
                "WorksClient", "MQTTWire", "Dialects", "WebSocketWire", "wmq-client", "wmq-decode",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MockServerTests",
            dependencies: ["TestSupport", 
                "MockServer", "MockFiles", "LiveWebSocket", "Broker", "MQTTWire", "WorksClient", "Dialects", "LiveClock", "wmq-mock",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport", 
                "wmq-decode", "wmq-fuzz", "wmq-client", "wmq-replay", "wmq-mock", "wmq-capture", "Capture",
                "WorksClient", "ChatClients", "MockServer", "MockAgents", "Dialects", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "RecordingsTests",
            dependencies: ["TestSupport", "Recordings", "Replay", "Capture", "MQTTWire", "MockFiles", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "ReplayTests",
            dependencies: [
                "TestSupport", "Replay", "Recordings", "Capture", "MQTTWire", "Dialects", "LiveClock", "WorksClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LiveWebSocketTests",
            dependencies: [
                "TestSupport", "LiveWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "CaptureProxyTests",
            dependencies: [
                "TestSupport", "CaptureProxy", "WorksClient", "MockServer", "Recordings", "MQTTWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MockAgentsTests",
            dependencies: ["TestSupport", "MockAgents", "Dialects", "MQTTWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "BrokerTests",
            dependencies: ["TestSupport", "Broker", "MQTTWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // What the test targets share: peers, ports, built binaries, processes, waiting.
        .target(
            name: "TestSupport",
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
