public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What every test target shares: where the repository and the built tools are, which peers
/// are installed (mosquitto, tshark, paho-mqtt in the project's virtualenv), and the rule that
/// under `CI=true` a missing peer fails a test instead of disabling it.
public enum TestEnvironment {
    /// The repository's root folder.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The committed captures (`captures/`).
    public static var captures: URL { root.appendingPathComponent("captures") }

    /// Whether peers must be present (CI): a test that needs a missing one fails.
    public static var peersRequired: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The project's Python (`Tools/setup --peers` makes the virtualenv).
    public static var python: String { root.appendingPathComponent(".venv/bin/python3").path }
    public static var pythonPresent: Bool { FileManager.default.isExecutableFile(atPath: python) }

    /// A program on the PATH (or in the system folders), if installed.
    public static func executable(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/usr/bin:/sbin:/usr/local/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static var mosquitto: String? { executable("mosquitto") }
    /// amqtt's broker, in its own virtualenv (`Tools/setup --peers`).
    public static var amqtt: String? {
        let path = root.appendingPathComponent(".venv-amqtt/bin/amqtt").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }
    public static var tshark: String? { executable("tshark") }

    /// A file of the repository.
    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// A built tool of this package (`wmq-decode`, `wmq-mock`…): the binaries sit beside the
    /// test bundle in the build folder. An absolute path is returned as it is.
    public static func builtBinary(_ name: String) -> String {
        if name.hasPrefix("/") { return name }
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !folder.path.hasSuffix("/debug") && !folder.path.hasSuffix("/release") && folder.path != "/" {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent(name).path
    }
}

/// A test's peer or process failed, in plain words.
public struct PeerFailure: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}
