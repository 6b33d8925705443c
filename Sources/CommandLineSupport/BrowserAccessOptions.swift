public import ArgumentParser
public import LiveWebSocket

/// `--allow-origin` and `--allow-host`, for every tool that serves WebSocket or HTTP on this
/// machine (wmq-mock, wmq-replay serve, wmq-capture proxy): which browser pages besides the
/// server's own may use it, and which host names besides its addresses and localhost.
public struct BrowserAccessOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("allow-origin"), help: ArgumentHelp(
        "Let pages of this origin use the server (repeatable): an origin such as http://localhost:5173, a port alone (that port on localhost, 127.0.0.1 and [::1]: a frontend dev server), null, or * for any page at all. Without it only the server's own page, programs (no Origin header) and the Works web client's origin are served; other pages get 403.",
        valueName: "origin"))
    public var allowOrigin: [String] = []

    @Option(name: .customLong("allow-host"), help: ArgumentHelp(
        "Answer requests for this host name too (repeatable). Requests must name the server by an IP address or localhost; other names get 403, which stops DNS rebinding.",
        valueName: "name"))
    public var allowHost: [String] = []

    public init() {}

    /// The rules these options give; a value that is no origin or host name is a usage error.
    public func access() throws -> BrowserAccess {
        do throws(BrowserAccessError) {
            var origins = [BrowserAccess.worksWebOrigin]
            for value in allowOrigin { origins += try BrowserAccess.origins(allowing: value) }
            var hosts: [String] = []
            for value in allowHost { hosts.append(try BrowserAccess.hostName(allowing: value)) }
            return BrowserAccess(allowedOrigins: origins, allowedHosts: hosts)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
