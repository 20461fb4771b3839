import Glibc

public enum HTTPMethod: Sendable, Equatable {
    case get, head, post, put, delete, options, other
}

/// One parsed request: a zero-copy view into the connection's input buffer.
///
/// Valid only during the handler call (the bytes are reused for the next read); copy out
/// anything that must outlive it. All byte views are raw wire bytes (still percent-encoded).
public struct HTTPRequest {
    public var method: HTTPMethod
    /// The method token as sent (useful when `method == .other`).
    public var methodName: UnsafeRawBufferPointer
    /// Request target before '?', still percent-encoded.
    public var path: UnsafeRawBufferPointer
    /// Request target after '?' (without it), still encoded; empty if none.
    public var query: UnsafeRawBufferPointer
    public var body: UnsafeRawBufferPointer
    /// Whether the connection stays open after the response (version default + Connection header).
    public var keepAlive: Bool
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 (and later 1.x, treated as 1.1).
    public var minorVersion: Int
    /// Header lines (after the request line, without the blank line); scanned lazily by `header(_:)`.
    var headerBlock: UnsafeRawBufferPointer

    /// Value of the first header named `lowercaseName` (ASCII case-insensitive), trimmed; nil if absent.
    /// Scans the header block on each call: no per-request index is built because handlers rarely ask.
    public func header(_ lowercaseName: String) -> UnsafeRawBufferPointer? {
        var name = lowercaseName
        return name.withUTF8 { want in
            var found: UnsafeRawBufferPointer?
            HeaderScanner.forEach(headerBlock) { n, v in
                if n.count == want.count && asciiCaseInsensitiveEqual(n, UnsafeRawBufferPointer(want)) {
                    found = v
                    return false
                }
                return true
            }
            return found
        }
    }

    /// Path as a String (allocates; convenience for logs and tests).
    public var pathString: String { String(decoding: path, as: UTF8.self) }
    /// Query as a String (allocates).
    public var queryString: String { String(decoding: query, as: UTF8.self) }
    /// Body as a String (allocates).
    public var bodyString: String { String(decoding: body, as: UTF8.self) }

    /// True when the path equals `s` byte for byte; no allocation, for routing.
    public func pathIs(_ s: StaticString) -> Bool {
        guard path.count == s.utf8CodeUnitCount else { return false }
        guard let p = path.baseAddress, path.count > 0 else { return true }
        return memcmp(p, s.utf8Start, path.count) == 0
    }

    /// Raw (still encoded) value of the first `name=value` pair in the query; "" for `name` or `name=`.
    public func queryValue(_ name: String) -> UnsafeRawBufferPointer? {
        var name = name
        return name.withUTF8 { want in
            var start = 0
            let q = query
            while start <= q.count {
                var end = start
                while end < q.count && q[end] != UInt8(ascii: "&") { end += 1 }
                var eq = start
                while eq < end && q[eq] != UInt8(ascii: "=") { eq += 1 }
                let key = UnsafeRawBufferPointer(rebasing: q[start..<eq])
                if key.elementsEqual(want) {
                    return UnsafeRawBufferPointer(rebasing: q[min(eq + 1, end)..<end])
                }
                start = end + 1
            }
            return nil
        }
    }
}

/// What the handler fills in. The server reuses one per worker: `body` and `extraHeaders` are
/// cleared with `keepingCapacity` before each call, so appending into `body` allocates nothing in
/// steady state. (Assigning a shared array works too but costs an allocation at the next reset.)
public struct HTTPResponse {
    public var status: Int = 200
    /// Sent as the Content-Type header; "" omits the header.
    public var contentType: StaticString = "application/json"
    public var body: [UInt8]
    /// Rarely used headers, e.g. ("Retry-After", "1"). CR/LF in them are dropped on output.
    public var extraHeaders: [(String, String)]
    /// Set to close the connection after this response.
    public var closeConnection: Bool = false

    public init(status: Int = 200, contentType: StaticString = "application/json", body: [UInt8] = [],
                extraHeaders: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.extraHeaders = extraHeaders
    }

    /// Back to a fresh 200 while keeping the buffers' capacity.
    public mutating func reset() {
        status = 200
        contentType = "application/json"
        body.removeAll(keepingCapacity: true)
        if !extraHeaders.isEmpty { extraHeaders.removeAll(keepingCapacity: true) }
        closeConnection = false
    }
}

/// Request handler. Runs inline on a server worker thread, so it must not block for long.
public protocol HTTPHandler: Sendable {
    func handle(_ request: borrowing HTTPRequest, _ response: inout HTTPResponse)
}
