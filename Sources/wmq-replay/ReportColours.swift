import ArgumentParser
import Capture
import CommandLineSupport
import Dialects
import Foundation
import MQTTWire
import Replay
import Recordings
import WorksClient

/// The text report in colour: MATCH green, MISMATCH red, a missing packet red, an added one
/// green, a differing one and the reasons yellow, notes dim.
enum ReportColours {
    static func colour(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.contains(": MISMATCH") { return line.replacingOccurrences(of: "MISMATCH", with: "\u{1B}[1;31mMISMATCH\u{1B}[0m") }
            if line.contains(": MATCH") { return line.replacingOccurrences(of: "MATCH", with: "\u{1B}[1;32mMATCH\u{1B}[0m") }
            let trimmed = line.drop { $0 == " " }
            let wrap: String? = if line.hasPrefix("  - ") { "31" }
                else if line.hasPrefix("  + ") { "32" }
                else if line.hasPrefix("  ! ") || trimmed.hasPrefix("→ ") { "33" }
                else if trimmed.hasPrefix("! ") { "2" }
                else { nil }
            return wrap.map { "\u{1B}[\($0)m" + line + "\u{1B}[0m" } ?? String(line)
        }.joined(separator: "\n")
    }
}
