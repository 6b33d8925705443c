public import NIOCore
public import NIOWebSocket

/// Writes frames in RFC 6455 §5.2 form, with the shortest length encoding.
public enum WebSocketFrameWriter {
    /// Appends `frame` to `buffer`, masking its payload with `maskKey` when given
    /// (clients must, servers must not). The frame's own `maskKey` is ignored.
    public static func write(_ frame: WebSocketFrame, maskKey: WebSocketMaskingKey? = nil, into buffer: inout ByteBuffer) {
        write(fin: frame.fin, reservedBits: frame.reservedBits, opcode: frame.opcode, data: frame.data,
              keyValue: maskKey.map(WebSocketMasking.value(of:)), into: &buffer)
    }

    /// A parsed frame written again, with the key it was sent with (as the number the parser
    /// kept: no NIO key is made for it).
    public static func write(_ parsed: ParsedFrame, into buffer: inout ByteBuffer) {
        var reserved: WebSocketFrame.ReservedBits = []
        if parsed.rsv1 { reserved.insert(.rsv1) }
        if parsed.rsv2 { reserved.insert(.rsv2) }
        if parsed.rsv3 { reserved.insert(.rsv3) }
        write(fin: parsed.fin, reservedBits: reserved, opcode: parsed.opcode, data: parsed.data,
              keyValue: parsed.isMasked ? parsed.maskValue : nil, into: &buffer)
    }

    /// `keyValue`: the masking key as ``WebSocketMasking/value(of:)`` gives it, nil for none.
    static func write(fin: Bool, reservedBits: WebSocketFrame.ReservedBits, opcode: WebSocketOpcode, data: ByteBuffer,
                      keyValue: UInt32?, into buffer: inout ByteBuffer) {
        var first = opcode.encodedOpcodeByte
        if fin { first |= 0x80 }
        first |= reservedBits.rawValue
        buffer.writeInteger(first)
        let maskBit: UInt8 = keyValue == nil ? 0 : 0x80
        let length = data.readableBytes
        switch length {
        case 0...125:
            buffer.writeInteger(maskBit | UInt8(length))
        case 126...0xFFFF:
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(length))
        }
        guard let keyValue else {
            var data = data
            buffer.writeBuffer(&data)
            return
        }
        // The key's first byte is the number's low one.
        buffer.writeInteger(keyValue, endianness: .little)
        buffer.reserveCapacity(minimumWritableBytes: length)
        data.withUnsafeReadableBytes { source in
            buffer.withUnsafeMutableWritableBytes { destination in
                if let from = source.baseAddress, let to = destination.baseAddress {
                    WebSocketMasking.apply(keyValue: keyValue, source: from, destination: to, count: length)
                }
            }
        }
        buffer.moveWriterIndex(forwardBy: length)
    }

    /// A close frame's payload: the code, then the reason in UTF-8.
    public static func closePayload(code: UInt16, reason: String = "") -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(code)
        payload.writeString(reason)
        return payload
    }
}

extension WebSocketOpcode {
    /// The opcode's four bits.
    var encodedOpcodeByte: UInt8 {
        UInt8(webSocketOpcode: self)
    }
}
