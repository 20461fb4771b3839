import HomefeedHTTP
import Testing

@Suite("HTTPParser")
struct HTTPParserTests {
    @Test func requestLine() {
        let text = "GET /v1/feed?user=42&n=10 HTTP/1.1\r\nHost: x\r\n\r\n"
        parse(text) { result in
            let r = result.request
            #expect(r?.method == .get)
            #expect(r?.methodName.string == "GET")
            #expect(r?.path.string == "/v1/feed")
            #expect(r?.query.string == "user=42&n=10")
            #expect(r?.keepAlive == true)
            #expect(r?.minorVersion == 1)
            #expect(r?.body.count == 0)
            #expect(result.consumed == text.utf8.count)
        }
    }

    @Test func methods() {
        let cases: [(String, HTTPMethod)] = [("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put),
                                             ("DELETE", .delete), ("OPTIONS", .options), ("PATCH", .other), ("get", .other)]
        for (name, method) in cases {
            parse("\(name) / HTTP/1.1\r\n\r\n") { result in
                #expect(result.request?.method == method, "\(name)")
                #expect(result.request?.methodName.string == name)
            }
        }
    }

    @Test func headersAreCaseInsensitiveAndTrimmed() {
        parse("GET / HTTP/1.1\r\nHost: a\r\nX-CuStOm:   spaced value \t\r\nEmpty:\r\n\r\n") { result in
            let r = result.request
            #expect(r?.header("x-custom")?.string == "spaced value")
            #expect(r?.header("X-Custom")?.string == "spaced value")
            #expect(r?.header("host")?.string == "a")
            #expect(r?.header("empty")?.string == "")
            #expect(r?.header("missing") == nil)
        }
    }

    @Test func querySplitAndLookup() {
        parse("GET /a/b?x=1&y=two&flag&x=3 HTTP/1.1\r\n\r\n") { result in
            let r = result.request
            #expect(r?.path.string == "/a/b")
            #expect(r?.queryValue("x")?.string == "1")
            #expect(r?.queryValue("y")?.string == "two")
            #expect(r?.queryValue("flag")?.string == "")
            #expect(r?.queryValue("z") == nil)
            #expect(r?.pathIs("/a/b") == true)
            #expect(r?.pathIs("/a") == false)
        }
        parse("GET /plain HTTP/1.1\r\n\r\n") { #expect($0.request?.query.count == 0) }
        parse("GET /q? HTTP/1.1\r\n\r\n") { result in
            #expect(result.request?.path.string == "/q")
            #expect(result.request?.query.count == 0)
        }
        parse("GET /p%20x?a=%41 HTTP/1.1\r\n\r\n") { result in
            #expect(result.request?.path.string == "/p%20x")  // still encoded
            #expect(result.request?.query.string == "a=%41")
        }
    }

    @Test func pipelinedRequestsParseOneAfterAnother() {
        let first = "GET /one HTTP/1.1\r\n\r\n"
        let second = "POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        let third = "GET /three HTTP/1.1\r\n\r\n"
        let bytes = Array((first + second + third).utf8)
        var paths: [String] = []
        var bodies: [String] = []
        bytes.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let rest = UnsafeRawBufferPointer(rebasing: all[offset...])
                guard case .complete(let r, let consumed) = HTTPParser.parse(rest, maxHeaderBytes: 8192, maxBodyBytes: 100) else {
                    Issue.record("expected a complete request at offset \(offset)")
                    return
                }
                paths.append(r.pathString)
                bodies.append(r.bodyString)
                offset += consumed
            }
        }
        #expect(paths == ["/one", "/two", "/three"])
        #expect(bodies == ["", "abc", ""])
    }

    @Test func incrementalBytesAreIncompleteUntilTheLastOne() {
        let text = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
        let bytes = Array(text.utf8)
        let headerLength = text.utf8.count - 5
        bytes.withUnsafeBytes { all in
            for n in 0..<all.count {
                let result = HTTPParser.parse(UnsafeRawBufferPointer(rebasing: all[..<n]), maxHeaderBytes: 8192, maxBodyBytes: 100)
                guard case .incomplete(let needed) = result else {
                    Issue.record("prefix of \(n) bytes should be incomplete, got \(result)")
                    continue
                }
                // Once the headers are in, the parser knows the total size.
                #expect(needed == (n >= headerLength ? bytes.count : 0), "prefix \(n)")
            }
            let full = HTTPParser.parse(all, maxHeaderBytes: 8192, maxBodyBytes: 100)
            #expect(full.request?.bodyString == "hello")
            #expect(full.consumed == bytes.count)
        }
    }

    @Test func keepAliveRules() {
        parse("GET / HTTP/1.1\r\n\r\n") { #expect($0.request?.keepAlive == true) }
        parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n") { #expect($0.request?.keepAlive == false) }
        parse("GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n") { #expect($0.request?.keepAlive == false) }
        parse("GET / HTTP/1.0\r\n\r\n") { result in
            #expect(result.request?.keepAlive == false)
            #expect(result.request?.minorVersion == 0)
        }
        parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") { #expect($0.request?.keepAlive == true) }
    }

    @Test func toleratesBareLFAndLeadingEmptyLines() {
        let text = "\r\n\nGET /lf HTTP/1.1\nX-A: 1\n\n"
        parse(text) { result in
            #expect(result.request?.path.string == "/lf")
            #expect(result.request?.header("x-a")?.string == "1")
            #expect(result.consumed == text.utf8.count)
        }
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", 400),
        ("\u{16}\u{03}\u{01}\u{02}\u{00}", 400),                           // TLS hello: rejected before any newline
        ("GET  HTTP/1.1\r\n\r\n", 400),                                     // empty target
        ("GET / FTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1 extra\r\n\r\n", 400),
        ("GET /a\u{7f}b HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\rX\r\n\r\n", 400),                                 // bare CR
        ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),                     // space in field name
        ("GET / HTTP/1.1\r\nName : x\r\n\r\n", 400),                        // space before colon
        ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400),                 // obs-fold
        ("GET / HTTP/1.1\r\nX: a\u{01}b\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        ("POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413),
        ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 413),
        ("GET / HTTP/2.0\r\n\r\n", 505),
        ("GET / HTTP/0.9\r\n\r\n", 505),
    ])
    func errorCases(input: String, status: Int) {
        parse(input) { result in
            #expect(result.error?.status == status, "\(input.debugDescription) → \(result)")
            #expect(result.error?.message.isEmpty == false)
        }
    }

    @Test func headerSectionOverLimitIs431EvenBeforeItEnds() {
        let long = "GET / HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: 300)
        parse(long, maxHeaderBytes: 256) { result in
            #expect(result.error?.status == 431)
            #expect(result.error?.message.contains("256") == true)
        }
        // Exactly at the limit is fine; one byte more is not.
        let exact = "GET / HTTP/1.1\r\nX: " + String(repeating: "b", count: 100) + "\r\n\r\n"
        parse(exact, maxHeaderBytes: exact.utf8.count) { #expect($0.request != nil) }
        parse(exact, maxHeaderBytes: exact.utf8.count - 1) { #expect($0.error?.status == 431) }
        // A long request line counts too.
        parse("GET /" + String(repeating: "p", count: 500), maxHeaderBytes: 256) { #expect($0.error?.status == 431) }
    }

    @Test func bodyAtTheLimitIsAccepted() {
        let body = String(repeating: "z", count: 64)
        parse("PUT /b HTTP/1.1\r\nContent-Length: 64\r\n\r\n" + body, maxBodyBytes: 64) { result in
            #expect(result.request?.method == .put)
            #expect(result.request?.body.count == 64)
        }
        parse("PUT /b HTTP/1.1\r\nContent-Length: 65\r\n\r\n", maxBodyBytes: 64) { #expect($0.error?.status == 413) }
    }

    @Test func withParsedRequestRunsTheBodyInProcess() throws {
        let bytes = Array("GET /item?id=7 HTTP/1.1\r\nAccept: */*\r\n\r\n".utf8)
        let result = bytes.withUnsafeBytes { buffer in
            HTTPParser.withParsedRequest(buffer) { request in
                request.queryValue("id").map { Int(String(decoding: $0, as: UTF8.self)) ?? -1 } ?? -2
            }
        }
        #expect(try result.get() == 7)

        let truncated = Array("GET /item HTTP/1.1\r\n".utf8).withUnsafeBytes { HTTPParser.withParsedRequest($0) { _ in 0 } }
        #expect(throws: HTTPParseError.self) { try truncated.get() }
        if case .failure(let e) = truncated { #expect(e.kind == .incomplete) }

        let bad = Array("BAD\r\n\r\n".utf8).withUnsafeBytes { HTTPParser.withParsedRequest($0) { _ in 0 } }
        if case .failure(let e) = bad { #expect(e.status == 400) } else { Issue.record("expected failure") }
    }

    @Test func mutatedInputNeverCrashesAndStaysInBounds() {
        var rng = SplitMix64(seed: 42)
        let seeds = ["GET /a?b=c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                     "POST /p HTTP/1.0\r\nContent-Length: 4\r\nX: y\r\n\r\nbody"].map { Array($0.utf8) }
        let interesting: [UInt8] = [0, 9, 10, 13, 32, 58, 63, 127, 255, 48, 57]
        for round in 0..<5000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = interesting.randomElement(using: &rng) ?? 0
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                }
                if bytes.isEmpty { bytes = [0] }
            }
            bytes.withUnsafeBytes { buffer in
                switch HTTPParser.parse(buffer, maxHeaderBytes: 64, maxBodyBytes: 8) {
                case .complete(let r, let consumed):
                    #expect(consumed <= buffer.count)
                    #expect(r.body.count <= 8)
                case .incomplete(let needed):
                    #expect(needed == 0 || needed > buffer.count)
                case .error(let e):
                    #expect([400, 411, 413, 431, 505].contains(e.status))
                }
            }
        }
    }

    @Test func errorBodyIsEscapedJSON() {
        var response = HTTPResponse()
        response.setError(400, "bad \"x\"\\\n\u{1}")
        #expect(response.status == 400)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"bad \"x\"\\\n\u0001"}"#)
    }
}
