public import ByteStream
public import NIOCore
/// An IPv4 or IPv6 address.
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6(high: UInt64, low: UInt64)

    public var description: String {
        switch self {
        case .v4:
            return String(writing: { writeDecimal(to: &$0) }, capacity: 16)
        case .v6(let high, let low):
            let groups = [48, 32, 16, 0].map { UInt16(truncatingIfNeeded: high >> $0) }
                + [48, 32, 16, 0].map { UInt16(truncatingIfNeeded: low >> $0) }
            return Self.compress(groups)
        }
    }

    /// An IPv4 address in dotted decimal, appended without making a String per octet (every
    /// decoded packet names its endpoints); an IPv6 address as `description` gives it.
    func writeDecimal(to bytes: inout ByteWriter) {
        guard case .v4(let value) = self else {
            bytes.append(contentsOf: description)
            return
        }
        for shift in [24, 16, 8, 0] as [UInt32] {
            if shift != 24 { bytes.append(UInt8(ascii: ".")) }
            DecimalText.append(UInt64((value >> shift) & 0xFF), to: &bytes)
        }
    }

    /// RFC 5952 text: lower case, the longest run of two or more zero groups as `::`.
    private static func compress(_ groups: [UInt16]) -> String {
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < groups.count {
            if groups[index] == 0 {
                var end = index
                while end < groups.count && groups[end] == 0 { end += 1 }
                if end - index > bestLength && end - index >= 2 {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
        }
        let text = groups.map { String($0, radix: 16) }
        guard bestStart >= 0 else { return text.joined(separator: ":") }
        let head = text[0..<bestStart].joined(separator: ":")
        let tail = text[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        case (.v6(let a1, let a2), .v6(let b1, let b2)): (a1, a2) < (b1, b2)
        }
    }
}

/// An address and a TCP port.
public struct Endpoint: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `1.2.3.4:80`, `[::1]:80`.
    public var description: String {
        String(writing: { write(to: &$0) }, capacity: 24)
    }

    /// `description`'s text appended as UTF-8, for records written in bulk: an IPv4 endpoint
    /// without a String made for it.
    public func write(to bytes: inout ByteWriter) {
        guard case .v4 = address else {
            bytes.append(contentsOf: "[\(address)]:\(port)")
            return
        }
        address.writeDecimal(to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        DecimalText.append(UInt64(port), to: &bytes)
    }

    public static func < (lhs: Endpoint, rhs: Endpoint) -> Bool { (lhs.address, lhs.port) < (rhs.address, rhs.port) }

    /// The endpoint of a live socket's address (IPv4 or IPv6); 127.0.0.1:`fallbackPort` when
    /// the address is unknown or not IP (a live connection described like a captured one).
    public init(_ address: SocketAddress?, fallbackPort: UInt16) {
        self.init(address: .v4(0x7F00_0001), port: address?.port.map { UInt16(truncatingIfNeeded: $0) } ?? fallbackPort)
        switch address {
        case .v4(let v4)?:
            self.address = .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6)?:
            var raw = v6.address.sin6_addr
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self.address = .v6(high: high, low: low)
        default:
            break
        }
    }
}
