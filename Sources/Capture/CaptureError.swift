/// A capture that cannot be read, or a packet that cannot be decoded: the layer, where
/// (frame number and byte offset), and why.
public struct CaptureError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Layer: String, Sendable, Hashable {
        case file, link, ipv4, ipv6, tcp
    }

    public let layer: Layer
    /// The frame the error is in, counted from 1; nil for file-level errors.
    public let frame: Int?
    /// Byte offset: in the file for file-level errors, else in the frame.
    public let offset: Int
    public let reason: String

    public init(layer: Layer, frame: Int? = nil, offset: Int, reason: String) {
        self.layer = layer
        self.frame = frame
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        if let frame { return "\(layer.rawValue): frame \(frame), byte \(offset): \(reason)" }
        return "\(layer.rawValue): byte \(offset): \(reason)"
    }
}
