import Foundation
import HomefeedCore
import HomefeedHTTP
import HomefeedStore
import Synchronization

/// The lookup daemon's logic, independent of sockets: it owns the served state (version + blocklist), keeps it
/// fresh (`reload`), and answers requests (`handle`). The HTTP server calls `handle` on its worker threads;
/// tests and benchmarks call it in-process with the same bytes.
public final class LookupService: HTTPHandler, Sendable {
    public let store: VersionedStore
    public let config: HomefeedConfig.Lookupd
    let blockCacheMB: Int
    public let seen: SeenMemory
    public let metrics = LookupMetrics()
    private let state = Locked<ServingState?>(nil)
    private let blocklist = Mutex<(signature: FileSignature?, ids: Set<String>)>((nil, []))
    private let watcherStop = Atomic<Bool>(false)
    private let watcherDone = DispatchSemaphore(value: 0)
    private let watching = Atomic<Bool>(false)
    private let draining = Atomic<Bool>(false)
    /// The HTTP server's counters, shown on /metrics once the daemon attaches its server.
    let serverStats = Mutex<(@Sendable () -> HTTPServerStats)?>(nil)

    public init(storeDir: String, config: HomefeedConfig) {
        store = VersionedStore(root: storeDir)
        self.config = config.lookupd
        blockCacheMB = config.store.blockCacheMB
        seen = SeenMemory(maxUsers: config.lookupd.seenMaxUsers, maxPerUser: config.lookupd.seenMaxPerUser,
                          ttlSeconds: config.lookupd.seenTTLHours * 3600)
    }

    /// The state requests see now (nil until a version is open).
    public var current: ServingState? { state.load() }

    /// Whether the daemon is draining before a stop: /readyz answers 503, everything else is served as usual.
    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Starts draining (one way: a draining replica only stops). True on the first call.
    @discardableResult
    public func beginDraining() -> Bool { !draining.exchange(true, ordering: .relaxed) }

    public func attach(serverStats: @escaping @Sendable () -> HTTPServerStats) {
        self.serverStats.withLock { $0 = serverStats }
    }

    // MARK: Keeping the state fresh

    /// Opens the version CURRENT names if it is not the one served, and re-reads the blocklist if its file
    /// changed. On failure the served state stays as it is (the error is returned for logging). The two are
    /// independent: a blocklist that cannot be read keeps the last good one without holding up new versions, and a
    /// version that cannot be opened does not hold up blocklist changes.
    @discardableResult
    public func reload() -> Result<Bool, HomefeedError> {
        func wrap(_ e: any Error) -> HomefeedError { (e as? HomefeedError) ?? HomefeedError("\(e)") }
        var failure: HomefeedError?
        var changed = false
        var blockChanged = false
        var ids = blocklist.withLock { $0.ids }
        do { (blockChanged, ids) = try refreshBlocklist() } catch { failure = wrap(error) }
        let served = current
        do {
            if let name = try store.current(), name != served?.version.name {
                let version = try StoreVersion(store: store, name: name, blockCacheMB: blockCacheMB, prefetch: true)
                let next = ServingState(version: version, blocklist: ids)
                state.store(next)
                metrics.versionSwaps.add(1, ordering: .relaxed)
                changed = true
            }
        } catch {
            failure = failure ?? wrap(error)
        }
        if !changed, blockChanged, let served {
            let next = served.with(blocklist: ids)
            state.store(next)
            changed = true
        }
        if let failure {
            metrics.versionLoadFailures.add(1, ordering: .relaxed)
            return .failure(failure)
        }
        return .success(changed)
    }

    private func refreshBlocklist() throws -> (Bool, Set<String>) {
        let path = config.blocklistPath
        guard !path.isEmpty else { return (false, []) }
        let sig = FileSignature(path: path)
        let (old, ids) = blocklist.withLock { ($0.signature, $0.ids) }
        if sig == old { return (false, ids) }
        var fresh = Set<String>()
        if sig != nil {
            guard let d = FileManager.default.contents(atPath: path) else { throw HomefeedError("cannot read blocklist \(path)") }
            for line in String(decoding: d, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
                let id = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
                    .trimmingCharacters(in: .whitespaces) ?? ""
                if !id.isEmpty { fresh.insert(id) }
            }
        }
        blocklist.withLock { $0 = (sig, fresh) }
        return (true, fresh)
    }

    /// Polls CURRENT and the blocklist every `reload_interval_seconds` on a background thread.
    public func startWatching(log: @escaping @Sendable (String) -> Void = { Log.info($0) }) {
        guard !watching.exchange(true, ordering: .relaxed) else { return }
        let interval = config.reloadIntervalSeconds
        let t = Thread { [self] in
            var lastError = ""
            while !watcherStop.load(ordering: .relaxed) {
                switch reload() {
                case .success(true):
                    if let s = current { log("serving version \(s.version.name) (\(s.version.metadata.counts.personalizedUsers) users, \(s.blockedCount) blocked videos)") }
                    lastError = ""
                case .failure(let e) where e.message != lastError:
                    log("reload failed, still serving \(current?.version.name ?? "nothing"): \(e.message)")
                    lastError = e.message
                default: break
                }
                var slept = 0.0
                while slept < interval && !watcherStop.load(ordering: .relaxed) {
                    usleep(20_000); slept += 0.02
                }
            }
            watcherDone.signal()
        }
        t.name = "homefeed-watcher"
        t.start()
    }

    public func stopWatching() {
        guard watching.load(ordering: .relaxed) else { return }
        watcherStop.store(true, ordering: .relaxed)
        watcherDone.wait()
        watching.store(false, ordering: .relaxed)
        watcherStop.store(false, ordering: .relaxed)
    }
}

/// Identity of a file's content for change detection without reading it.
struct FileSignature: Equatable, Sendable {
    var inode: UInt64, size: Int64, mtimeNanos: Int64
    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        inode = UInt64(st.st_ino); size = Int64(st.st_size)
        mtimeNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }
}
