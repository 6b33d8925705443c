import Capture
public import Dialects
import Foundation
import MQTTWire
import NIOCore
import Recordings

/// The three ways a replay is reported: a diff for people, JSON for programs, JUnit XML for CI.
extension ReplayReport {
    var direction: String { connections.first?.compared == .serverToClient ? "server → client" : "client → server" }

    public var summaryLine: String {
        let differing = connections.filter { $0.skipped == nil && !$0.matched }.count
        let played = replayed
        let skipped = connections.count - played
        var line = "\(recording) — \(mode.rawValue), \(pace): "
        line += !matched ? "MISMATCH" : played == 0 ? "NOTHING REPLAYED" : "MATCH"
        line += " (\(played) connection\(played == 1 ? "" : "s") replayed"
        if differing > 0 { line += ", \(differing) differ" }
        if skipped > 0 { line += ", \(skipped) skipped" }
        line += ") in \(String(format: "%.2f", seconds)) s, \(packets) packets"
        return line
    }

    /// The human report: one line per connection that matched, and for one that did not, its
    /// compared direction side by side — recorded on the left, replayed on the right — each
    /// packet with its Works annotation (or a payload preview), the reason under every
    /// difference.
    public func text(width: Int = 120) -> String {
        var out = summaryLine + "\n"
        for note in notes { out += "  ! \(note)\n" }
        for warning in warnings { out += "  warning: the recording: \(warning)\n" }
        for connection in connections {
            let name = "c\(connection.connection.id)" + (connection.connection.connect.map { " \"\($0.clientIdentifier)\"" } ?? "")
            let side = connection.compared == .serverToClient ? "server → client" : "client → server"
            if let skipped = connection.skipped {
                out += "  \(name): skipped, \(skipped)\n"
                continue
            }
            let compared = connection.rows.count
            if connection.matched {
                let reordered = connection.rows.count { $0.reordered }
                let order = reordered == 0 ? "" : " (\(reordered) in another order, which MQTT allows)"
                out += "  \(name) \(side): \(compared) packet\(compared == 1 ? "" : "s") as recorded\(order)\n"
                continue
            }
            let differences = connection.differences.count
            out += "  \(name) \(side): \(differences) difference\(differences == 1 ? "" : "s") in \(compared) packet\(compared == 1 ? "" : "s")\n"
            for note in connection.notes { out += "    ! \(note)\n" }
            out += Self.sideBySide(connection.rows, width: width, redactor: redactor)
        }
        return out
    }

    static func sideBySide(_ rows: [AlignedRow], width: Int, redactor: Redactor?) -> String {
        let column = max(30, (width - 10) / 2)
        // By display width: a wide character (CJK, emoji) takes two columns.
        func cell(_ text: String) -> String { DisplayWidth.fit(text, columns: column) }
        // Long sequences show the differences with two packets around each.
        let wanted: Set<Int> = rows.count <= 20 ? Set(rows.indices) : Set(rows.indices.filter { index in
            rows[max(0, index - 2)...min(rows.count - 1, index + 2)].contains { $0.reason != nil }
        })
        var out = "         " + cell("recorded") + " " + "replayed\n"
        var skipped = false
        for (index, row) in rows.enumerated() {
            guard wanted.contains(index) else {
                if !skipped { out += "    …\n" }
                skipped = true
                continue
            }
            skipped = false
            let mark = row.reason == nil ? " " : (row.expected == nil ? "+" : row.actual == nil ? "-" : "!")
            let left = row.expected.map { Matcher.summary($0.packet) } ?? "—"
            let right = row.actual.map { Matcher.summary($0.packet) } ?? "—"
            out += "  \(mark) \(String(row.position).leftPadded(4)) \(cell(left)) \(right)\n"
            let leftDetail = row.expected.flatMap { detail($0, redactor: redactor) }
            let rightDetail = row.actual.flatMap { detail($0, like: row.expected, redactor: redactor) }
            if row.reason != nil, let leftDetail, let rightDetail, leftDetail.count + 2 > column {
                // A difference shows both messages whole, one above the other.
                out += "           recorded: \(leftDetail)\n           replayed: \(rightDetail)\n"
            } else if leftDetail != nil || rightDetail != nil {
                out += "         " + cell(leftDetail.map { "  \($0)" } ?? "") + " " + (rightDetail.map { "  \($0)" } ?? "") + "\n"
            }
            if let reason = row.reason { out += "         → \(reason)\n" }
        }
        return out
    }

    /// A PUBLISH's annotated message (in the recorded message's dialect) or a preview of its payload.
    static func detail(_ message: RecordedMessage, like recorded: RecordedMessage? = nil, redactor: Redactor?) -> String? {
        guard case .publish(let publish) = message.packet else { return nil }
        if let annotation = message.annotation { return annotation.summary }
        switch recorded?.annotation?.dialect {
        case "chat"?: return ChatTopicDialect().annotate(publish, redactor: redactor).summary
        case _?: return WorksDialect().annotate(publish, redactor: redactor).summary
        case nil: break
        }
        // JSON is shown with its secret members as pseudonyms.
        if let redactor, let json = try? JSONReader.parse(publish.payload) {
            let text = redactor.redact(json: json).description
            return text.count > 60 ? String(text.prefix(60)) + "…" : text
        }
        let bytes = publish.payload.readableBytesView
        guard let text = String(validating: bytes.prefix(60), as: UTF8.self), !text.contains(where: { $0.isNewline }) else {
            return "\(bytes.count) bytes"
        }
        return bytes.count > 60 ? "\(text)…" : text
    }

    /// The report as JSON (schema in docs/replay.md).
    public var json: JSONValue {
        func string(_ text: String) -> JSONValue { .string(text) }
        let connectionValues: [JSONValue] = connections.map { connection in
            var members = [
                JSONMember(key: "connection", value: string("c\(connection.connection.id)")),
                JSONMember(key: "transport", value: string(connection.connection.transport.rawValue)),
            ]
            if let connect = connection.connection.connect { members.append(JSONMember(key: "clientId", value: string(connect.clientIdentifier))) }
            members.append(JSONMember(key: "compared", value: string(connection.compared == .serverToClient ? "s2c" : "c2s")))
            let status = connection.skipped != nil ? "skipped" : connection.matched ? "matched" : "mismatched"
            members.append(JSONMember(key: "status", value: string(status)))
            if let skipped = connection.skipped { members.append(JSONMember(key: "skipped", value: string(skipped))) }
            members.append(JSONMember(key: "packets", value: .number(String(connection.rows.count))))
            members.append(JSONMember(key: "reordered", value: .number(String(connection.rows.count { $0.reordered }))))
            members.append(JSONMember(key: "notes", value: .array(connection.notes.map(string))))
            members.append(JSONMember(key: "differences", value: .array(connection.differences.map { row in
                .object([
                    JSONMember(key: "position", value: .number(String(row.position))),
                    JSONMember(key: "expected", value: string(row.expected.map { Matcher.summary($0.packet) } ?? "—")),
                    JSONMember(key: "actual", value: string(row.actual.map { Matcher.summary($0.packet) } ?? "—")),
                    JSONMember(key: "reason", value: string(row.reason ?? "")),
                ])
            })))
            return .object(members)
        }
        return .object([
            JSONMember(key: "v", value: .number("1")),
            JSONMember(key: "recording", value: string(recording)),
            JSONMember(key: "mode", value: string(mode.rawValue)),
            JSONMember(key: "pace", value: string(pace.description)),
            JSONMember(key: "matched", value: .bool(matched)),
            JSONMember(key: "seconds", value: .number(String(format: "%.3f", seconds))),
            JSONMember(key: "packets", value: .number(String(packets))),
            JSONMember(key: "notes", value: .array(notes.map(string))),
            JSONMember(key: "warnings", value: .array(warnings.map(string))),
            JSONMember(key: "replayed", value: .number(String(replayed))),
            JSONMember(key: "connections", value: .array(connectionValues)),
        ])
    }

    /// A JUnit suite made elsewhere (the chat sockets'), with its counts.
    public struct JUnitSuite: Sendable {
        public var xml: String
        public var tests: Int
        public var failures: Int
        public var skipped: Int
    }

    /// JUnit XML for many reports: a test suite per recording and mode, a test case per connection.
    public static func junit(_ reports: [ReplayReport], more: [JUnitSuite] = []) -> String {
        let escape = xmlEscape
        var suites = ""
        var totals = (tests: 0, failures: 0, skipped: 0)
        for suite in more {
            suites += suite.xml
            totals.tests += suite.tests
            totals.failures += suite.failures
            totals.skipped += suite.skipped
        }
        for report in reports {
            var cases = ""
            var counts = (tests: 0, failures: 0, skipped: 0)
            let className = "wmq-replay.\(report.mode.rawValue).\((report.recording as NSString).lastPathComponent)"
            for connection in report.connections {
                counts.tests += 1
                let name = "c\(connection.connection.id)" + (connection.connection.connect.map { " \($0.clientIdentifier)" } ?? "")
                    + (connection.compared == .serverToClient ? " server → client" : " client → server")
                cases += "    <testcase classname=\"\(escape(className))\" name=\"\(escape(name))\" time=\"\(String(format: "%.3f", report.seconds))\">\n"
                if let skipped = connection.skipped {
                    counts.skipped += 1
                    cases += "      <skipped message=\"\(escape(skipped))\"/>\n"
                } else if !connection.matched {
                    counts.failures += 1
                    let message = connection.differences.first.map { "#\($0.position): \($0.reason ?? "")" } ?? connection.notes.first ?? "differs"
                    let body = connection.notes.map { "! \($0)\n" }.joined() + sideBySide(connection.rows, width: 120, redactor: report.redactor)
                    cases += "      <failure message=\"\(escape(message))\" type=\"mismatch\">\(escape(body))</failure>\n"
                }
                cases += "    </testcase>\n"
            }
            if !report.notes.isEmpty {
                counts.tests += 1
                counts.failures += 1
                cases += "    <testcase classname=\"\(escape(className))\" name=\"replay\" time=\"\(String(format: "%.3f", report.seconds))\">\n"
                cases += "      <failure message=\"\(escape(report.notes[0]))\" type=\"replay\">\(escape(report.notes.joined(separator: "\n")))</failure>\n"
                cases += "    </testcase>\n"
            }
            // Warnings about the recording: on the suite's standard error, which CI systems show.
            let warnings = report.warnings.isEmpty ? ""
                : "    <system-err>\(escape(report.warnings.map { "warning: the recording: \($0)" }.joined(separator: "\n")))</system-err>\n"
            suites += "  <testsuite name=\"\(escape("\(report.recording) (\(report.mode.rawValue))"))\" tests=\"\(counts.tests)\" "
                + "failures=\"\(counts.failures)\" errors=\"0\" skipped=\"\(counts.skipped)\" time=\"\(String(format: "%.3f", report.seconds))\">\n"
                + cases + warnings + "  </testsuite>\n"
            totals.tests += counts.tests
            totals.failures += counts.failures
            totals.skipped += counts.skipped
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            + "<testsuites name=\"wmq-replay\" tests=\"\(totals.tests)\" failures=\"\(totals.failures)\" errors=\"0\" skipped=\"\(totals.skipped)\">\n"
            + suites + "</testsuites>\n"
    }

    /// Text for XML attributes and content.
    public static func xmlEscape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n", "\t": out.unicodeScalars.append(scalar)
            // XML 1.0 has no other control characters, not even escaped.
            case _ where scalar.value < 0x20: out += "?"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
