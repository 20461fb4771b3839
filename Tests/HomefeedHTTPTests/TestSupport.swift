import Foundation
import HomefeedHTTP

/// 256 KB of filler, built once (element-wise appends are slow in debug builds).
let bigFiller = [UInt8](repeating: UInt8(ascii: "x"), count: 256 * 1024)

/// Routes used by the live-server tests.
struct TestHandler: HTTPHandler {
    func handle(_ request: borrowing HTTPRequest, _ response: inout HTTPResponse) {
        response.contentType = "text/plain"
        if request.pathIs("/echo") {
            let method = String(decoding: request.methodName, as: UTF8.self)
            let header = request.header("x-test").map { String(decoding: $0, as: UTF8.self) } ?? "-"
            response.body.append(contentsOf: "\(method)|\(request.pathString)|\(request.queryString)|\(header)|".utf8)
            response.body.append(contentsOf: request.body)
        } else if request.pathIs("/close") {
            response.closeConnection = true
            response.body.append(contentsOf: "bye".utf8)
        } else if request.pathIs("/big") {
            // 256 KB whose first line names the query, so tests can check order.
            response.body.append(contentsOf: "\(request.queryString)\n".utf8)
            response.body.append(contentsOf: bigFiller[response.body.count...])
        } else if request.pathIs("/status") {
            let code = request.queryValue("code").flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 200
            response.status = code
            response.extraHeaders.append(("Retry-After", "7"))
            response.body.append(contentsOf: "status \(code)".utf8)
        } else {
            response.setError(404, "no route for \(request.pathString)")
        }
    }
}

/// Starts a server on an ephemeral loopback port.
func startServer(threads: Int = 2, maxHeaderBytes: Int = 8192, maxBodyBytes: Int = 65536,
                 maxConnections: Int = 10000, idleTimeoutSeconds: Double = 30) throws -> HTTPServer {
    let config = HTTPServerConfig(host: "127.0.0.1", port: 0, threads: threads, maxHeaderBytes: maxHeaderBytes,
                                  maxBodyBytes: maxBodyBytes, maxConnections: maxConnections,
                                  idleTimeoutSeconds: idleTimeoutSeconds)
    let server = try HTTPServer(config: config, handler: TestHandler())
    try server.start()
    return server
}

func connect(_ server: HTTPServer, timeout: Double = 5) throws -> HTTPClient {
    try HTTPClient(host: "127.0.0.1", port: server.port, timeoutSeconds: timeout)
}

/// Runs `body(i)` on `count` real threads (blocking socket I/O stays off the test's cooperative pool) and waits.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let thread = Thread {
            body(i)
            group.leave()
        }
        thread.start()
    }
    group.wait()
}

/// Polls `condition` until true or `timeout` seconds pass (stats are updated by the worker threads).
func eventually(timeout: Double = 2, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

extension HTTPParseResult {
    var request: HTTPRequest? {
        if case .complete(let r, _) = self { return r }
        return nil
    }
    var consumed: Int? {
        if case .complete(_, let n) = self { return n }
        return nil
    }
    var error: HTTPParseError? {
        if case .error(let e) = self { return e }
        return nil
    }
    var isIncomplete: Bool {
        if case .incomplete = self { return true }
        return false
    }
}

extension UnsafeRawBufferPointer {
    var string: String { String(decoding: self, as: UTF8.self) }
}

/// Parses `text` with the given limits (the buffer is only valid inside `body`).
func parse<R>(_ text: String, maxHeaderBytes: Int = 8192, maxBodyBytes: Int = 65536,
              _ body: (HTTPParseResult) -> R) -> R {
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBytes { body(HTTPParser.parse($0, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes)) }
}

/// Deterministic PRNG so randomized tests replay identically.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
