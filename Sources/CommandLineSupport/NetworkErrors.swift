public import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Network failures in plain words, for every tool: what was tried, where, and what to do,
/// instead of NIO's own descriptions (`bind(descriptor:ptr:bytes:): Address already in use)
/// (errno: 98)`, `SingleConnectionFailure(target: [IPv4]…)`).
public enum NetworkErrorText {
    /// Why listening on `host:port` failed; `option` names the flag that chooses the address.
    public static func listening(_ error: any Error, host: String, port: Int, option: String? = nil,
                                 tool: String = "wmq-mock") -> String {
        let address = "\(host):\(port)"
        switch errno(of: error) {
        case EADDRINUSE?:
            return "\(address) is already in use (another \(tool)?)" + (option.map { "; choose another with \($0) HOST:PORT" } ?? "")
        case EACCES?:
            return "\(address) needs privileges to listen on (ports below 1024 do)" + (option.map { "; choose another with \($0) HOST:PORT" } ?? "")
        case EADDRNOTAVAIL?:
            return "\(host) is no address of this machine" + (option.map { "; give one of its own with \($0) HOST:PORT" } ?? "")
        default:
            return "cannot listen on \(address): \(plain(error))"
        }
    }

    /// Why connecting to `host:port` failed.
    public static func connecting(_ error: any Error, host: String, port: Int) -> String {
        let address = "\(host):\(port)"
        switch errno(of: error) {
        case ECONNREFUSED?: return "nothing listens on \(address) (connection refused)"
        case ETIMEDOUT?: return "\(address) did not answer (timed out)"
        case EHOSTUNREACH?, ENETUNREACH?: return "\(address) cannot be reached from here (no route)"
        case ECONNRESET?: return "\(address) closed the connection at once (reset)"
        default: break
        }
        if let error = error as? NIOConnectionError, error.connectionErrors.isEmpty, error.dnsAError != nil || error.dnsAAAAError != nil {
            return "\(host) has no address (the name does not resolve)"
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return "\(address) did not answer (timed out)" }
        return "cannot connect to \(address): \(plain(error))"
    }

    /// The errno behind an error, looking inside NIO's connection errors.
    public static func errno(of error: any Error) -> CInt? {
        if let error = error as? IOError { return error.errnoCode }
        if let error = error as? NIOConnectionError {
            for failure in error.connectionErrors {
                if let code = errno(of: failure.error) { return code }
            }
        }
        return nil
    }

    /// An error's own words, without NIO's call-site prefixes and errno numbers.
    static func plain(_ error: any Error) -> String {
        if let error = error as? IOError {
            return String(cString: strerror(error.errnoCode)).lowercased()
        }
        return "\(error)"
    }
}

/// A file that could not be read, with why in plain words.
public struct FileReadError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let why: String
    public var reason: String { "\(path): \(why)" }
    public var description: String { reason }
}

/// A file's bytes; the error says why not: no such file, a directory, no permission, too large.
public func readFile(_ path: String, maximumBytes: Int = 1 << 30) throws(FileReadError) -> [UInt8] {
    var status = stat()
    guard stat(path, &status) == 0 else {
        let code = Glibc.errno
        throw FileReadError(path: path, why: code == ENOENT ? "no such file" : String(cString: strerror(code)).lowercased())
    }
    if status.st_mode & S_IFMT == S_IFDIR { throw FileReadError(path: path, why: "is a directory, not a file") }
    if Int(status.st_size) > maximumBytes { throw FileReadError(path: path, why: "too large (\(status.st_size) bytes)") }
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else {
        let code = Glibc.errno
        throw FileReadError(path: path, why: code == EACCES ? "permission denied (not readable by this user)"
                                                             : String(cString: strerror(code)).lowercased())
    }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if Glibc.errno == EINTR { continue }
            throw FileReadError(path: path, why: String(cString: strerror(Glibc.errno)).lowercased())
        }
        if count == 0 { break }
        bytes += chunk[0..<count]
        if bytes.count > maximumBytes { throw FileReadError(path: path, why: "too large") }
    }
    return bytes
}

/// A text file's contents (UTF-8); the error says why not.
public func readTextFile(_ path: String) throws(FileReadError) -> String {
    let bytes = try readFile(path)
    guard let text = String(validating: bytes, as: UTF8.self) else { throw FileReadError(path: path, why: "is not UTF-8 text") }
    return text
}
