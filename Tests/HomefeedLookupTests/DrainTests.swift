import Dispatch
import Foundation
import Testing
import HomefeedCore
import HomefeedHTTP
@testable import HomefeedLookup
import HomefeedTestSupport

/// The drain before a stop (SIGTERM/SIGINT call `LookupDaemon.drain`; these tests call it directly): readiness
/// fails at once, everything else is answered as before, then the daemon stops.
@Suite struct DrainTests {
    /// Whether a fresh connection to `port` is refused (the listening socket is gone).
    private func refuses(_ port: Int) -> Bool {
        do { _ = try HTTPClient(host: "127.0.0.1", port: port, timeoutSeconds: 2); return false }
        catch { return error.kind == .connect }
    }

    @Test(arguments: Transport.allCases)
    func drainingFailsReadinessOnlyAndKeepsServing(_ t: Transport) throws {
        let h = try Harness(t); defer { h.close() }
        let name = try #require(try h.store.current())
        let u1 = try h.ids("u1")
        let cold = try h.ids("nobody", "region=DE")
        #expect(try h.get("/readyz").status == 200)
        #expect(metric(try h.metricsText(), "homefeed_draining") == 0)

        #expect(h.service.beginDraining())
        #expect(!h.service.beginDraining(), "a second call starts nothing")
        let ready = try h.get("/readyz")
        #expect(ready.status == 503)
        #expect(ready.contentType == "application/json")
        #expect(ready.errorMessage?.hasPrefix("draining") == true, "\(ready.text)")
        let health = try h.get("/healthz")
        #expect(health.status == 200)
        #expect(health.json()["status"] as? String == "ok")
        #expect(try h.ids("u1") == u1)
        #expect(try h.ids("nobody", "region=DE") == cold)
        #expect(try h.recommend("u1").version == name)
        #expect(try h.get("/v1/version").status == 200)
        let metrics = try h.metricsText()
        #expect(metric(metrics, "homefeed_draining") == 1)
        #expect(metric(metrics, "homefeed_ready") == 1, "a version is still open and served")
        #expect(metrics.contains("# TYPE homefeed_draining gauge\nhomefeed_draining 1\n"))
        #expect(h.service.metrics.count(route: .readyz, status: 503) == 1)
    }

    /// On the wire, draining answers ask kept-alive clients to reconnect (so they reach a replica in rotation);
    /// after the drain period the daemon stops: open connections are closed and new ones refused.
    @Test func liveDrainServesForItsPeriodThenStops() throws {
        let h = try Harness(.live, watch: true) { $0.lookupd.drainSeconds = 0.3 }; defer { h.close() }
        let daemon = try #require(h.daemon)
        let kept = try HTTPClient(host: "127.0.0.1", port: h.port, timeoutSeconds: 10)
        defer { kept.close() }
        let before = try kept.get("/v1/users/u1/recommendations")
        #expect(before.status == 200 && before.headers["connection"] == nil)

        #expect(daemon.beginDrain())
        let during = try kept.get("/v1/users/u1/recommendations")
        #expect(during.status == 200)
        #expect(during.body == before.body, "the same answer while draining")
        #expect(during.headers["connection"] == "close")
        #expect(kept.waitForClose(timeoutSeconds: 10))
        let fresh = try HTTPClient(host: "127.0.0.1", port: h.port, timeoutSeconds: 10)
        #expect(try fresh.get("/readyz").status == 503)
        fresh.close()

        let t0 = TimeFormat.monotonic()
        daemon.drain()  // drain_seconds from the config; begun already, so it just waits out the period
        let took = TimeFormat.monotonic() - t0
        #expect(took >= 0.3, "stopped after \(took) s, before the drain period")
        #expect(took < 10)
        #expect(refuses(h.port))
    }

    @Test func zeroDrainSecondsStopsAtOnce() throws {
        let h = try Harness(.live, watch: true) { $0.lookupd.drainSeconds = 0 }; defer { h.close() }
        let daemon = try #require(h.daemon)
        let client = try HTTPClient(host: "127.0.0.1", port: h.port, timeoutSeconds: 10)
        defer { client.close() }
        #expect(try client.get("/readyz").status == 200)
        let t0 = TimeFormat.monotonic()
        daemon.drain()
        #expect(TimeFormat.monotonic() - t0 < 3, "no drain period")
        #expect(client.waitForClose(timeoutSeconds: 10))
        #expect(refuses(h.port))
    }

    /// A second signal during the drain (`interrupt`) stops at once instead of waiting out the period.
    @Test func interruptCutsTheDrainShort() throws {
        let h = try Harness(.live, watch: true) { $0.lookupd.drainSeconds = 60 }; defer { h.close() }
        let daemon = try #require(h.daemon)
        let interrupt = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            daemon.drain(interrupt: interrupt)
            done.signal()
        }
        t.start()
        #expect(eventually { h.service.isDraining })
        #expect(try h.get("/readyz").status == 503)
        #expect(try h.ids("u1") == ["v3", "v4", "v5", "v6", "v7"])  // default limit 5 of u1's fixture list
        #expect(done.wait(timeout: .now() + 0.2) == .timedOut, "stopped before the 60 s drain without a signal")
        interrupt.signal()
        #expect(done.wait(timeout: .now() + 20) == .success, "a second signal did not stop the drain")
        #expect(refuses(h.port))
    }
}
