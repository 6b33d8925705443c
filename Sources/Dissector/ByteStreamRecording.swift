public import NIOCore
public import WebSocketWire

/// A `.wmqs` byte-stream recording: both directions of one connection as the bytes
/// crossed the wire, with no TCP/IP around them (format: captures/README.md).
public struct ByteStreamRecording: Sendable {
    public struct Record: Sendable {
        public var direction: StreamDirection
        public var bytes: ByteBuffer
        /// Offset of the record's first data byte in the file.
        public var fileOffset: Int
    }

    public static let magic: [UInt8] = Array("WMQS".utf8) + [0x01]

    public var records: [Record]
    /// Set when the file stops inside a record: everything before it was read.
    public var truncation: RecordingError?

    /// Reads a recording; a damaged tail is reported in ``truncation``, not thrown.
    public init(_ file: ByteBuffer) throws(RecordingError) {
        var input = file
        guard input.readBytes(length: Self.magic.count) == Self.magic else {
            throw RecordingError(offset: 0, reason: "not a wmq byte-stream recording (expected \"WMQS\" version 1)")
        }
        records = []
        while input.readableBytes > 0 {
            let start = input.readerIndex
            guard let tag = input.readInteger(as: UInt8.self), let length = input.readInteger(as: UInt32.self) else {
                truncation = RecordingError(offset: start, reason: "record header cut short")
                break
            }
            let direction: StreamDirection
            switch tag {
            case UInt8(ascii: "C"): direction = .clientToServer
            case UInt8(ascii: "S"): direction = .serverToClient
            default:
                truncation = RecordingError(offset: start, reason: "unknown direction tag 0x\(String(tag, radix: 16))")
                return
            }
            guard let bytes = input.readSlice(length: Int(length)) else {
                // Keep what is there: the bytes before the cut still decode.
                truncation = RecordingError(offset: start, reason: "record of \(length) bytes, \(input.readableBytes) left in the file")
                let rest = input.readSlice(length: input.readableBytes) ?? ByteBuffer()
                records.append(Record(direction: direction, bytes: rest, fileOffset: start + 5))
                break
            }
            records.append(Record(direction: direction, bytes: bytes, fileOffset: start + 5))
        }
    }
}

/// A recording that cannot be read, with the file offset.
public struct RecordingError: Error, Sendable, Hashable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "recording: \(reason) at byte \(offset) of the file" }
}
