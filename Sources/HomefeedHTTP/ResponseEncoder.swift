/// Serialises responses straight into a byte buffer (no Foundation, no intermediate Strings).
enum ResponseEncoder {
    /// Appends status line, headers and (unless `headOnly`) body.
    /// `close` adds "Connection: close"; `http10KeepAlive` adds "Connection: keep-alive", which
    /// HTTP/1.0 clients need to keep the connection.
    static func append(_ r: borrowing HTTPResponse, headOnly: Bool, close: Bool, http10KeepAlive: Bool,
                       to out: inout ByteBuffer) {
        let status = (100...999).contains(r.status) ? r.status : 500
        // 204 and 304 carry no body and no Content-Length (RFC 9110 §8.6).
        let bodyless = status == 204 || status == 304
        out.reserve(128 + (headOnly || bodyless ? 0 : r.body.count))
        out.append("HTTP/1.1 ")
        out.append(decimal: status)
        out.append(byte: 0x20)
        out.append(reasonPhrase(status))
        out.append("\r\n")
        if r.contentType.utf8CodeUnitCount > 0 {
            out.append("Content-Type: ")
            out.append(r.contentType)
            out.append("\r\n")
        }
        if !bodyless {
            out.append("Content-Length: ")
            out.append(decimal: r.body.count)
            out.append("\r\n")
        }
        if close {
            out.append("Connection: close\r\n")
        } else if http10KeepAlive {
            out.append("Connection: keep-alive\r\n")
        }
        for (name, value) in r.extraHeaders {
            appendSanitized(name, to: &out)
            out.append(": ")
            appendSanitized(value, to: &out)
            out.append("\r\n")
        }
        out.append("\r\n")
        if !headOnly && !bodyless {
            r.body.withUnsafeBytes { out.append($0) }
        }
    }

    /// Drops CR and LF so a handler-supplied header can never split the response.
    private static func appendSanitized(_ s: String, to out: inout ByteBuffer) {
        for c in s.utf8 where c != 0x0d && c != 0x0a { out.append(byte: c) }
    }

    static func reasonPhrase(_ status: Int) -> StaticString {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: status < 400 ? "OK" : (status < 500 ? "Client Error" : "Server Error")
        }
    }
}

extension HTTPResponse {
    /// Makes this a JSON error response: `{"error":"<message>"}` with `status`.
    public mutating func setError(_ status: Int, _ message: String) {
        self.status = status
        contentType = "application/json"
        body.removeAll(keepingCapacity: true)
        appendJSONString("error", to: &body, prefix: "{")
        body.append(UInt8(ascii: ":"))
        appendJSONString(message, to: &body, prefix: "")
        body.append(UInt8(ascii: "}"))
    }
}

/// Appends `prefix` then `s` as a quoted JSON string.
func appendJSONString(_ s: String, to out: inout [UInt8], prefix: StaticString) {
    out.append(contentsOf: UnsafeRawBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
    out.append(UInt8(ascii: "\""))
    let hex: StaticString = "0123456789abcdef"
    for c in s.utf8 {
        switch c {
        case UInt8(ascii: "\""): out.append(contentsOf: [0x5c, 0x22])
        case UInt8(ascii: "\\"): out.append(contentsOf: [0x5c, 0x5c])
        case 0x0a: out.append(contentsOf: [0x5c, UInt8(ascii: "n")])
        case 0x0d: out.append(contentsOf: [0x5c, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5c, UInt8(ascii: "t")])
        case 0..<0x20:
            out.append(contentsOf: Array("\\u00".utf8))
            out.append(hex.utf8Start[Int(c >> 4)])
            out.append(hex.utf8Start[Int(c & 15)])
        default: out.append(c)
        }
    }
    out.append(UInt8(ascii: "\""))
}
