import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Loopback ports for network tests: every test binds 127.0.0.1.
public enum LoopbackPorts {
    /// A port nobody listens on now (the kernel's choice), for peers that cannot be told to
    /// pick one themselves.
    public static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PeerFailure(description: "socket() failed") }
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw PeerFailure(description: "no free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` now.
    public static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Waits (at most `seconds`) until something accepts connections on `port`: a peer's
    /// "listening" line can come before its socket listens.
    public static func waitUntilAccepting(_ port: Int, seconds: Double = 10) async throws {
        try await onOwnThread {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if accepts(port) { return }
                usleep(20_000)
            }
            throw PeerFailure(description: "nothing accepts connections on port \(port)")
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }
}
