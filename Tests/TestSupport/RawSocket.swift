import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP client for hostile-client tests.
public final class RawSocket: @unchecked Sendable {  // one test uses each
    public let fd: Int32

    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { throw PeerFailure(description: "cannot connect to \(port)") }
    }

    deinit { close(fd) }

    public func send(_ text: String) { send(bytes: Array(text.utf8)) }

    /// Sends every byte, or stops when the peer has closed (MSG_NOSIGNAL: a closed peer is a
    /// failed send, not a SIGPIPE that ends the test process); whether all went.
    @discardableResult
    public func send(bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    /// Whether the peer closes the connection within `seconds` (whatever it sends before).
    public func isClosed(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            if recv(fd, &buffer, buffer.count, 0) <= 0 { return true }
        }
        return false
    }

    /// What arrives within `timeout` seconds, until the peer closes or stops sending.
    public func receive(timeout: Double = 2) -> String {
        String(decoding: receiveBytes(timeout: timeout), as: UTF8.self)
    }

    public func receiveBytes(timeout: Double = 2) -> [UInt8] {
        var collected: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else {
                if !collected.isEmpty { break }
                continue
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            collected += buffer.prefix(count)
        }
        return collected
    }
}
