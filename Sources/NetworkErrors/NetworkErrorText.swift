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
