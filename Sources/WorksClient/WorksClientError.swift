/// The client's typed errors, one family as in the seed's `WorksError` hierarchy: configuration,
/// connection, authentication, message, packet and cookie errors.
///
/// Modelled on swift-certificates' errors: a struct with an extensible ``Code``; equality
/// compares the code only, so tests compare codes and new codes do not break users.
public struct WorksClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public let code: Code
    /// A sentence for people. Never holds a cookie, password or token.
    public let reason: String
    /// Whether `run()` tries again after this error (a refused login does not).
    public let isRetryable: Bool
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, isRetryable: Bool? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.isRetryable = isRetryable ?? code.isRetryableByDefault
        self.file = file
        self.line = line
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String { "\(code) error: \(reason)" }

    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Backing: String, Sendable, Hashable {
            case config, connection, authentication, message, packet, cookie
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }
        public var description: String { backing.rawValue }

        /// A setting is missing or invalid (`ConfigError`).
        public static let config = Code(.config)
        /// The connection could not be made or was lost: refused, reset, closed by the server,
        /// no PINGRESP in time, no CONNACK in time (`ConnectionError`).
        public static let connection = Code(.connection)
        /// The service refused the credentials: HTTP 401/403 at the upgrade, or a CONNACK with
        /// return code 4 or 5 (`AuthenticationError`).
        public static let authentication = Code(.authentication)
        /// A payload could not be understood (`MessageError`).
        public static let message = Code(.message)
        /// The server sent bytes that are not a valid MQTT packet, or a packet out of place (`PacketError`).
        public static let packet = Code(.packet)
        /// `cookie.json` is missing or malformed (`CookieError`).
        public static let cookie = Code(.cookie)

        var isRetryableByDefault: Bool {
            switch backing {
            case .connection, .packet: true
            case .config, .authentication, .message, .cookie: false
            }
        }
    }
}
