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

    public func stop() {
        server.stop()
        service.stopWatching()
    }

    /// Blocks until SIGINT or SIGTERM, then stops: no new connections, every answer already computed is sent,
    /// then open connections are closed (clients retry on another replica; there is no drain period).
    public func runUntilSignalled() {
        let done = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { done.signal() }
            s.resume()
            sources.append(s)
        }
        done.wait()
        Log.info("homefeed-lookupd: stopping")
        stop()
        sources.forEach { $0.cancel() }
    }
}
