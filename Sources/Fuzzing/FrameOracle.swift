import NIOCore
import NIOEmbedded
import NIOWebSocket
import WebSocketWire

/// The frame parser against an implementation nobody here wrote: NIOWebSocket's
/// `WebSocketFrameDecoder`, in process. Both read the same bytes (the `websocket` target's
/// inputs); the frames they find must be the same, field by field, and where one refuses a
/// frame the other must refuse it too — or the difference must be one of the known ones in
/// `corpora/websocket.oracle`, each with its reason.
///
/// NIO's decoder reads frames only: what RFC 6455 says to refuse beyond the frame's shape
/// (reserved bits no extension defined, reserved opcodes) it leaves to the handlers after it,
/// where our parser, a reader of captures, refuses at once. Those are the known differences.
public enum FrameOracle {
    /// One frame as both readers can say it: header bits, opcode, mask key, unmasked payload.
    struct Frame: Equatable, CustomStringConvertible {
        var fin, rsv1, rsv2, rsv3: Bool
        var opcode: UInt8
        var maskKey: [UInt8]?
        var payload: [UInt8]

        var description: String {
            "fin \(fin) rsv \(rsv1 ? 1 : 0)\(rsv2 ? 1 : 0)\(rsv3 ? 1 : 0) opcode \(opcode) mask \(maskKey.map { "\($0)" } ?? "none") "
                + "\(payload.count) bytes"
        }
    }

    /// What one reader made of the bytes: the frames before it stopped, and why it stopped
    /// (nil: it ran out of bytes).
    struct Reading {
        var frames: [Frame] = []
        var refusal: String?
    }

    /// The outcome of one input.
    public enum Verdict: Sendable, Equatable {
        /// Both found the same frames and stopped alike.
        case agree
        /// A difference listed as known (its code).
        case known(String)
        /// Not an input the oracle compares (an HTTP head first, or a scan for a boundary).
        case notCompared
        /// The readers disagree: a bug in one of them.
        case disagree(String)
    }

    /// The frame limit of both readers: the harness's.
    static let maximumFrameSize = WebSocketHarness.maximumSize

    /// Compares the readers on one `websocket` target input (flags, chunk seed, stream);
    /// `known` holds the codes of our parser's refusals that NIO is known not to make.
    public static func compare(_ input: [UInt8], known: Set<String>) -> Verdict {
        var cursor = InputCursor(input)
        let setup = WebSocketHarness.StreamSetup(flags: cursor.byte())
        _ = cursor.byte()
        guard !setup.expectsHead, !setup.scansFirst else { return .notCompared }
        let bytes = Array(cursor.rest)
        let ours = Self.ours(bytes, setup: setup)
        let theirs = Self.nio(bytes)
        let common = zip(ours.frames, theirs.frames).prefix { $0 == $1 }.count
        if common < min(ours.frames.count, theirs.frames.count) {
            return .disagree("frame \(common + 1): ours \(ours.frames[common]), NIO's \(theirs.frames[common])")
        }
        let (read, nioRead) = (ours.frames.count, theirs.frames.count)
        // Both read every frame there was, or both refused the same frame.
        if read == nioRead && (ours.refusal == nil) == (theirs.refusal == nil) { return .agree }
        // We refused a frame NIO read on past (or waits for the rest of): known, or a bug.
        if let code = ours.refusal, nioRead >= read, theirs.refusal == nil || nioRead > read {
            if known.contains(code) { return .known(code) }
        }
        // NIO refused a frame whose header we have not seen whole yet: given the rest of the
        // header (zeros), we must refuse that frame too.
        if ours.refusal == nil, let refusal = theirs.refusal, read == nioRead, known.contains("early " + refusal) {
            let completed = Self.ours(bytes + [UInt8](repeating: 0, count: 14), setup: setup)
            if completed.frames.count == read && completed.refusal != nil { return .known("early " + refusal) }
        }
        return .disagree("ours read \(read) frame(s) then \(ours.refusal.map { "refused (\($0))" } ?? "needed more bytes"); "
                         + "NIO's read \(nioRead) then \(theirs.refusal.map { "refused (\($0))" } ?? "needed more bytes")")
    }

    static func ours(_ bytes: [UInt8], setup: WebSocketHarness.StreamSetup) -> Reading {
        var parser = WebSocketFrameParser(configuration: .init(
            maximumFrameSize: maximumFrameSize, direction: setup.direction,
            allowedReservedBits: setup.deflate == nil ? [] : .rsv1))
        parser.append(contentsOf: bytes)
        var reading = Reading()
        while true {
            do {
                guard let frame = try parser.next() else { return reading }
                reading.frames.append(Frame(fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3,
                                            opcode: UInt8(webSocketOpcode: frame.opcode),
                                            maskKey: frame.maskKey.map { Array($0) }, payload: Array(frame.data.readableBytesView)))
            } catch {
                reading.refusal = error.code.description
                return reading
            }
        }
    }

    static func nio(_ bytes: [UInt8]) -> Reading {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maximumFrameSize)))
        var reading = Reading()
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            reading.refusal = "\(error)"
        }
        while let frame = try? channel.readInbound(as: WebSocketFrame.self) {
            reading.frames.append(Frame(fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3,
                                        opcode: UInt8(webSocketOpcode: frame.opcode),
                                        maskKey: frame.maskKey.map { Array($0) }, payload: Array(frame.unmaskedData.readableBytesView)))
        }
        _ = try? channel.finish()
        return reading
    }

    /// The known differences of a file (`CODE: reason` lines; `#` starts a comment).
    public static func knownDifferences(_ text: String) -> [String: String] {
        var known: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let code = line[..<colon].trimmingCharacters(in: .whitespaces)
            guard !code.isEmpty else { continue }
            known[code] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return known
    }

    /// `count` generated inputs: frames of every opcode, reserved bits, mask and length form,
    /// some cut short and some with a byte changed, as the `websocket` target reads them.
    public static func generated(count: Int, seed: UInt64) -> [[UInt8]] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            let direction: UInt8 = Bool.random(using: &random) ? 0 : 1
            let deflate: UInt8 = random.next() % 4 == 0 ? 4 : 0
            var stream: [UInt8] = []
            for _ in 0..<(1 + Int(random.next() % 4)) {
                // Mostly the six opcodes RFC 6455 defines, sometimes a reserved one.
                let defined: [UInt8] = [0, 1, 2, 8, 9, 10]
                let opcode = random.next() % 10 == 0 ? UInt8(random.next() % 16) : defined[Int(random.next() % 6)]
                let bits = random.next() % 8 == 0 ? UInt8(random.next() % 8) << 4 : 0
                let fin: UInt8 = random.next() % 5 == 0 ? 0 : 0x80
                let length: Int = switch random.next() % 10 {
                case 0: 126 + Int(random.next() % 300)
                case 1: Int(random.next() % 200)
                default: Int(random.next() % 40)
                }
                let masked = random.next() % 3 != 0
                stream.append(fin | bits | opcode)
                let maskBit: UInt8 = masked ? 0x80 : 0
                switch random.next() % 12 {
                case 0: stream += [maskBit | 126] + [UInt8(length >> 8), UInt8(length & 0xFF)]   // 16-bit form, maybe not minimal
                case 1: stream += [maskBit | 127] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(length) >> (8 * (7 - $0))) }
                default:
                    if length < 126 {
                        stream.append(maskBit | UInt8(length))
                    } else {
                        stream += [maskBit | 126, UInt8(length >> 8), UInt8(length & 0xFF)]
                    }
                }
                if masked { stream += (0..<4).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
                stream += (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            if random.next() % 4 == 0, !stream.isEmpty {
                // One byte changed, or the stream cut short.
                let index = Int(random.next() % UInt64(stream.count))
                if Bool.random(using: &random) { stream[index] ^= UInt8(truncatingIfNeeded: random.next() | 1) } else { stream.removeLast(stream.count - index) }
            }
            return [direction | deflate, UInt8(truncatingIfNeeded: random.next())] + stream
        }
    }
}
