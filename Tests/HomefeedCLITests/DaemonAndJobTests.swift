import Foundation
import Testing
import HomefeedHTTP
import HomefeedTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A running `homefeed-lookupd` on a free loopback port (`--listen 127.0.0.1:0`; the port is read from its log line).
final class Daemon {
    let process: Spawned
    let port: Int

    init(store: String, in dir: TempDir, extra: [String] = []) throws {
        process = try Spawned(CLI.lookupd, ["--store", store, "--listen", "127.0.0.1:0", "--threads", "2"] + extra,
                              outputDir: dir.sub("proc-output"))
        var port: Int?
        let p = process
        poll(timeout: 60) {
            port = p.stderr.firstMatch(of: #/listening on 127\.0\.0\.1:(\d+),/#).flatMap { Int($0.1) }
            return port != nil || !p.isRunning
        }
        guard let port else {
            let r = process.result(timeout: 1)
            process.kill()
            throw DaemonError(message: "homefeed-lookupd did not start: \(r)")
        }
        self.port = port
    }

    struct DaemonError: Error, CustomStringConvertible { var message: String; var description: String { message } }

    /// One request on a fresh connection (nil when the daemon does not answer).
    func get(_ target: String) -> HTTPClientResponse? {
        guard let c = try? HTTPClient(port: port, timeoutSeconds: 10) else { return nil }
        defer { c.close() }
        return try? c.get(target)
    }

    func json(_ target: String) -> [String: Any]? {
        guard let r = get(target), r.status == 200 else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
    }

    func servedVersion() -> String? { json("/v1/version")?["version"] as? String }

    func kill() { process.kill() }
}

@Suite(.enabled(if: CLI.found, Comment(rawValue: CLI.notFound)))
struct LookupDaemonProcessTests {
    @Test func servesPicksUpNewVersionsAndStopsOnSIGTERM() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let store = dir.sub("store")
        let first = try batch("run", "--data", data, "--store", store, "--quiet", "--now", "2026-10-25T00:00:00Z", in: dir)
        #expect(first.ok, "\(first)")
        let v1 = try #require(current(store))
        let exportLine = try #require(lines(try batch("export", "--store", store, in: dir).stdout).first)
        let user = String(exportLine.split(separator: "\t")[0])
        let expected = exportLine.split(separator: "\t")[1].split(separator: ",").prefix(5).map(String.init)

        // A drain far longer than the test: the second signal has to end it.
        let conf = dir.sub("drain.toml")
        try "[lookupd]\ndrain_seconds = 120\n".write(toFile: conf, atomically: false, encoding: .utf8)
        let d = try Daemon(store: store, in: dir, extra: ["--config", conf]); defer { d.kill() }
        #expect(poll(timeout: 30, interval: 0.1) { d.get("/readyz")?.status == 200 }, "never ready: \(d.process.stderr)")
        let ready = try #require(d.get("/readyz"))
        #expect(ready.bodyString == #"{"status":"ready","version":"\#(v1)"}"#)
        #expect(d.get("/healthz")?.status == 200)

        let rec = try #require(d.get("/v1/users/\(user)/recommendations?limit=5"))
        #expect(rec.status == 200, "\(rec.bodyString)")
        #expect(rec.bodyString.contains(#""source":"personalized""#), "\(rec.bodyString)")
        let obj = try #require((try JSONSerialization.jsonObject(with: Data(rec.body))) as? [String: Any])
        #expect(obj["user_id"] as? String == user)
        #expect(obj["version"] as? String == v1)
        let items = (obj["items"] as? [[String: Any]] ?? []).compactMap { $0["video_id"] as? String }
        #expect(items == expected, "the daemon and export disagree on \(user)'s list")
        let cold = try #require(d.json("/v1/users/nobody-at-all/recommendations?limit=3"))
        #expect(cold["source"] as? String != "personalized")
        #expect((cold["items"] as? [Any])?.count == 3)

        // A new version is served within seconds, without a restart.
        let second = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(second.ok, "\(second)")
        let v2 = try #require(current(store))
        #expect(v2 != v1)
        #expect(poll(timeout: 20, interval: 0.1) { d.servedVersion() == v2 }, "still serving \(d.servedVersion() ?? "nothing")")
        #expect(d.process.isRunning)
        #expect(d.process.pid > 0)

        // SIGTERM: draining — not ready, still alive and serving the same list.
        d.process.signal(SIGTERM)
        #expect(poll(timeout: 15, interval: 0.05) { d.get("/readyz")?.status == 503 }, "readiness did not fail: \(d.process.stderr)")
        #expect(d.get("/readyz")?.bodyString.contains("draining") == true)
        #expect(d.get("/healthz")?.status == 200)
        let draining = try #require(d.get("/v1/users/\(user)/recommendations?limit=5"))
        #expect(draining.status == 200, "\(draining.bodyString)")
        #expect(d.process.isRunning)
        #expect(d.process.stderr.contains("homefeed-lookupd: SIGTERM, draining for 120.0 s"), "\(d.process.stderr)")
        // A second signal: a clean stop at once, exit 0.
        d.process.signal(SIGTERM)
        #expect(d.process.wait(timeout: 15), "did not stop within 15 s of the second SIGTERM")
        let r = d.process.result(timeout: 1)
        #expect(r.status == 0 && !r.signalled, "\(r)")
        #expect(r.stderr.contains("homefeed-lookupd: stopping"), "\(r)")
    }

    @Test func startsOnAnEmptyStoreAndBecomesReadyAfterTheFirstRun() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let store = dir.sub("store")
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        let conf = dir.sub("no-drain.toml")
        try "[lookupd]\ndrain_seconds = 0\n".write(toFile: conf, atomically: false, encoding: .utf8)
        let d = try Daemon(store: store, in: dir, extra: ["--config", conf]); defer { d.kill() }
        #expect(poll(timeout: 30, interval: 0.1) { d.get("/healthz")?.status == 200 })
        #expect(d.get("/readyz")?.status == 503)
        let r = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(r.ok, "\(r)")
        let v1 = try #require(current(store))
        #expect(poll(timeout: 20, interval: 0.1) { d.get("/readyz")?.status == 200 }, "never became ready")
        #expect(d.servedVersion() == v1)
        // drain_seconds = 0: one SIGINT stops at once.
        d.process.signal(SIGINT)
        #expect(d.process.wait(timeout: 15))
        let end = d.process.result(timeout: 1)
        #expect(end.status == 0 && !end.signalled, "\(end)")
        #expect(end.stderr.contains("homefeed-lookupd: SIGINT (drain_seconds = 0, no drain)"), "\(end)")
    }

    @Test func refusesAMissingStoreOrABusyPort() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let r = try run(CLI.lookupd, ["--store", "/nonexistent/homefeed-store", "--listen", "127.0.0.1:0"], in: dir, timeout: 30)
        #expect(r.status == 1 && !r.signalled, "\(r)")
        #expect(r.stderr.contains("store directory /nonexistent/homefeed-store does not exist"), "\(r)")

        try FileManager.default.createDirectory(atPath: dir.sub("store"), withIntermediateDirectories: true)
        let d = try Daemon(store: dir.sub("store"), in: dir); defer { d.kill() }
        let busy = try run(CLI.lookupd, ["--store", dir.sub("store"), "--listen", "127.0.0.1:\(d.port)"], in: dir, timeout: 30)
        #expect(busy.status == 1 && !busy.signalled, "\(busy)")
        #expect(busy.stderr.contains("127.0.0.1:\(d.port)"), "\(busy)")
        let badListen = try run(CLI.lookupd, ["--store", dir.sub("store"), "--listen", "nonsense"], in: dir, timeout: 30)
        #expect(badListen.status == 1, "\(badListen)")
        #expect(badListen.stderr.contains("--listen"), "\(badListen)")
    }
}

/// `jobs/refresh`, the scheduler's entry point.
@Suite(.enabled(if: CLI.found, Comment(rawValue: CLI.notFound)),
       .enabled(if: CLI.canRunRefreshScript, "flock(1) is not installed"))
struct RefreshJobTests {
    @Test func publishesSkipsWhileLockedAndFailsOnBadData() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let store = dir.sub("store"), config = try smallBlockConfig(dir)
        let env = ["HOMEFEED_BIN": CLI.binDir!, "HOMEFEED_DATA": data, "HOMEFEED_STORE": store, "HOMEFEED_CONFIG": config]

        let first = try run(CLI.refreshScript, ["--quiet"], env: env, in: dir)
        #expect(first.ok, "\(first)")
        #expect(first.stderr.contains("refresh: ok in "), "\(first)")
        let v1 = try #require(current(store))
        #expect(first.stdout.contains("refresh: version \(v1) published"), "\(first)")

        // A second refresh while the first holds the lock: skipped, exit 0.
        let slow = try Spawned(CLI.refreshScript, ["--quiet"], env: env.merging(["HOMEFEED_TEST_BLOCK_DELAY": "0.25"]) { $1 },
                               outputDir: dir.sub("proc-output"))
        defer { slow.kill() }
        #expect(poll(timeout: 60) { partialVersion(store) != nil || !slow.isRunning }, "the slow refresh never started writing")
        #expect(slow.isRunning, "\(slow.result(timeout: 1))")
        let skipped = try run(CLI.refreshScript, ["--quiet"], env: env, in: dir, timeout: 60)
        #expect(skipped.ok, "\(skipped)")
        #expect(skipped.stderr.contains("another refresh holds"), "\(skipped)")
        #expect(skipped.stderr.contains("skipping this run"), "\(skipped)")
        #expect(skipped.stdout.isEmpty)
        #expect(slow.isRunning, "the first refresh ended before the second was tried; the test proved nothing")
        let done = slow.result(timeout: 120)
        #expect(done.ok, "\(done)")
        let v2 = try #require(current(store))
        #expect(v2 != v1 && done.stdout.contains("refresh: version \(v2) published"), "\(done)")


        // A failing refresh: non-zero, says so, the served version stays.
        var bad = env
        bad["HOMEFEED_DATA"] = dir.sub("no-such-data")
        let failed = try run(CLI.refreshScript, ["--quiet"], env: bad, in: dir)
        #expect(failed.status == 1 && !failed.signalled, "\(failed)")
        #expect(failed.stderr.contains("refresh: FAILED (exit 1)"), "\(failed)")
        #expect(current(store) == v2)
        // Extra arguments reach `homefeed-batch run`.
        let guarded = try run(CLI.refreshScript, ["--quiet", "--active-days", "1", "--now", "2035-01-01T00:00:00Z"], env: env, in: dir)
        #expect(guarded.status == 1, "the publish guard should refuse: \(guarded)")
        #expect(guarded.stderr.contains("publish guard"), "\(guarded)")
        #expect(current(store) == v2)
        // A missing binary folder is named.
        var noBin = env
        noBin["HOMEFEED_BIN"] = dir.sub("no-bin")
        let nb = try run(CLI.refreshScript, [], env: noBin, in: dir)
        #expect(nb.status == 1, "\(nb)")
        #expect(nb.stderr.contains(dir.sub("no-bin") + "/homefeed-batch not found"), "\(nb)")

        // The store held by a command started by hand (not through the job's lock): skipped too, exit 0.
        let manual = try Spawned(CLI.batch, ["run", "--data", data, "--store", store, "--config", config, "--quiet"],
                                 env: ["HOMEFEED_TEST_BLOCK_DELAY": "0.25"], outputDir: dir.sub("proc-output-2"))
        defer { manual.kill() }
        #expect(poll(timeout: 60) { partialVersion(store) != nil || !manual.isRunning }, "the manual run never started writing")
        let busy = try run(CLI.refreshScript, ["--quiet"], env: env, in: dir, timeout: 60)
        #expect(busy.ok, "\(busy)")
        #expect(busy.stderr.contains("the store is busy"), "\(busy)")
        #expect(manual.isRunning, "the manual run ended before the refresh was tried; the test proved nothing")
        #expect(manual.result(timeout: 120).ok)
    }

    /// `jobs/train`: the daily training through the same wrapper; the refresh then uses the model it saved.
    @Test func trainJobSavesAModelTheRefreshUses() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let store = dir.sub("store"), config = try smallBlockConfig(dir)
        let env = ["HOMEFEED_BIN": CLI.binDir!, "HOMEFEED_DATA": data, "HOMEFEED_STORE": store, "HOMEFEED_CONFIG": config]
        let trained = try run(CLI.trainScript, ["--quiet", "--no-tune"], env: env, in: dir)
        #expect(trained.ok && trained.stderr.contains("train: ok in "), "\(trained)")
        let model = try #require(trained.stdout.firstMatch(of: #/train: model (model-\S+):/#).map { String($0.1) }, "\(trained)")
        let refreshed = try run(CLI.refreshScript, ["--quiet"], env: env, in: dir)
        #expect(refreshed.ok && refreshed.stdout.contains("by models \(model), ranking "), "\(refreshed)")
        var bad = env
        bad["HOMEFEED_DATA"] = dir.sub("no-such-data")
        let failed = try run(CLI.trainScript, ["--quiet"], env: bad, in: dir)
        #expect(failed.status == 1 && failed.stderr.contains("train: FAILED (exit 1)"), "\(failed)")
    }
}
