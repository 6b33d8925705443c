import Foundation

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

/// Writes `bytes` to `path` as a file holding session data: mode 0600 whether it is new or was
/// there before (a mode given when creating does not change an existing file's).
public func writeSessionFile(_ bytes: [UInt8], to path: String) throws(FileWriteError) {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
    defer { close(descriptor) }
    _ = fchmod(descriptor, 0o600)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw FileWriteError(path: path, reason: String(cString: strerror(errno)))
        }
        written += count
    }
}

/// A file that could not be written, in plain words.
public struct FileWriteError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "cannot write \(path): \(reason)" }
}
