import Capture
public import Dialects
public import Dissector
import Foundation
import NIOConcurrencyHelpers
public import NIOCore

/// Feeds a live connection's bytes into the same ``ConnectionDissector`` that `wmq-decode`
/// runs on captures, so that `wmq-client` prints exactly what `wmq-decode` would print for a
/// recording of the session (text lines or the JSON Lines schema of docs/decode-format.md).
public final class LiveView: ByteTap, @unchecked Sendable {
    private let lock = NIOLock()
    private let redactor: Redactor?
    private let sink: @Sendable (CaptureEvent) -> Void
    private let protocolName: String
    private var dissector: ConnectionDissector?
    private var connection: Connection?
    private var connectionCount = 0
    private var segment = 0

    /// `sink` is called on the connection's event loop, in order. The first connection seen is
    /// `c<firstConnection>` (a proxy numbers its connections across their views).
    /// `protocolName` names what the connections carry in their `opened` event (`ws-mqtt`;
    /// `websocket` for JSON dialects, as wmq-decode names them).
    public init(redactor: Redactor?, firstConnection: Int = 1, protocolName: String = "ws-mqtt",
                sink: @escaping @Sendable (CaptureEvent) -> Void) {
        self.redactor = redactor
        self.protocolName = protocolName
        self.sink = sink
        connectionCount = firstConnection - 1
    }

    public func connectionOpened(local: SocketAddress?, remote: SocketAddress?) {
        let event: CaptureEvent? = lock.withLock {
            connectionCount += 1
            let now = Date().timeIntervalSince1970
            let opened = Connection(id: connectionCount, client: Endpoint(local, fallbackPort: 40_000),
                                    server: Endpoint(remote, fallbackPort: 443), joinedMidstream: false,
                                    firstFrame: segment + 1, firstTime: now)
            connection = opened
            dissector = try? ConnectionDissector(transport: .webSocket(expectsHandshake: true), redactor: redactor)
            return CaptureEvent(connection: opened, direction: nil, frame: segment + 1, time: now,
                                kind: .opened(protocol: protocolName, how: "live"))
        }
        if let event { sink(event) }
    }

    public func bytes(_ buffer: ByteBuffer, direction: ByteDirection) {
        let events: [CaptureEvent] = lock.withLock {
            guard let connection, var dissector else { return [] }
            segment += 1
            let now = Date().timeIntervalSince1970
            let flow: FlowDirection = direction == .sent ? .clientToServer : .serverToClient
            let found = dissector.feed(buffer, direction: direction == .sent ? .clientToServer : .serverToClient)
            self.dissector = dissector
            return found.map { CaptureEvent(connection: connection, direction: flow, frame: segment, time: now, kind: .dissected($0)) }
        }
        for event in events { sink(event) }
    }

    public func connectionClosed() {
        let event: CaptureEvent? = lock.withLock {
            guard let connection else { return nil }
            self.connection = nil
            dissector = nil
            return CaptureEvent(connection: connection, direction: nil, frame: segment, time: Date().timeIntervalSince1970,
                                kind: .closed(reason: "connection closed"))
        }
        if let event { sink(event) }
    }
}

/// Several taps seeing the same bytes, in order (the recorder and the live view).
public struct TapGroup: ByteTap {
    public let taps: [any ByteTap]
    public init(_ taps: [any ByteTap]) { self.taps = taps }
    public func connectionOpened(local: SocketAddress?, remote: SocketAddress?) {
        for tap in taps { tap.connectionOpened(local: local, remote: remote) }
    }
    public func bytes(_ buffer: ByteBuffer, direction: ByteDirection) {
        for tap in taps { tap.bytes(buffer, direction: direction) }
    }
    public func connectionClosed() {
        for tap in taps { tap.connectionClosed() }
    }
}
