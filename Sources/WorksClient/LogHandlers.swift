import Foundation
public import Logging
import NIOConcurrencyHelpers

/// Log lines on standard error, coloured by level when it is a terminal (the seed used Rich).
public struct ConsoleLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let colours: Bool

    /// `colours` nil: when standard error is a terminal.
    public init(label: String, level: Logger.Level = .info, colours: Bool? = nil) {
        self.label = label
        self.logLevel = level
        self.colours = colours ?? (isatty(2) == 1)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let time = LogLine.time(Date(), withDate: false)
        let level = LogLine.levelName(event.level)
        let text = LogLine.text(event.message, metadata: metadata.merging(event.metadata ?? [:]) { $1 })
        let line: String
        if colours {
            let colour = switch event.level {
            case .trace, .debug: "\u{1B}[2m"
            case .info, .notice: "\u{1B}[36m"
            case .warning: "\u{1B}[33m"
            case .error, .critical: "\u{1B}[31m"
            }
            line = "\u{1B}[2m\(time)\u{1B}[0m \(colour)\(level)\u{1B}[0m \(text)\n"
        } else {
            line = "\(time) \(level) \(text)\n"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// A log file with size-based rotation: `works_mqtt.log` grows to ``maximumBytes``, then
/// becomes `works_mqtt.log.1` (older ones shift up to ``backups``) and a new file starts.
public final class RotatingLogFile: @unchecked Sendable {
    public let path: String
    public let maximumBytes: Int
    public let backups: Int
    private let lock = NIOLock()
    private var handle: FileHandle?
    private var size = 0

    public init(path: String, maximumBytes: Int = 10 << 20, backups: Int = 5) throws(WorksClientError) {
        self.path = path
        self.maximumBytes = max(maximumBytes, 1024)
        self.backups = max(backups, 0)
        try open()  // not shared yet: no lock needed
    }

    deinit {
        try? handle?.close()
    }

    public func write(_ line: String) {
        let bytes = Data(line.utf8)
        lock.withLock {
            if size + bytes.count > maximumBytes && size > 0 { rotate() }
            handle?.write(bytes)
            size += bytes.count
        }
    }

    private func open() throws(WorksClientError) {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw WorksClientError(.config, "cannot create log file \(path)")
            }
        }
        guard let opened = FileHandle(forWritingAtPath: path) else { throw WorksClientError(.config, "cannot open log file \(path)") }
        // A log holds session data: 0600 whether the file is new or was there (perhaps 0644).
        _ = fchmod(opened.fileDescriptor, 0o600)
        size = Int((try? opened.seekToEnd()) ?? 0)
        handle = opened
    }

    private func rotate() {
        try? handle?.close()
        handle = nil
        let manager = FileManager.default
        if backups > 0 {
            try? manager.removeItem(atPath: "\(path).\(backups)")
            for index in stride(from: backups - 1, through: 1, by: -1) where manager.fileExists(atPath: "\(path).\(index)") {
                try? manager.moveItem(atPath: "\(path).\(index)", toPath: "\(path).\(index + 1)")
            }
            try? manager.moveItem(atPath: path, toPath: "\(path).1")
        } else {
            try? manager.removeItem(atPath: path)
        }
        try? open()
    }
}

/// Writes log lines like the seed's log file: `2026-11-22 09:10:00.123 | INFO | message key=value`.
public struct FileLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let file: RotatingLogFile

    public init(file: RotatingLogFile, level: Logger.Level = .debug) {
        self.file = file
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let text = LogLine.text(event.message, metadata: metadata.merging(event.metadata ?? [:]) { $1 })
        file.write("\(LogLine.time(Date(), withDate: true)) | \(LogLine.levelName(event.level)) | \(text)\n")
    }
}

enum LogLine {
    static func time(_ date: Date, withDate: Bool) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&seconds, &parts)
        let milliseconds = Int(date.timeIntervalSince1970 * 1000) % 1000
        let clock = String(format: "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min, parts.tm_sec, milliseconds)
        guard withDate else { return clock }
        return String(format: "%04d-%02d-%02d ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday) + clock
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    static func text(_ message: Logger.Message, metadata: Logger.Metadata) -> String {
        guard !metadata.isEmpty else { return "\(message)" }
        return "\(message) " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
