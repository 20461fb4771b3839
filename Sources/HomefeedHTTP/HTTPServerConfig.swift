/// Settings for `HTTPServer`. Defaults suit the lookup daemon on loopback.
public struct HTTPServerConfig: Sendable {
    /// Address to bind; loopback unless told otherwise. IPv4, IPv6 or a resolvable name.
    public var host: String = "127.0.0.1"
    /// TCP port; 0 picks an ephemeral port (read it back from `HTTPServer.port`).
    public var port: Int = 8080
    /// Worker threads; 0 = the CPUs this process may run on (honours taskset).
    public var threads: Int = 0
    /// Request line + headers + blank line; larger → 431 and close.
    public var maxHeaderBytes: Int = 8192
    /// Content-Length above this → 413 and close.
    public var maxBodyBytes: Int = 65536
    /// Open connections beyond this are accepted, answered 503 and closed at once (counted).
    public var maxConnections: Int = 10000
    /// Keep-alive connections with no traffic for this long are closed.
    public var idleTimeoutSeconds: Double = 60
    /// listen(2) backlog.
    public var backlog: Int32 = 1024

    public init(host: String = "127.0.0.1", port: Int = 8080, threads: Int = 0,
                maxHeaderBytes: Int = 8192, maxBodyBytes: Int = 65536, maxConnections: Int = 10000,
                idleTimeoutSeconds: Double = 60, backlog: Int32 = 1024) {
        self.host = host
        self.port = port
        self.threads = threads
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxConnections = maxConnections
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.backlog = backlog
    }

    /// Parses "HOST:PORT", "[IPV6]:PORT" or ":PORT" (host defaults to 127.0.0.1, never to all interfaces).
    public static func parseListen(_ s: String) throws(HTTPConfigError) -> (host: String, port: Int) {
        let hostPart: Substring
        let portPart: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else {
                throw HTTPConfigError("listen address '\(s)': missing ']' after IPv6 host")
            }
            hostPart = s[s.index(after: s.startIndex)..<close]
            let rest = s[s.index(after: close)...]
            guard rest.first == ":" else {
                throw HTTPConfigError("listen address '\(s)': expected ':PORT' after ']'")
            }
            portPart = rest.dropFirst()
        } else {
            guard let colon = s.lastIndex(of: ":") else {
                throw HTTPConfigError("listen address '\(s)': expected HOST:PORT, [IPV6]:PORT or :PORT")
            }
            hostPart = s[..<colon]
            portPart = s[s.index(after: colon)...]
            if hostPart.contains(":") {
                throw HTTPConfigError("listen address '\(s)': put IPv6 hosts in brackets, e.g. [::1]:8080")
            }
        }
        guard !portPart.isEmpty, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portPart), port <= 65535 else {
            throw HTTPConfigError("listen address '\(s)': port '\(portPart)' is not a number in 0...65535")
        }
        return (hostPart.isEmpty ? "127.0.0.1" : String(hostPart), port)
    }
}

/// A configuration value that cannot be used; the message names the value and what is wrong.
public struct HTTPConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
