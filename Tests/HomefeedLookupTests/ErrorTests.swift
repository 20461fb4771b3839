import Foundation
import Testing
import HomefeedCore
import HomefeedHTTP
@testable import HomefeedLookup
import HomefeedTestSupport

/// Bad input is a 4xx with a JSON error, never a crash, and the daemon keeps serving.
@Suite struct ErrorTests {
    @Test(arguments: Transport.allCases)
    func routingErrors(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        for path in ["/", "/nope", "/v1", "/v1/users", "/v1/users/", "/v1/users/u1", "/v1/users/u1/", "/v1/users//recommendations",
                     "/v1/users/u1/recommendations/", "/v1/users/u1/other", "/healthz/x", "/v1/versions", "/metrics2"] {
            let r = try h.get(path)
            #expect(r.status == 404, "\(path)")
            #expect(r.contentType == "application/json")
            #expect(r.errorMessage?.contains("no such route") == true, "\(path): \(r.text)")
        }
        for (method, path) in [("POST", "/v1/users/u1/recommendations"), ("PUT", "/v1/users/u1/recommendations"),
                               ("DELETE", "/v1/users/u1/recommendations"), ("GET", "/v1/users/u1/seen"),
                               ("PUT", "/v1/users/u1/seen")] {
            let r = try h.request(method, path)
            #expect(r.status == 405, "\(method) \(path)")
            #expect(r.errorMessage != nil)
        }
        #expect(try h.ids("u1", "limit=1") == ["v3"])
    }

    @Test(arguments: Transport.allCases)
    func badQueryParameters(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        let bad = ["limit=0", "limit=abc", "limit=101", "limit=-1", "limit=", "limit=1.5", "limit=99999999999999999999",
                   "max_age_hours=0", "max_age_hours=-3", "max_age_hours=abc", "max_age_hours=nan", "max_age_hours=inf",
                   "region=USA", "region=", "lang=", "lang=abcdefghijklmnop",
                   "region=%zz", "region=%", "region=U%5", "exclude=v1%2", "limit=%4", "lang=%GG",
                   "exclude=" + (0...1000).map { "x\($0)" }.joined(separator: ",")]
        for q in bad {
            let r = try h.get("/v1/users/u1/recommendations?" + q)
            #expect(r.status == 400, "?\(q.prefix(60)) → \(r.status) \(r.text.prefix(200))")
            #expect(r.contentType == "application/json")
            #expect(r.errorMessage != nil)
        }
        // The same values, valid: accepted (limit at the maximum, an encoded region, unknown parameters ignored).
        #expect(try h.ids("u1", "limit=100").count == 6)
        #expect(try h.ids("u1", "region=%44%45&limit=4") == ["v3", "v6", "v7", "v8"])
        #expect(try h.ids("u1", "limit=2&foo=bar&=x&&") == ["v3", "v4"])
        // Malformed percent-encoding in the user id.
        for id in ["u%zz", "u%", "%", "u%1"] {
            let r = try h.get("/v1/users/\(id)/recommendations")
            #expect(r.status == 400, "\(id)")
            #expect(r.errorMessage != nil)
        }
        let long = try h.get("/v1/users/\(String(repeating: "u", count: 257))/recommendations")
        #expect(long.status == 400)
        // Odd but well-formed ids are just unknown users, escaped properly in the JSON.
        let odd = try h.recommend("a%22b%5Cc%0A", "region=US&limit=1")
        #expect(odd.user_id == "a\"b\\c\n")
        #expect(odd.ids == ["v0"])
        #expect(try h.ids("u1", "limit=1") == ["v3"])
        #expect(h.service.metrics.count(route: .recommendations, status: 400) == bad.count + 5)
    }

    /// Violations of the protocol itself are answered by the server (then it closes that connection); the
    /// daemon keeps answering new connections.
    @Test func protocolErrorsOnTheWire() throws {
        let h = try Harness(.live) {
            $0.lookupd.maxHeaderBytes = 1024
            $0.lookupd.maxBodyBytes = 4096
        }
        defer { h.close() }
        func expectStillServing(_ note: String) throws {
            let c = try HTTPClient(port: h.port, timeoutSeconds: 15)
            defer { c.close() }
            let r = try c.get("/v1/users/u1/recommendations?limit=1")
            #expect(r.status == 200, "after \(note)")
            #expect(try Reply(status: r.status, contentType: "", body: r.body).recommendations().ids == ["v3"])
        }
        func raw(_ bytes: [UInt8], _ expected: Int, _ note: String) throws {
            let c = try HTTPClient(port: h.port, timeoutSeconds: 15)
            defer { c.close() }
            try c.sendRaw(bytes)
            let r = try c.readResponse()
            #expect(r.status == expected, "\(note): \(r.bodyString)")
            #expect(r.headers["connection"] == "close", "\(note)")
            let error = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
            #expect(error?["error"] is String, "\(note): \(r.bodyString)")
            #expect(c.waitForClose(timeoutSeconds: 10), "\(note): connection not closed")
            try expectStillServing(note)
        }
        try raw(Array("GARBAGE\r\n\r\n".utf8), 400, "garbage request line")
        try raw(Array("GET /v1/users/u1/recommendations HTTP/1.1 extra\r\n\r\n".utf8), 400, "bad request line")
        try raw(Array("GET / HTTP/1.1\r\nNo colon here\r\n\r\n".utf8), 400, "bad header line")
        try raw(Array("GET / HTTP/2.0\r\n\r\n".utf8), 505, "HTTP/2 request line")
        try raw(Array("\u{1}\u{2}\u{3}\r\n\r\n".utf8), 400, "binary junk")
        let bigHeader = "GET /healthz HTTP/1.1\r\nX-Filler: \(String(repeating: "a", count: 2000))\r\n\r\n"
        try raw(Array(bigHeader.utf8), 431, "oversized headers")
        let bigBody = "POST /v1/users/u1/seen HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "x", count: 5000)
        try raw(Array(bigBody.utf8), 413, "oversized body")
        try raw(Array("POST /v1/users/u1/seen HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".utf8), 413,
                "absurd Content-Length")
        try raw(Array("POST /v1/users/u1/seen HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".utf8), 411, "chunked body")
        try raw(Array("POST /v1/users/u1/seen HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]".utf8), 400,
                "conflicting Content-Length")
        // Clients that hang up mid-request do no harm.
        let quitter = try HTTPClient(port: h.port, timeoutSeconds: 15)
        try quitter.sendRaw("GET /v1/users/u1/recommendations?limit=1 HTTP/1.1\r\nHost: x")
        quitter.close()
        let half = try HTTPClient(port: h.port, timeoutSeconds: 15)
        try half.sendRaw("POST /v1/users/u1/seen HTTP/1.1\r\nContent-Length: 100\r\n\r\n[\"v")
        half.close()
        try expectStillServing("clients that hung up")
        // A body within the limit is fine.
        let ok = try HTTPClient(port: h.port, timeoutSeconds: 15)
        #expect(try ok.request("POST", "/v1/users/u1/seen", body: Array(#"["v3"]"#.utf8)).status == 200)
        ok.close()
        // The seen video posted above is honoured (v3 skipped).
        let c = try HTTPClient(port: h.port, timeoutSeconds: 15)
        defer { c.close() }
        let r = try c.get("/v1/users/u1/recommendations?limit=1")
        #expect(try Reply(status: r.status, contentType: "", body: r.body).recommendations().ids == ["v4"])
    }

    /// The connection limit and the idle timeout come from the daemon's configuration.
    @Test func connectionLimit() throws {
        let h = try Harness(.live) { $0.lookupd.maxConnections = 2 }
        defer { h.close() }
        let a = try HTTPClient(port: h.port, timeoutSeconds: 15), b = try HTTPClient(port: h.port, timeoutSeconds: 15)
        defer { b.close() }
        #expect(try a.get("/healthz").status == 200)
        #expect(try b.get("/healthz").status == 200)
        // A third connection is answered 503 and closed.
        let c = try HTTPClient(port: h.port, timeoutSeconds: 15)
        defer { c.close() }
        let over = try c.readResponse()
        #expect(over.status == 503)
        #expect(over.headers["connection"] == "close")
        #expect(c.waitForClose(timeoutSeconds: 10))
        // A slot freed is usable again; the open connections keep working.
        a.close()
        #expect(eventually {
            guard let d = try? HTTPClient(port: h.port, timeoutSeconds: 15) else { return false }
            defer { d.close() }
            return (try? d.get("/v1/users/u1/recommendations?limit=1"))?.status == 200
        })
        #expect(try b.get("/v1/users/u1/recommendations?limit=1").status == 200)
        #expect(try #require(h.daemon).server.stats.rejectedOverLimit >= 1)
    }

    @Test func idleConnectionsAreClosed() throws {
        let h = try Harness(.live) { $0.lookupd.idleTimeoutSeconds = 0.3 }
        defer { h.close() }
        let a = try HTTPClient(port: h.port, timeoutSeconds: 15)
        defer { a.close() }
        #expect(try a.get("/healthz").status == 200)
        #expect(a.waitForClose(timeoutSeconds: 10))
        #expect(try #require(h.daemon).server.stats.idleClosed >= 1)
        let b = try HTTPClient(port: h.port, timeoutSeconds: 15)
        defer { b.close() }
        #expect(try b.get("/healthz").status == 200)
    }

    @Test func listensOnLoopbackUnlessToldOtherwise() throws {
        #expect(HomefeedConfig().lookupd.listen.hasPrefix("127.0.0.1:"))
        #expect(try HTTPServerConfig.parseListen(":0").host == "127.0.0.1")
        let dir = TempDir("homefeed-listen"); defer { dir.remove() }
        let d = try LookupDaemon(storeDir: dir.path, config: testConfig(), listen: ":0")
        #expect(d.server.config.host == "127.0.0.1")
        #expect(throws: HomefeedError.self) { _ = try LookupDaemon(storeDir: dir.sub("missing"), config: testConfig(), listen: ":0") }
        #expect(throws: HomefeedError.self) { _ = try LookupDaemon(storeDir: dir.path, config: testConfig(), listen: "nonsense") }
    }
}
