/// Why a request could not be parsed; `status` is the response the server sends (then it closes).
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Not an error on a socket (wait for more bytes); only `withParsedRequest` reports it.
        case incomplete
        case badRequest            // 400
        case lengthRequired        // 411: Transfer-Encoding instead of Content-Length
        case bodyTooLarge          // 413
        case headersTooLarge       // 431
        case versionNotSupported   // 505
    }
    public let kind: Kind
    /// Human-readable cause, sent as {"error": message}.
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var status: Int {
        switch kind {
        case .incomplete, .badRequest: 400
        case .lengthRequired: 411
        case .bodyTooLarge: 413
        case .headersTooLarge: 431
        case .versionNotSupported: 505
        }
    }

    public var description: String { "\(status): \(message)" }
}

public enum HTTPParseResult {
    /// One request parsed; `consumed` bytes (headers + body) belong to it, pipelined bytes follow.
    case complete(HTTPRequest, consumed: Int)
    /// More bytes needed; `needed` is the total buffer length required when known (headers parsed,
    /// body still arriving), else 0.
    case incomplete(needed: Int)
    case error(HTTPParseError)
}

/// HTTP/1.x request parser over a byte buffer: no allocation, no copying, no sockets.
///
/// Accepts CRLF or bare LF line ends and ignores empty lines before the request line (RFC 9112 §2.2).
/// Rejects: malformed request line or headers, obs-fold, whitespace before ':', control characters
/// (400); Transfer-Encoding (411, bodies must use Content-Length); conflicting or invalid
/// Content-Length (400); Content-Length > maxBodyBytes (413); request line + headers > maxHeaderBytes
/// (431); HTTP major version other than 1 (505). Host is not required (loopback service).
/// Errors in the request line or a header line are reported as soon as that line is bad, before the
/// rest of the request has arrived.
public enum HTTPParser {
    private static let CR: UInt8 = 0x0d
    private static let LF: UInt8 = 0x0a
    private static let SP: UInt8 = 0x20

    /// Parses the request at the start of `b`.
    public static func parse(_ b: UnsafeRawBufferPointer, maxHeaderBytes: Int, maxBodyBytes: Int) -> HTTPParseResult {
        let n = b.count
        let limit = min(n, maxHeaderBytes)
        // Out of bytes before the end of the header section: too large if the limit is what stopped us.
        var needMore: HTTPParseResult {
            n >= maxHeaderBytes
                ? .error(HTTPParseError(.headersTooLarge,
                                        "request line and headers exceed \(maxHeaderBytes) bytes (max_header_bytes)"))
                : .incomplete(needed: 0)
        }

        var i = 0
        while i < limit && (b[i] == CR || b[i] == LF) { i += 1 }

        // Method.
        let methodStart = i
        while i < limit && isTokenChar(b[i]) { i += 1 }
        if i == limit { return needMore }
        guard b[i] == SP, i > methodStart else {
            return .error(HTTPParseError(.badRequest, "malformed request line: expected METHOD SP TARGET SP HTTP/1.x"))
        }
        let methodEnd = i
        i += 1

        // Target, split at the first '?'.
        let targetStart = i
        var queryMark = -1
        while i < limit {
            let c = b[i]
            if c == SP { break }
            guard isTargetChar(c) else {
                return .error(HTTPParseError(.badRequest, "malformed request line: control character in request target"))
            }
            if c == UInt8(ascii: "?") && queryMark < 0 { queryMark = i }
            i += 1
        }
        if i == limit { return needMore }
        guard i > targetStart else {
            return .error(HTTPParseError(.badRequest, "malformed request line: empty request target"))
        }
        let targetEnd = i
        i += 1

        // Version: "HTTP/" DIGIT "." DIGIT, then CRLF or LF.
        let prefix: StaticString = "HTTP/"
        for k in 0..<5 {
            if i + k == limit { return needMore }
            if b[i + k] != prefix.utf8Start[k] {
                return .error(HTTPParseError(.badRequest, "malformed request line: expected HTTP/1.x after the target"))
            }
        }
        if i + 8 > limit { return needMore }
        let major = b[i + 5] &- 48, dot = b[i + 6], minor = b[i + 7] &- 48
        guard major < 10, dot == UInt8(ascii: "."), minor < 10 else {
            return .error(HTTPParseError(.badRequest, "malformed request line: expected HTTP/1.x after the target"))
        }
        guard major == 1 else {
            return .error(HTTPParseError(.versionNotSupported,
                                         "HTTP version \(major).\(minor) is not supported (use HTTP/1.1 or HTTP/1.0)"))
        }
        i += 8
        if i == limit { return needMore }
        if b[i] == CR {
            if i + 1 == limit { return needMore }
            i += 1
        }
        guard b[i] == LF else {
            return .error(HTTPParseError(.badRequest, "malformed request line: unexpected bytes after the HTTP version"))
        }
        i += 1

        // Headers.
        let headersStart = i
        var headersEnd = i
        var contentLength = -1
        var bodyTooLarge = false
        var connectionClose = false
        var connectionKeepAlive = false
        var transferEncoding = false
        while true {
            if i == limit { return needMore }
            let first = b[i]
            if first == CR || first == LF {  // blank line ends the header section
                headersEnd = i
                if first == CR {
                    if i + 1 == limit { return needMore }
                    guard b[i + 1] == LF else {
                        return .error(HTTPParseError(.badRequest, "malformed header section: CR not followed by LF"))
                    }
                    i += 1
                }
                i += 1
                break
            }
            if isOWS(first) {
                return .error(HTTPParseError(.badRequest, "obsolete header line folding is not supported"))
            }
            let nameStart = i
            while i < limit && isTokenChar(b[i]) { i += 1 }
            if i == limit { return needMore }
            guard b[i] == UInt8(ascii: ":") else {
                return .error(HTTPParseError(.badRequest, "malformed header line: expected 'Name: value' with a token name and no space before ':'"))
            }
            let name = UnsafeRawBufferPointer(rebasing: b[nameStart..<i])
            i += 1
            while i < limit && isOWS(b[i]) { i += 1 }
            let valueStart = i
            while i < limit {
                let c = b[i]
                if c == CR || c == LF { break }
                guard isFieldValueChar(c) else {
                    return .error(HTTPParseError(.badRequest, "malformed header line: control character in the value of a header"))
                }
                i += 1
            }
            if i == limit { return needMore }
            var valueEnd = i
            if b[i] == CR {
                if i + 1 == limit { return needMore }
                guard b[i + 1] == LF else {
                    return .error(HTTPParseError(.badRequest, "malformed header line: CR not followed by LF"))
                }
                i += 1
            }
            i += 1
            while valueEnd > valueStart && isOWS(b[valueEnd - 1]) { valueEnd -= 1 }
            let value = UnsafeRawBufferPointer(rebasing: b[valueStart..<valueEnd])

            // Only the headers that decide framing and persistence are interpreted here.
            switch name.count {
            case 14 where equalsLowercase(name, "content-length"):
                guard let parsed = parseContentLength(value, cap: maxBodyBytes) else {
                    return .error(HTTPParseError(.badRequest, "invalid Content-Length: expected a non-negative decimal number"))
                }
                if contentLength >= 0 && contentLength != parsed {
                    return .error(HTTPParseError(.badRequest, "conflicting Content-Length headers"))
                }
                contentLength = parsed
                if parsed > maxBodyBytes { bodyTooLarge = true }
            case 17 where equalsLowercase(name, "transfer-encoding"):
                transferEncoding = true
            case 10 where equalsLowercase(name, "connection"):
                scanConnectionTokens(value, close: &connectionClose, keepAlive: &connectionKeepAlive)
            default:
                break
            }
        }

        if transferEncoding {
            return .error(HTTPParseError(.lengthRequired,
                                         "Transfer-Encoding (e.g. chunked) is not supported: send the request body with Content-Length"))
        }
        if bodyTooLarge {
            return .error(HTTPParseError(.bodyTooLarge,
                                         "request body exceeds \(maxBodyBytes) bytes (max_body_bytes)"))
        }
        let bodyLength = max(contentLength, 0)
        let (total, overflow) = i.addingReportingOverflow(bodyLength)
        if overflow {
            return .error(HTTPParseError(.bodyTooLarge, "request body exceeds \(maxBodyBytes) bytes (max_body_bytes)"))
        }
        if n < total { return .incomplete(needed: total) }

        let methodBytes = UnsafeRawBufferPointer(rebasing: b[methodStart..<methodEnd])
        let pathEnd = queryMark >= 0 ? queryMark : targetEnd
        let queryStart = queryMark >= 0 ? queryMark + 1 : targetEnd
        let request = HTTPRequest(
            method: classifyMethod(methodBytes),
            methodName: methodBytes,
            path: UnsafeRawBufferPointer(rebasing: b[targetStart..<pathEnd]),
            query: UnsafeRawBufferPointer(rebasing: b[queryStart..<targetEnd]),
            body: UnsafeRawBufferPointer(rebasing: b[i..<total]),
            keepAlive: connectionClose ? false : (minor >= 1 || connectionKeepAlive),
            minorVersion: minor >= 1 ? 1 : 0,
            headerBlock: UnsafeRawBufferPointer(rebasing: b[headersStart..<headersEnd]))
        return .complete(request, consumed: total)
    }

    /// Parses one complete request held in `bytes` and runs `body` on it: the in-process entry point
    /// for benchmarks and tests that measure "parse + handler" without sockets. Trailing pipelined
    /// bytes are ignored; a truncated request yields an error of kind `.incomplete`.
    public static func withParsedRequest<R>(_ bytes: UnsafeRawBufferPointer, maxHeaderBytes: Int = 8192,
                                            maxBodyBytes: Int = 65536,
                                            _ body: (borrowing HTTPRequest) throws -> R) rethrows -> Result<R, HTTPParseError> {
        switch parse(bytes, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes) {
        case .complete(let request, _):
            return .success(try body(request))
        case .incomplete:
            return .failure(HTTPParseError(.incomplete, "incomplete request: more bytes needed"))
        case .error(let error):
            return .failure(error)
        }
    }

    static func classifyMethod(_ m: UnsafeRawBufferPointer) -> HTTPMethod {
        switch m.count {
        case 3:
            if m[0] == 0x47 && m[1] == 0x45 && m[2] == 0x54 { return .get }  // GET
            if m[0] == 0x50 && m[1] == 0x55 && m[2] == 0x54 { return .put }  // PUT
        case 4:
            if m.elementsEqual("HEAD".utf8) { return .head }
            if m.elementsEqual("POST".utf8) { return .post }
        case 6:
            if m.elementsEqual("DELETE".utf8) { return .delete }
        case 7:
            if m.elementsEqual("OPTIONS".utf8) { return .options }
        default:
            break
        }
        return .other
    }

    /// Digits only; values above `cap` are clamped to cap + 1 (so the caller answers 413, never overflows).
    static func parseContentLength(_ v: UnsafeRawBufferPointer, cap: Int) -> Int? {
        guard !v.isEmpty else { return nil }
        let clamp = cap < Int.max ? cap + 1 : Int.max
        var value = 0
        for c in v {
            let d = c &- 48
            guard d < 10 else { return nil }
            if value < clamp {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int(d))
                value = o1 || o2 ? clamp : sum
            }
        }
        return min(value, clamp)
    }

    /// Comma-separated, case-insensitive tokens of a Connection header.
    static func scanConnectionTokens(_ v: UnsafeRawBufferPointer, close: inout Bool, keepAlive: inout Bool) {
        var start = 0
        while start < v.count {
            var end = start
            while end < v.count && v[end] != UInt8(ascii: ",") { end += 1 }
            var s = start, e = end
            while s < e && isOWS(v[s]) { s += 1 }
            while e > s && isOWS(v[e - 1]) { e -= 1 }
            let token = UnsafeRawBufferPointer(rebasing: v[s..<e])
            if equalsLowercase(token, "close") { close = true }
            else if equalsLowercase(token, "keep-alive") { keepAlive = true }
            start = end + 1
        }
    }
}
