import CSystem
import Glibc

/// A response read by `HTTPClient`. Header names are lowercased; repeated headers are joined with ", ".
public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]
    public var bodyString: String { String(decoding: body, as: UTF8.self) }
}

public struct HTTPClientError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable { case connect, timeout, closed, malformed, io }
    public let kind: Kind
    public let message: String
    public var description: String { message }
}

/// Tiny blocking HTTP/1.1 client for tests and benchmarks: one kept-alive connection, with send and
/// receive timeouts so a test can never hang. Copies share the connection (reference semantics);
/// the socket closes when the last copy goes away or on `close()`. Not thread-safe: one per thread.
public struct HTTPClient {
    private final class Socket {
        var fd: Int32
        let timeoutSeconds: Double
        var buffer: [UInt8] = []  // received, not yet consumed
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        init(fd: Int32, timeoutSeconds: Double) {
            self.fd = fd
            self.timeoutSeconds = timeoutSeconds
        }
        deinit { if fd >= 0 { Glibc.close(fd) } }
    }

    private let socket: Socket
    public let host: String
    public let port: Int

    /// Connects (blocking) to host:port with TCP_NODELAY; `timeoutSeconds` bounds every read and write.
    public init(host: String = "127.0.0.1", port: Int, timeoutSeconds: Double = 5) throws(HTTPClientError) {
        self.host = host
        self.port = port
        let addresses: [Posix.Address]
        do {
            addresses = try Posix.resolve(host: host, port: port, passive: false)
        } catch {
            throw HTTPClientError(kind: .connect, message: error.description)
        }
        var lastErrno: Int32 = 0
        for var address in addresses {
            let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastErrno = errno; continue }
            Posix.setTimeout(fd, SO_RCVTIMEO, seconds: timeoutSeconds)
            Posix.setTimeout(fd, SO_SNDTIMEO, seconds: timeoutSeconds)
            Posix.setIntOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            if Posix.withSockaddr(&address, { Glibc.connect(fd, $0, $1) }) == 0 {
                socket = Socket(fd: fd, timeoutSeconds: timeoutSeconds)
                return
            }
            lastErrno = errno
            Glibc.close(fd)
        }
        throw HTTPClientError(kind: .connect,
                              message: "cannot connect to \(host):\(port): \(Posix.errorString(lastErrno))")
    }

    public static func connect(host: String = "127.0.0.1", port: Int, timeoutSeconds: Double = 5) throws(HTTPClientError) -> HTTPClient {
        try HTTPClient(host: host, port: port, timeoutSeconds: timeoutSeconds)
    }

    public func close() {
        if socket.fd >= 0 {
            Glibc.close(socket.fd)
            socket.fd = -1
        }
    }

    /// Writes all bytes (blocking).
    public func sendRaw(_ bytes: [UInt8]) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                send(socket.fd, $0.baseAddress.map { $0 + offset }, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 { offset += n; continue }
            let e = errno
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                throw HTTPClientError(kind: .timeout, message: "send to \(host):\(port) timed out")
            }
            throw HTTPClientError(kind: .io, message: "send to \(host):\(port): \(Posix.errorString(e))")
        }
    }

    public func sendRaw(_ text: String) throws(HTTPClientError) {
        try sendRaw(Array(text.utf8))
    }

    /// Sends one request (adds Host and, with a body or for POST/PUT, Content-Length) and reads the response.
    public func request(_ method: String = "GET", _ target: String, body: [UInt8] = [],
                        headers: [(String, String)] = []) throws(HTTPClientError) -> HTTPClientResponse {
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try sendRaw(Array(head.utf8) + body)
        return try readResponse(headOnly: method == "HEAD")
    }

    public func get(_ target: String) throws(HTTPClientError) -> HTTPClientResponse {
        try request("GET", target)
    }

    /// Reads one response. `headOnly`: the response to a HEAD request (Content-Length but no body).
    /// Without Content-Length the body runs to end of stream.
    public func readResponse(headOnly: Bool = false) throws(HTTPClientError) -> HTTPClientResponse {
        var headerEnd: Int
        while true {
            if let end = Self.findHeaderEnd(socket.buffer) { headerEnd = end; break }
            if try !fill() {
                throw HTTPClientError(kind: .closed, message: "connection closed by \(host):\(port) before a response")
            }
        }
        let head = String(decoding: socket.buffer[0..<headerEnd], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HTTPClientError(kind: .malformed, message: "malformed status line: \(statusLine)")
        }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else {
                throw HTTPClientError(kind: .malformed, message: "malformed header line: \(line)")
            }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            headers[name] = headers[name].map { "\($0), \(value)" } ?? value
        }
        socket.buffer.removeFirst(headerEnd + 4)

        var body: [UInt8] = []
        let bodyless = headOnly || status == 204 || status == 304 || (100..<200).contains(status)
        if bodyless {
            // nothing
        } else if let lengthText = headers["content-length"] {
            guard let length = Int(lengthText), length >= 0 else {
                throw HTTPClientError(kind: .malformed, message: "bad Content-Length: \(lengthText)")
            }
            while socket.buffer.count < length {
                if try !fill() {
                    throw HTTPClientError(kind: .closed, message: "connection closed mid-body (\(socket.buffer.count)/\(length) bytes)")
                }
            }
            body = Array(socket.buffer[0..<length])
            socket.buffer.removeFirst(length)
        } else {
            while try fill() {}
            body = socket.buffer
            socket.buffer.removeAll()
        }
        return HTTPClientResponse(status: status, headers: headers, body: body)
    }

    /// True if the peer closes (EOF or reset) within `timeoutSeconds`; buffered and arriving bytes are discarded.
    public func waitForClose(timeoutSeconds: Double = 2) -> Bool {
        let deadline = Posix.monotonicNanos() + Int64(timeoutSeconds * 1e9)
        socket.buffer.removeAll()
        defer { Posix.setTimeout(socket.fd, SO_RCVTIMEO, seconds: socket.timeoutSeconds) }
        while true {
            let remaining = Double(deadline - Posix.monotonicNanos()) / 1e9
            if remaining <= 0 { return false }
            Posix.setTimeout(socket.fd, SO_RCVTIMEO, seconds: remaining)
            do {
                if try !fill() { return true }
                socket.buffer.removeAll()
            } catch {
                if error.kind != .timeout { return true }  // reset counts as closed
            }
        }
    }

    /// Reads more bytes into the buffer; false on EOF. Throws on timeout or error (a reset is `.closed`).
    private func fill() throws(HTTPClientError) -> Bool {
        guard socket.fd >= 0 else { throw HTTPClientError(kind: .closed, message: "client is closed") }
        while true {
            let fd = socket.fd
            let n = socket.chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                socket.buffer.append(contentsOf: socket.chunk[0..<n])
                return true
            }
            if n == 0 { return false }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                throw HTTPClientError(kind: .timeout, message: "read from \(host):\(port) timed out")
            }
            if e == ECONNRESET {
                throw HTTPClientError(kind: .closed, message: "connection reset by \(host):\(port)")
            }
            throw HTTPClientError(kind: .io, message: "recv from \(host):\(port): \(Posix.errorString(e))")
        }
    }

    private static func findHeaderEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 {
            return i
        }
        return nil
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
