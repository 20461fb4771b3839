import Foundation
import Testing
import HomefeedCore
import HomefeedHTTP
@testable import HomefeedLookup
import HomefeedPipeline
import HomefeedStore
import HomefeedTestSupport

// Shared machinery of the lookup daemon tests: one set of behaviour tests runs over two transports.
//
// - `inProcess`: the request's raw bytes are parsed by `HTTPParser` and handed to `LookupService.handle`
//   (no sockets): what the daemon does, byte for byte, minus the event loop.
// - `live`: a `LookupDaemon` (real `HTTPServer` on 127.0.0.1, ephemeral port) and a kept-alive `HTTPClient`.
//
// Every test builds its own store from `StandardFixture` (docs in HomefeedTestSupport/Fixtures.swift) with the real
// batch (`Refresh.run`, with `[mf] enabled = false`: these tests are about serving, so the lists are ranked by the
// popularity blend and known by heart) into real RocksDB versions in a temp dir. The fixture's lists:
//
//     u1 (US/en) personalized   v3 v4 v5 v6 v7 v8          (v0 watched, v1 liked, v2 disliked: never listed)
//     u3 (DE/de) personalized   v8 v0 v1 v3
//     popular region US         v0 v1 v3 v4 v5 v6 v7 v8
//     popular region DE         v6 v7 v8 v0 v1 v3           (v4 is allow:US, v5 block:DE)
//     popular language en       v0 v1 v3 v4 v5 v6 v7 v8
//     popular language de       v6 v7 v8 v5 v0 v1 v3 v4
//     popular global            v0 v6 v1 v7 v3 v8 v5 v4
//     v3 published 2 h before t0 (fresh), every other video 30 days before; v2 and v9 are in no list.
//
// `StoreFacts` checks these against the built version, so a change in the batch's ranking shows up as one clear
// failure instead of many confusing ones.

enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case inProcess, live
    var testDescription: String { rawValue }
}

/// The configuration every test starts from: small caches, a default limit of 5 (so "default limit from config"
/// is visible against u1's 6-entry list), a fast reload interval.
func testConfig() -> HomefeedConfig {
    var c = HomefeedConfig()
    c.mf.enabled = false
    c.twoTower.enabled = false
    c.store.blockCacheMB = 8
    c.refresh.threads = 2
    c.lookupd.defaultLimit = 5
    c.lookupd.threads = 2
    c.lookupd.reloadIntervalSeconds = 0.1
    c.lookupd.idleTimeoutSeconds = 30
    return c
}

/// Builds and publishes a version from the fixture data in `dataDir` into `storeDir` with the batch.
@discardableResult
func publishFixtureVersion(dataDir: String, storeDir: String, now: Int64 = StandardFixture.t0,
                           config: HomefeedConfig = testConfig()) throws -> String {
    var opt = RefreshOptions(dataDir: dataDir, storeDir: storeDir)
    opt.now = now
    opt.activeDays = 0
    opt.quiet = true
    opt.force = true
    let summary = try Refresh.run(opt, config: config)
    guard case .published = summary.outcome else { throw HomefeedError("not published: \(summary.line)") }
    return summary.metadata.version
}

/// One response, whichever transport carried it.
struct Reply {
    var status: Int
    var contentType: String
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object (records an issue and returns [:] when it is not one).
    func json(sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any] {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            Issue.record("not a JSON object (status \(status)): \(text)", sourceLocation: sourceLocation)
            return [:]
        }
        return o
    }

    /// The `error` message of a JSON error body, nil when the body is not one.
    var errorMessage: String? {
        ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any])?["error"] as? String
    }

    func recommendations() throws -> Recommendations {
        do { return try JSONDecoder().decode(Recommendations.self, from: Data(body)) }
        catch { throw HomefeedError("not a recommendations body (status \(status)): \(text): \(error)") }
    }
}

/// GET /v1/users/{id}/recommendations, decoded strictly (every documented field must be there).
struct Recommendations: Decodable {
    struct Item: Decodable { var video_id: String; var score: Double }
    var user_id: String
    var source: String
    var version: String
    var generated_at: String
    var items: [Item]
    var ids: [String] { items.map(\.video_id) }
}

/// A lookup service over a fresh fixture store, reached through one transport.
final class Harness {
    let transport: Transport
    let dir: TempDir
    let config: HomefeedConfig
    let service: LookupService
    let daemon: LookupDaemon?
    private var client: HTTPClient?

    var dataDir: String { dir.sub("data") }
    var storeDir: String { dir.sub("store") }
    var store: VersionedStore { service.store }
    var port: Int { daemon?.server.port ?? 0 }

    /// `publish`: build and publish the fixture's version before the service starts.
    /// `watch`: start the reload watcher (live: through `LookupDaemon.start()`, exactly as the binary does).
    init(_ transport: Transport, publish: Bool = true, watch: Bool = false,
         configure: (inout HomefeedConfig) -> Void = { _ in }) throws {
        self.transport = transport
        dir = TempDir("homefeed-lookup")
        var c = testConfig()
        configure(&c)
        config = c
        try StandardFixture.make().write(to: dir.sub("data"))
        try FileManager.default.createDirectory(atPath: dir.sub("store"), withIntermediateDirectories: true)
        if publish { try publishFixtureVersion(dataDir: dir.sub("data"), storeDir: dir.sub("store"), config: c) }
        switch transport {
        case .inProcess:
            daemon = nil
            service = LookupService(storeDir: dir.sub("store"), config: c)
            if case .failure(let e) = service.reload() { throw e }
            if watch { service.startWatching(log: { _ in }) }
        case .live:
            let d = try LookupDaemon(storeDir: dir.sub("store"), config: c, listen: "127.0.0.1:0")
            daemon = d
            service = d.service
            if watch {
                try d.start()
            } else {
                if case .failure(let e) = service.reload() { throw e }
                try d.server.start()
            }
        }
    }

    func close() {
        client?.close()
        client = nil
        daemon?.stop()
        service.stopWatching()
        dir.remove()
    }

    /// Publishes another version of the fixture (the batch run again with `now`).
    @discardableResult
    func publish(now: Int64 = StandardFixture.t0) throws -> String {
        try publishFixtureVersion(dataDir: dataDir, storeDir: storeDir, now: now, config: config)
    }

    @discardableResult
    func reload(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        switch service.reload() {
        case .success(let changed): return changed
        case .failure(let e): Issue.record("reload failed: \(e.message)", sourceLocation: sourceLocation); return false
        }
    }

    /// Sends one request. `headers` are added after Host; Content-Length is added for a body or a POST.
    func request(_ method: String, _ target: String, body: [UInt8] = [], headers: [(String, String)] = []) throws -> Reply {
        switch transport {
        case .inProcess:
            var head = "\(method) \(target) HTTP/1.1\r\nHost: lookup.test\r\n"
            for (n, v) in headers { head += "\(n): \(v)\r\n" }
            if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
            let bytes = Array((head + "\r\n").utf8) + body
            return try Harness.inProcess(service, bytes, config: config)
        case .live:
            if client == nil { client = try HTTPClient(host: "127.0.0.1", port: port, timeoutSeconds: 15) }
            let r = try client!.request(method, target, body: body, headers: headers)
            if r.headers["connection"] == "close" { client?.close(); client = nil }
            return Reply(status: r.status, contentType: r.headers["content-type"] ?? "", body: r.body)
        }
    }

    /// Parses `bytes` with the server's parser and limits and calls the handler, as a worker does.
    static func inProcess(_ service: LookupService, _ bytes: [UInt8], config: HomefeedConfig) throws -> Reply {
        let result = bytes.withUnsafeBytes { raw in
            HTTPParser.withParsedRequest(raw, maxHeaderBytes: config.lookupd.maxHeaderBytes,
                                         maxBodyBytes: config.lookupd.maxBodyBytes) { request -> HTTPResponse in
                var response = HTTPResponse()
                service.handle(request, &response)
                return response
            }
        }
        var response: HTTPResponse
        switch result {
        case .success(let r): response = r
        case .failure(let e):  // what the server answers before closing
            response = HTTPResponse()
            response.setError(e.status, e.message)
        }
        return Reply(status: response.status, contentType: "\(response.contentType)", body: response.body)
    }

    func get(_ target: String) throws -> Reply { try request("GET", target) }

    func post(_ target: String, _ body: String) throws -> Reply { try request("POST", target, body: Array(body.utf8)) }

    /// GET recommendations; expects 200 and returns the decoded body.
    func recommend(_ user: String, _ query: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws -> Recommendations {
        let r = try get("/v1/users/\(user)/recommendations" + (query.isEmpty ? "" : "?" + query))
        #expect(r.status == 200, "\(r.text)", sourceLocation: sourceLocation)
        #expect(r.contentType == "application/json", sourceLocation: sourceLocation)
        return try r.recommendations()
    }

    /// The ids of GET recommendations.
    func ids(_ user: String, _ query: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        try recommend(user, query, sourceLocation: sourceLocation).ids
    }

    func metricsText() throws -> String {
        let r = try get("/metrics")
        #expect(r.status == 200)
        #expect(r.contentType.hasPrefix("text/plain"))
        return r.text
    }
}

/// The value of the Prometheus sample whose line starts with `series` (name plus labels), nil if absent.
func metric(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// Polls `condition` every 20 ms until it holds or `timeout` seconds pass; true if it held.
func eventually(timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = TimeFormat.monotonic() + timeout
    while true {
        if try condition() { return true }
        if TimeFormat.monotonic() > deadline { return false }
        usleep(20_000)
    }
}

/// Writes `text` to `path` atomically (temp file + rename), as an operator's tooling would.
func writeFile(_ path: String, _ text: String) throws {
    try text.write(toFile: path, atomically: false, encoding: .utf8)
}

/// Runs `body(i)` on `count` real threads (blocking socket I/O stays off the test's cooperative pool) and waits.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let t = Thread {
            body(i)
            group.leave()
        }
        t.start()
    }
    group.wait()
}

/// The fixture facts the expectations of this suite rest on, read from a built version.
enum StoreFacts {
    static func check(_ version: StoreVersion) throws {
        func ids(_ l: RecommendationList?) -> [String] { (l?.videos ?? []).map { version.videos.ids[Int($0)] } }
        #expect(ids(try version.userList("u1")) == ["v3", "v4", "v5", "v6", "v7", "v8"])
        #expect(ids(try version.userList("u3")) == ["v8", "v0", "v1", "v3"])
        #expect(try version.userList("u9") == nil)
        #expect(ids(version.popularList(.region, "US")) == ["v0", "v1", "v3", "v4", "v5", "v6", "v7", "v8"])
        #expect(ids(version.popularList(.region, "DE")) == ["v6", "v7", "v8", "v0", "v1", "v3"])
        #expect(version.popularList(.region, "FR") == nil)
        #expect(ids(version.popularList(.language, "en")) == ["v0", "v1", "v3", "v4", "v5", "v6", "v7", "v8"])
        #expect(ids(version.popularList(.language, "de")) == ["v6", "v7", "v8", "v5", "v0", "v1", "v3", "v4"])
        #expect(ids(version.popularList(.global)) == ["v0", "v6", "v1", "v7", "v3", "v8", "v5", "v4"])
        #expect(version.metadata.asOf == StandardFixture.t0)
    }
}

/// A value shared between threads behind a lock (test bookkeeping only).
final class Shared<Value>: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var _value: Value
    init(_ value: Value) { _value = value }
    var value: Value {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
    func withLock<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&_value) } }
}
