import ByteStream
/// A typed decoding or encoding error: what went wrong (``code``), at which byte of the
/// stream (``offset``), in which packet, and the normative statement it breaks.
///
/// Modelled on swift-certificates' errors: a struct with an extensible code, so new
/// cases do not break users; equality compares the code and the offset only.
public struct MQTTWireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of violation this is.
    public let code: Code
    /// Offset in the byte stream (counted from the first byte the decoder was given)
    /// of the byte where the violation was found; for encoder errors, 0.
    public let offset: Int
    /// The packet the violation was found in, when its fixed header was read.
    public let packetType: PacketType?
    /// A sentence for people: what was expected and what was found.
    public var reason: String { reasonText.text }
    private let reasonText: DeferredText
    /// The normative statement of the specification that the input breaks, such as
    /// `MQTT-3.3.1-4`, or a section reference where the statement has no identifier.
    public let specReference: String?
    /// `true` when the decoder knows where the next packet starts (the fixed header was
    /// valid, so the broken packet was skipped whole) and can go on decoding.
    public let isRecoverable: Bool

    public init(
        code: Code, offset: Int, packetType: PacketType? = nil, reason: String,
        specReference: String? = nil, isRecoverable: Bool = false
    ) {
        self.init(code: code, offset: offset, packetType: packetType, reasonText: DeferredText(reason),
                  specReference: specReference, isRecoverable: isRecoverable)
    }

    /// An error whose reason is written only when it is read: the decoders meet broken streams
    /// (and fuzzers, millions of them) and throw far more errors than anyone reads.
    public init(
        code: Code, offset: Int, packetType: PacketType? = nil, describedBy reason: @autoclosure @escaping @Sendable () -> String,
        specReference: String? = nil, isRecoverable: Bool = false
    ) {
        self.init(code: code, offset: offset, packetType: packetType, reasonText: DeferredText(deferred: reason),
                  specReference: specReference, isRecoverable: isRecoverable)
    }

    /// An error whose reason `format` writes from `values` only when it is read, with no
    /// allocation: `format` captures nothing (see ``DeferredText/Values``).
    init(
        code: Code, offset: Int, packetType: PacketType? = nil, values: DeferredText.Values,
        describedBy format: @escaping @Sendable (DeferredText.Values) -> String,
        specReference: String? = nil, isRecoverable: Bool = false
    ) {
        self.init(code: code, offset: offset, packetType: packetType, reasonText: DeferredText(values, format: format),
                  specReference: specReference, isRecoverable: isRecoverable)
    }

    private init(code: Code, offset: Int, packetType: PacketType?, reasonText: DeferredText, specReference: String?,
                 isRecoverable: Bool) {
        self.code = code
        self.offset = offset
        self.packetType = packetType
        self.reasonText = reasonText
        self.specReference = specReference
        self.isRecoverable = isRecoverable
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code && lhs.offset == rhs.offset
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(offset)
    }

    public var description: String {
        var text = "MQTT \(code)"
        if let packetType { text += " in \(packetType)" }
        text += " at byte \(offset): \(reason)"
        if let specReference { text += " [\(specReference)]" }
        return text
    }

    func with(packetType: PacketType, recoverable: Bool, version: ProtocolVersion = .v3_1_1) -> MQTTWireError {
        MQTTWireError(
            code: code, offset: offset, packetType: self.packetType ?? packetType, reasonText: reasonText,
            specReference: specReference.map { Self.reference($0, in: version) }, isRecoverable: recoverable)
    }

    /// A reference written for both versions, as the version read cites it: the packet
    /// layout rules shared by 3.1.1 and 5.0 are §2.2.3 in the one and §2.1.4 in the other.
    static func reference(_ reference: String, in version: ProtocolVersion) -> String {
        guard version == .v5, reference.hasPrefix("MQTT 3.1.1 ") else { return reference }
        if reference == "MQTT 3.1.1 §2.2.3" { return "MQTT 5.0 §2.1.4" }
        return reference
    }

    /// The kinds of violation. New codes may be added in minor releases.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Backing: String, Sendable, Hashable {
            case invalidPacketType
            case invalidFixedHeaderFlags
            case malformedRemainingLength
            case packetTooLarge
            case truncatedPacket
            case trailingBytes
            case malformedVariableByteInteger
            case invalidUTF8
            case nullCharacterInString
            case stringTooLong
            case invalidQoS
            case invalidTopicName
            case invalidTopicFilter
            case invalidPacketIdentifier
            case unsupportedProtocolName
            case unsupportedProtocolLevel
            case invalidConnectFlags
            case invalidReasonCode
            case emptySubscriptionList
            case invalidSubscriptionOptions
            case unknownProperty
            case duplicateProperty
            case propertyNotAllowed
            case invalidPropertyValue
            case propertiesNotSupported
            case valueOutOfRange
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }
        public var description: String { backing.rawValue }

        /// Packet type 0, or AUTH (15) outside MQTT 5.
        public static let invalidPacketType = Code(.invalidPacketType)
        /// Reserved bits of the fixed header's first byte are not as the spec requires.
        public static let invalidFixedHeaderFlags = Code(.invalidFixedHeaderFlags)
        /// The remaining length runs past four bytes.
        public static let malformedRemainingLength = Code(.malformedRemainingLength)
        /// The packet is larger than the configured maximum.
        public static let packetTooLarge = Code(.packetTooLarge)
        /// A field runs past the end of the packet's remaining length.
        public static let truncatedPacket = Code(.truncatedPacket)
        /// Bytes are left in the packet after its last field.
        public static let trailingBytes = Code(.trailingBytes)
        /// A variable byte integer inside a packet runs past four bytes.
        public static let malformedVariableByteInteger = Code(.malformedVariableByteInteger)
        /// A UTF-8 string field is ill-formed.
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// A UTF-8 string field contains U+0000.
        public static let nullCharacterInString = Code(.nullCharacterInString)
        /// A string or binary field is longer than 65,535 bytes (encoder).
        public static let stringTooLong = Code(.stringTooLong)
        /// A QoS of 3.
        public static let invalidQoS = Code(.invalidQoS)
        /// A topic name that is empty or holds a wildcard.
        public static let invalidTopicName = Code(.invalidTopicName)
        /// A topic filter with a misplaced wildcard or no characters.
        public static let invalidTopicFilter = Code(.invalidTopicFilter)
        /// Packet identifier 0 where a non-zero one is required.
        public static let invalidPacketIdentifier = Code(.invalidPacketIdentifier)
        /// CONNECT protocol name other than `MQTT` (or `MQIsdp` for 3.1).
        public static let unsupportedProtocolName = Code(.unsupportedProtocolName)
        /// CONNECT protocol level other than 3, 4 or 5.
        public static let unsupportedProtocolLevel = Code(.unsupportedProtocolLevel)
        /// CONNECT flags that contradict each other or set the reserved bit.
        public static let invalidConnectFlags = Code(.invalidConnectFlags)
        /// A reason or return code the packet may not carry.
        public static let invalidReasonCode = Code(.invalidReasonCode)
        /// SUBSCRIBE or UNSUBSCRIBE without any topic filter.
        public static let emptySubscriptionList = Code(.emptySubscriptionList)
        /// Subscription options with reserved bits set or invalid retain handling.
        public static let invalidSubscriptionOptions = Code(.invalidSubscriptionOptions)
        /// An MQTT 5 property identifier that the spec does not define.
        public static let unknownProperty = Code(.unknownProperty)
        /// An MQTT 5 property that may appear once appears again.
        public static let duplicateProperty = Code(.duplicateProperty)
        /// An MQTT 5 property in a packet that may not carry it.
        public static let propertyNotAllowed = Code(.propertyNotAllowed)
        /// An MQTT 5 property with a value the spec forbids.
        public static let invalidPropertyValue = Code(.invalidPropertyValue)
        /// Properties given to the encoder for an MQTT 3.1.1 packet.
        public static let propertiesNotSupported = Code(.propertiesNotSupported)
        /// A value that does not fit its field (encoder).
        public static let valueOutOfRange = Code(.valueOutOfRange)
    }
}
