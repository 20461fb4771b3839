import Dispatch
import Foundation
import HomefeedCore
import HomefeedHTTP

/// `homefeed-lookupd`: the service behind an HTTP server, watching the store, until SIGTERM or SIGINT.
public final class LookupDaemon: Sendable {
    public let service: LookupService
    public let server: HTTPServer

    public init(storeDir: String, config: HomefeedConfig, listen: String? = nil) throws {
        guard FileManager.default.fileExists(atPath: storeDir) else {
            throw HomefeedError("store directory \(storeDir) does not exist (run homefeed-batch run --store \(storeDir) first)")
        }
        service = LookupService(storeDir: storeDir, config: config)
        let (host, port): (String, Int)
        do { (host, port) = try HTTPServerConfig.parseListen(listen ?? config.lookupd.listen) }
        catch { throw HomefeedError("--listen: \(error)") }
        let c = config.lookupd
        let httpConfig = HTTPServerConfig(host: host, port: port, threads: c.threads, maxHeaderBytes: c.maxHeaderBytes,
                                          maxBodyBytes: c.maxBodyBytes, maxConnections: c.maxConnections,
                                          idleTimeoutSeconds: c.idleTimeoutSeconds)
        do { server = try HTTPServer(config: httpConfig, handler: service) }
        catch { throw HomefeedError("\(error)") }
        let server = self.server
        service.attach { server.stats }
    }

    /// Loads the served version (if any), starts watching and serving.
    public func start() throws {
        if case .failure(let e) = service.reload() { Log.info("no version served yet: \(e.message)") }
        service.startWatching()
        do { try server.start() } catch { service.stopWatching(); throw HomefeedError("\(error)") }
    }

    /// Stops at once: no new connections, every answer already computed is sent, then open connections are
    /// closed (clients retry on another replica).
    public func stop() {
        server.stop()
        service.stopWatching()
    }

    /// Starts a drain without stopping: /readyz answers 503 from now on (liveness and every other route as
    /// before), so load balancers take this replica out of rotation. True on the first call.
    @discardableResult
    public func beginDrain() -> Bool { service.beginDraining() }

    /// Drains, then stops: `beginDrain()`, keeps answering for `seconds` (default `[lookupd] drain_seconds`), then
    /// `stop()`. Returns once stopped; `interrupt` being signalled during the drain (a second SIGTERM) cuts it short.
    public func drain(seconds: Double? = nil, interrupt: DispatchSemaphore? = nil) {
        let seconds = seconds ?? service.config.drainSeconds
        beginDrain()
        if seconds > 0 {
            // A semaphore nobody signals is a plain sleep.
            let wake = interrupt ?? DispatchSemaphore(value: 0)
            if wake.wait(timeout: .now() + seconds) == .success { Log.info("homefeed-lookupd: second signal, not waiting for the drain") }
        }
        Log.info("homefeed-lookupd: stopping")
        stop()
    }

    /// Blocks until SIGINT or SIGTERM, then drains for `[lookupd] drain_seconds` (see `drain`) and stops; a second
    /// signal during the drain stops at once.
    public func runUntilSignalled() {
        let signalled = DispatchSemaphore(value: 0)
        let received = Locked<[Int32]>([])
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                received.withLock { $0.append(sig) }
                signalled.signal()
            }
            s.resume()
            sources.append(s)
        }
        signalled.wait()
        let name = received.withLock { $0.first } == SIGINT ? "SIGINT" : "SIGTERM"
        let seconds = service.config.drainSeconds
        if seconds > 0 {
            Log.info("homefeed-lookupd: \(name), draining for \(seconds) s: /readyz answers 503, requests are still served (a second signal stops at once)")
        } else {
            Log.info("homefeed-lookupd: \(name) (drain_seconds = 0, no drain)")
        }
        drain(seconds: seconds, interrupt: signalled)
        sources.forEach { $0.cancel() }
    }
}
