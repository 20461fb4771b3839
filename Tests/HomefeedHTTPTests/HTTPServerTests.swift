import Foundation
import Synchronization
import HomefeedHTTP
import Testing

@Suite("HTTPServer (live, loopback)")
struct HTTPServerTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        for i in 0..<5 {
            let r = try client.request("GET", "/echo?i=\(i)", headers: [("X-Test", "t\(i)")])
            #expect(r.status == 200)
            #expect(r.bodyString == "GET|/echo|i=\(i)|t\(i)|")
            #expect(r.headers["content-type"] == "text/plain")
            #expect(r.headers["content-length"] == String(r.body.count))
            #expect(r.headers["connection"] == nil)
        }
        #expect(eventually { server.stats.requests == 5 })
        #expect(server.stats.accepted == 1)
        #expect(server.stats.openConnections == 1)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        var raw = ""
        for i in 0..<10 { raw += "GET /echo?n=\(i) HTTP/1.1\r\nHost: x\r\n\r\n" }
        raw += "POST /echo?n=10 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
        try client.sendRaw(raw)
        for i in 0..<10 {
            #expect(try client.readResponse().bodyString == "GET|/echo|n=\(i)|-|")
        }
        #expect(try client.readResponse().bodyString == "POST|/echo|n=10|-|body")
    }

    /// One worker, many connections each pipelining 50 medium responses (~150 KB each, past the flush threshold, so
    /// the batch's replies are sent mid-batch): every connection still gets exactly its own answers, in order.
    @Test func batchRepliesAcrossManyPipelinedConnections() throws {
        let server = try startServer(threads: 1)
        defer { server.stop() }
        let pad = String(repeating: "p", count: 3000)
        let clients = try (0..<30).map { _ in try connect(server, timeout: 10) }
        for (c, client) in clients.enumerated() {
            var raw = ""
            for i in 0..<50 { raw += "GET /echo?c=\(c)&i=\(i)&\(pad) HTTP/1.1\r\nHost: x\r\n\r\n" }
            try client.sendRaw(raw)
        }
        for (c, client) in clients.enumerated() {
            for i in 0..<50 {
                #expect(try client.readResponse().bodyString == "GET|/echo|c=\(c)&i=\(i)&\(pad)|-|")
            }
        }
        #expect(eventually { server.stats.requests == 1500 })
    }

    @Test func requestDeliveredByteByByte() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        let raw = Array("POST /echo?slow=1 HTTP/1.1\r\nX-Test: drip\r\nContent-Length: 3\r\n\r\nabc".utf8)
        for byte in raw {
            try client.sendRaw([byte])
            usleep(500)
        }
        let r = try client.readResponse()
        #expect(r.status == 200)
        #expect(r.bodyString == "POST|/echo|slow=1|drip|abc")
        #expect(try client.get("/echo").status == 200)  // connection still usable
    }

    @Test func pipelinedStreamInRandomPiecesIsAnsweredInOrder() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        var stream: [UInt8] = []
        for i in 0..<60 {
            stream += Array((i % 3 == 0
                ? "POST /echo?\(i) HTTP/1.1\r\nContent-Length: \(i)\r\n\r\n" + String(repeating: "p", count: i)
                : "GET /echo?\(i) HTTP/1.1\r\nX-Test: \(i)\r\n\r\n").utf8)
        }
        var rng = SplitMix64(seed: 7)
        var offset = 0
        while offset < stream.count {
            let n = min(Int.random(in: 1...40, using: &rng), stream.count - offset)
            try client.sendRaw(Array(stream[offset..<(offset + n)]))
            offset += n
            if Int.random(in: 0..<4, using: &rng) == 0 { usleep(200) }
        }
        for i in 0..<60 {
            let expected = i % 3 == 0 ? "POST|/echo|\(i)|-|" + String(repeating: "p", count: i) : "GET|/echo|\(i)|\(i)|"
            #expect(try client.readResponse().bodyString == expected)
        }
    }

    @Test func postWithBody() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        let small = try client.request("POST", "/echo", body: Array("hello".utf8))
        #expect(small.bodyString == "POST|/echo||-|hello")
        let payload = (0..<60_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let large = try client.request("PUT", "/echo", body: payload)
        #expect(large.status == 200)
        #expect(Array(large.body.suffix(payload.count)) == payload)
    }

    @Test func largeResponsesPipelinedWithoutReadingUsePartialWrites() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server, timeout: 10)
        // 40 × 256 KB = 10 MB of responses: far more than the socket buffers, so the server must
        // keep the remainder, wait for EPOLLOUT and resume the pipelined requests in order.
        var raw = ""
        for i in 0..<40 { raw += "GET /big?\(i) HTTP/1.1\r\n\r\n" }
        try client.sendRaw(raw)
        for i in 0..<40 {
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.body.count == 256 * 1024)
            #expect(r.body.prefix(while: { $0 != 10 }) == ArraySlice("\(i)".utf8), "response \(i) out of order")
        }
        #expect(try client.get("/echo").status == 200)
    }

    @Test func headReturnsHeadersOnly() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        let head = try client.request("HEAD", "/echo")
        #expect(head.status == 200)
        #expect(head.headers["content-length"] == "14")  // "HEAD|/echo||-|": the body a GET-like handler made
        #expect(head.body.isEmpty)
        // Had a body been sent, this response would be misparsed.
        #expect(try client.get("/echo?after=head").bodyString == "GET|/echo|after=head|-|")
    }

    @Test func statusExtraHeadersAndNoContent() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        let r = try client.get("/status?code=429")
        #expect(r.status == 429)
        #expect(r.headers["retry-after"] == "7")
        let empty = try client.get("/status?code=204")
        #expect(empty.status == 204)
        #expect(empty.headers["content-length"] == nil)
        #expect(empty.body.isEmpty)
        let missing = try client.get("/nope")
        #expect(missing.status == 404)
        #expect(missing.bodyString == #"{"error":"no route for /nope"}"#)
        #expect(try client.get("/echo").status == 200)
    }

    @Test func oversizedHeadersGet431AndServerKeepsServing() throws {
        let server = try startServer(maxHeaderBytes: 1024)
        defer { server.stop() }
        let other = try connect(server)
        #expect(try other.get("/echo").status == 200)

        let client = try connect(server)
        try client.sendRaw("GET /echo HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 4000) + "\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.status == 431)
        #expect(r.headers["connection"] == "close")
        #expect(r.headers["content-type"] == "application/json")
        #expect(r.bodyString.contains("1024 bytes"))
        #expect(client.waitForClose())

        #expect(try other.get("/echo?still=1").status == 200)
        #expect(try connect(server).get("/echo").status == 200)
        #expect(eventually { server.stats.badRequests == 1 })
    }

    @Test func oversizedBodyGets413() throws {
        let server = try startServer(maxBodyBytes: 1000)
        defer { server.stop() }
        let client = try connect(server)
        try client.sendRaw("POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "b", count: 5000))
        let r = try client.readResponse()
        #expect(r.status == 413)
        #expect(r.bodyString.contains("max_body_bytes"))
        #expect(client.waitForClose())
    }

    @Test func garbageGets400AndClose() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        try client.sendRaw("this is not http\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.status == 400)
        #expect(r.bodyString.hasPrefix(#"{"error":"malformed request line"#))
        #expect(client.waitForClose())

        let binary = try connect(server)
        try binary.sendRaw([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00])  // TLS ClientHello start
        #expect(try binary.readResponse().status == 400)
        #expect(eventually { server.stats.badRequests == 2 })
    }

    @Test func chunkedBodyGets411() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        try client.sendRaw("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.status == 411)
        #expect(r.bodyString.contains("Content-Length"))
        #expect(client.waitForClose())
    }

    @Test func unsupportedVersionGets505() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        try client.sendRaw("GET /echo HTTP/2.0\r\n\r\n")
        #expect(try client.readResponse().status == 505)
        #expect(client.waitForClose())
    }

    @Test func http10ClosesUnlessKeepAlive() throws {
        let server = try startServer()
        defer { server.stop() }
        let plain = try connect(server)
        try plain.sendRaw("GET /echo HTTP/1.0\r\n\r\n")
        let r = try plain.readResponse()
        #expect(r.status == 200)
        #expect(r.headers["connection"] == "close")
        #expect(plain.waitForClose())

        let kept = try connect(server)
        try kept.sendRaw("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let first = try kept.readResponse()
        #expect(first.headers["connection"] == "keep-alive")
        try kept.sendRaw("GET /echo?again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try kept.readResponse().bodyString == "GET|/echo|again|-|")
    }

    @Test func connectionCloseIsHonoured() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        let r = try client.request("GET", "/echo", headers: [("Connection", "close")])
        #expect(r.status == 200)
        #expect(r.headers["connection"] == "close")
        #expect(client.waitForClose())

        let handlerClose = try connect(server)
        let bye = try handlerClose.get("/close")
        #expect(bye.bodyString == "bye")
        #expect(bye.headers["connection"] == "close")
        #expect(handlerClose.waitForClose())
    }

    @Test func requestsPipelinedAfterCloseAreDropped() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        try client.sendRaw("GET /echo?1 HTTP/1.1\r\nConnection: close\r\n\r\nGET /echo?2 HTTP/1.1\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.bodyString == "GET|/echo|1|-|")
        #expect(client.waitForClose())  // no second response
        // The server shut its write side and drains (so unread bytes cause no RST) until we close.
        client.close()
        #expect(eventually { server.stats.requests == 1 && server.stats.openConnections == 0 })
    }

    @Test func lingeringIsBoundedWhenTheClientNeverCloses() throws {
        let server = try startServer(idleTimeoutSeconds: 0.3)  // linger = min(2 s, idle timeout)
        defer { server.stop() }
        let client = try connect(server)
        try client.sendRaw("GARBAGE\r\n\r\nmore bytes")
        #expect(try client.readResponse().status == 400)
        #expect(eventually { server.stats.openConnections == 0 })
        #expect(server.stats.idleClosed == 0)
    }

    @Test func clientVanishingWithResponsesPendingIsCleanedUp() throws {
        let server = try startServer()
        defer { server.stop() }
        let client = try connect(server)
        var raw = ""
        for i in 0..<40 { raw += "GET /big?\(i) HTTP/1.1\r\n\r\n" }
        try client.sendRaw(raw)
        _ = try client.readResponse()
        client.close()  // 39 responses still queued on the server
        #expect(eventually { server.stats.openConnections == 0 })
        #expect(try connect(server).get("/echo").status == 200)
    }

    @Test func idleConnectionsAreClosed() throws {
        let server = try startServer(idleTimeoutSeconds: 0.3)
        defer { server.stop() }
        let client = try connect(server)
        #expect(try client.get("/echo").status == 200)
        let started = Date()
        #expect(client.waitForClose(timeoutSeconds: 3))
        let waited = Date().timeIntervalSince(started)
        #expect(waited > 0.2 && waited < 2, "closed after \(waited) s")
        #expect(eventually { server.stats.idleClosed == 1 && server.stats.openConnections == 0 })
    }

    @Test func maxConnectionsIsEnforced() throws {
        let server = try startServer(maxConnections: 2)
        defer { server.stop() }
        let a = try connect(server)
        let b = try connect(server)
        #expect(try a.get("/echo").status == 200)
        #expect(try b.get("/echo").status == 200)

        let c = try connect(server)  // accepted by the kernel, then answered 503 and closed
        #expect(c.waitForClose())
        #expect(eventually { server.stats.rejectedOverLimit == 1 })
        #expect(server.stats.openConnections == 2)

        a.close()
        #expect(eventually { server.stats.openConnections == 1 })
        #expect(try connect(server).get("/echo").status == 200)
        #expect(try b.get("/echo").status == 200)
    }

    @Test func concurrentClientsFromManyThreads() throws {
        let server = try startServer()
        defer { server.stop() }
        let port = server.port
        let failures = Failures()
        onThreads(8) { t in
            do {
                let client = try HTTPClient(port: port)
                for i in 0..<200 {
                    let r = try client.get("/echo?t=\(t)&i=\(i)")
                    if r.status != 200 || r.bodyString != "GET|/echo|t=\(t)&i=\(i)|-|" { failures.add("t\(t) i\(i): \(r.status)") }
                }
            } catch {
                failures.add("t\(t): \(error)")
            }
        }
        #expect(failures.all.isEmpty)
        #expect(eventually { server.stats.requests == 1600 })
        #expect(server.stats.accepted == 8)
    }

    @Test func stopIsCleanAndIdempotent() throws {
        let server = try startServer()
        let port = server.port
        let client = try connect(server)
        #expect(try client.get("/echo").status == 200)
        server.stop()
        #expect(client.waitForClose())
        #expect(server.stats.openConnections == 0)
        server.stop()  // second call: no-op
        #expect(throws: HTTPClientError.self) { try HTTPClient(port: port) }
        #expect(throws: HTTPServerError.self) { try server.start() }
    }

    @Test func stopFromSeveralThreadsAtOnce() throws {
        let server = try startServer(threads: 3)
        onThreads(4) { _ in server.stop() }
        #expect(server.stats.openConnections == 0)
    }

    @Test func bindFailureNamesTheAddress() throws {
        let first = try startServer()
        defer { first.stop() }
        let clash = try HTTPServer(config: HTTPServerConfig(host: "127.0.0.1", port: first.port, threads: 1),
                                   handler: TestHandler())
        do {
            try clash.start()
            Issue.record("binding a port in use should fail")
        } catch {
            #expect(error.description.contains("127.0.0.1:\(first.port)"))
        }
        #expect(throws: HTTPConfigError.self) {
            try HTTPServer(config: HTTPServerConfig(port: 0, maxHeaderBytes: 10), handler: TestHandler())
        }
    }

    @Test func parseListen() throws {
        #expect(try HTTPServerConfig.parseListen("0.0.0.0:9000") == ("0.0.0.0", 9000))
        #expect(try HTTPServerConfig.parseListen("[::1]:8080") == ("::1", 8080))
        #expect(try HTTPServerConfig.parseListen(":8080") == ("127.0.0.1", 8080))
        #expect(try HTTPServerConfig.parseListen("localhost:0") == ("localhost", 0))
        for bad in ["8080", "host:", "host:99999", "host:12a", "[::1]8080", "[::1:80", "::1:80"] {
            #expect(throws: HTTPConfigError.self, "\(bad)") { try HTTPServerConfig.parseListen(bad) }
        }
    }
}

/// Thread-safe failure collector for the multi-threaded test.
final class Failures: Sendable {
    private let items = Mutex<[String]>([])
    func add(_ s: String) { items.withLock { $0.append(s) } }
    var all: [String] { items.withLock { $0 } }
}
