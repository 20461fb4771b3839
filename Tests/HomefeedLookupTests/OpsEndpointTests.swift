import Foundation
import Testing
import HomefeedCore
import HomefeedHTTP
@testable import HomefeedLookup
import HomefeedStore
import HomefeedTestSupport

/// /healthz, /readyz, /v1/version, /metrics, over both transports.
@Suite struct OpsEndpointTests {
    @Test(arguments: Transport.allCases)
    func healthAndReadiness(_ t: Transport) throws {
        let h = try Harness(t, publish: false); defer { h.close() }
        let health = try h.get("/healthz")
        #expect(health.status == 200)
        #expect(health.json()["status"] as? String == "ok")
        // Nothing published yet: alive but not ready; every store-backed endpoint says 503 in JSON.
        let notReady = try h.get("/readyz")
        #expect(notReady.status == 503)
        #expect(notReady.errorMessage != nil)
        #expect(try h.get("/v1/version").status == 503)
        let rec = try h.get("/v1/users/u1/recommendations")
        #expect(rec.status == 503)
        #expect(rec.contentType == "application/json")
        #expect(rec.errorMessage?.contains("no store version") == true)
        #expect(metric(try h.metricsText(), "homefeed_ready") == 0)
        // Published and picked up: ready, naming the version.
        let name = try h.publish()
        h.reload()
        let ready = try h.get("/readyz")
        #expect(ready.status == 200)
        #expect(ready.json()["status"] as? String == "ready")
        #expect(ready.json()["version"] as? String == name)
        #expect(try h.get("/healthz").status == 200)
        #expect(metric(try h.metricsText(), "homefeed_ready") == 1)
    }

    /// The read-only endpoints answer GET and HEAD only.
    @Test(arguments: Transport.allCases)
    func opsEndpointsRefuseOtherMethods(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        for path in ["/healthz", "/readyz", "/metrics", "/v1/version"] {
            for method in ["POST", "DELETE", "PUT"] {
                let r = try h.request(method, path)
                #expect(r.status == 405, "\(method) \(path)")
                #expect(r.errorMessage?.contains("use GET") == true)
            }
            #expect(try h.request("HEAD", path).status == 200)
        }
    }

    @Test(arguments: Transport.allCases)
    func versionEndpoint(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        let name = try #require(try h.store.current())
        let r = try h.get("/v1/version")
        #expect(r.status == 200)
        #expect(r.contentType == "application/json")
        let j = r.json()
        #expect(j["version"] as? String == name)
        #expect((j["as_of"] as? NSNumber)?.int64Value == StandardFixture.t0)
        let counts = try #require(j["counts"] as? [String: Any])
        #expect(counts["personalized_users"] as? Int == 63)
        #expect(counts["videos"] as? Int == 10)
        #expect(counts["users"] as? Int == 64)
        #expect(counts["popular_lists"] as? Int == 5)
        // snake_case like the recommendation responses; decodes back into the store's metadata type.
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        let meta = try dec.decode(RunMetadata.self, from: Data(r.body))
        #expect(meta == h.service.current?.version.metadata)
    }

    @Test(arguments: Transport.allCases)
    func metricsCountRequestsLatencySourcesAndVersion(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        let name = try #require(try h.store.current())
        for _ in 0..<3 { _ = try h.recommend("u1") }
        _ = try h.recommend("nobody", "region=US")
        _ = try h.recommend("nobody", "region=FR&lang=de")
        _ = try h.recommend("nobody", "region=FR")
        #expect(try h.get("/v1/users/u1/recommendations?limit=0").status == 400)
        #expect(try h.get("/nope").status == 404)
        #expect(try h.post("/v1/users/u1/seen", #"["v9"]"#).status == 200)
        #expect(try h.get("/healthz").status == 200)
        let m = try h.metricsText()
        #expect(metric(m, #"homefeed_requests_total{route="recommendations",status="200"}"#) == 6)
        #expect(metric(m, #"homefeed_requests_total{route="recommendations",status="400"}"#) == 1)
        #expect(metric(m, #"homefeed_requests_total{route="other",status="404"}"#) == 1)
        #expect(metric(m, #"homefeed_requests_total{route="seen",status="200"}"#) == 1)
        #expect(metric(m, #"homefeed_requests_total{route="healthz",status="200"}"#) == 1)
        #expect(metric(m, #"homefeed_requests_total{route="metrics",status="200"}"#) == nil)   // counted after rendering
        // Histogram: cumulative buckets ending in +Inf == count == the 10 requests handled before this one.
        #expect(m.contains("# TYPE homefeed_request_seconds histogram"))
        var last = -1.0
        var buckets = 0
        for line in m.split(separator: "\n") where line.hasPrefix("homefeed_request_seconds_bucket{le=") {
            let v = try #require(Double(line.split(separator: " ").last!))
            #expect(v >= last)
            last = v
            buckets += 1
        }
        #expect(buckets >= 5)
        #expect(metric(m, #"homefeed_request_seconds_bucket{le="+Inf"}"#) == 10)
        #expect(metric(m, "homefeed_request_seconds_count") == 10)
        #expect((metric(m, "homefeed_request_seconds_sum") ?? -1) > 0)
        // Sources, the served version and its age.
        #expect(metric(m, #"homefeed_responses_by_source_total{source="personalized"}"#) == 3)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="popular_region"}"#) == 1)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="popular_language"}"#) == 1)
        #expect(metric(m, #"homefeed_responses_by_source_total{source="popular_global"}"#) == 1)
        #expect(metric(m, "homefeed_served_version_info{version=\"\(name)\"}") == 1)
        let age = try #require(metric(m, "homefeed_served_version_age_seconds"))
        #expect(age >= 0 && age < 600)
        #expect(metric(m, "homefeed_served_personalized_users") == 63)
        #expect(metric(m, "homefeed_version_swaps_total") == 1)
        #expect(metric(m, "homefeed_seen_memory_users") == 1)
        // Every sample line is `name{labels} number` or `name number`; every family has a TYPE.
        for line in m.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 2 && Double(parts[1]) != nil, "bad sample line: \(line)")
            let family = String(parts[0].prefix { $0 != "{" })
                .replacingOccurrences(of: "_bucket", with: "").replacingOccurrences(of: "_sum", with: "")
                .replacingOccurrences(of: "_count", with: "")
            #expect(m.contains("# TYPE \(family) "), "no TYPE for \(family)")
        }
        if t == .live {   // the daemon attaches its HTTP server's counters
            #expect((metric(m, "homefeed_http_accepted_total") ?? 0) >= 1)
            #expect(metric(m, "homefeed_http_open_connections") != nil)
        }
    }
}
