import Foundation
import Glibc
import HomefeedCore

/// Assembles one new version in `STORE/tmp/` from sorted SST files, then moves it into `versions/` complete.
/// Nothing under `versions/` or CURRENT changes until `finish` (build) and `VersionedStore.publish` (serve).
///
/// Files, all written with SstFileWriter in key order and ingested at once (their key ranges do not overlap):
/// `meta.sst` (M), `popular.sst` (P), `users-I-of-N.sst` (U, one per shard), `videos.sst` (V).
public final class VersionBuilder {
    public let store: VersionedStore
    public let name: String
    let dbDir: String
    let sstDir: String
    private var sstFiles: [String] = []

    public init(store: VersionedStore, createdAt: Int64) throws {
        self.store = store
        name = store.nextVersionName(createdAt: createdAt)
        dbDir = store.tmpDir + "/" + name
        sstDir = store.tmpDir + "/" + name + ".sst"
        try FileManager.default.createDirectory(atPath: sstDir, withIntermediateDirectories: true)
    }

    /// A writer for this version's user lists of `shard`.
    public func userListWriter(shard: ShardSpec = .all) throws -> UserListWriter {
        try UserListWriter(path: sstDir + "/" + shard.fileName, shard: shard) { [unowned self] in self.sstFiles.append($0) }
    }

    /// Adds user-list SSTs computed elsewhere (`run --shard I/N`). They are hard-linked (copied across file
    /// systems) into this build, so the originals stay and a refused or failed ingest can be retried.
    public func addUserListFiles(_ paths: [String]) throws {
        for (i, p) in paths.enumerated() {
            let target = sstDir + "/shard-\(i)-" + (p as NSString).lastPathComponent
            if link(p, target) != 0 {
                do { try FileManager.default.copyItem(atPath: p, toPath: target) }
                catch { throw HomefeedError("cannot link or copy shard file \(p) into \(sstDir): \(error)") }
            }
            sstFiles.append(target)
        }
    }

    /// Lists written by `writePopular`: region, language and global ones, and segment ones (`PS`).
    public private(set) var popularListsWritten = 0
    public private(set) var segmentListsWritten = 0
    private var popularWritten = false

    /// Writes every fallback list of the version — global, region, language and cold-start segment lists — in one
    /// call (they share one SST). A segment list's code must be a `UserSegment.code` exactly as `code` spells it
    /// (that is the key the daemon looks up); a key given twice is refused.
    public func writePopular(_ lists: [(scope: PopularScope, code: String, list: RecommendationList)]) throws {
        guard !popularWritten else {
            throw HomefeedError("writePopular called twice for \(name): pass every popular and segment list in one call")
        }
        for l in lists where l.scope == .segment {
            guard let s = UserSegment(code: l.code), s.code == l.code else {
                throw HomefeedError("segment list code '\(l.code)' is not a segment code (COUNTRY.LANGUAGE.AGE.GENDER as UserSegment.code writes it, e.g. US.en.25-34.f)")
            }
        }
        let entries = lists.map { (StoreKey.popular($0.scope, $0.code), ListCodec.encode($0.list)) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        for (a, b) in zip(entries, entries.dropFirst()) where a.0 == b.0 {
            throw HomefeedError("popular list key '\(String(decoding: a.0, as: UTF8.self))' given twice")
        }
        try writeSST("popular.sst", entries)
        popularWritten = true
        segmentListsWritten = lists.count { $0.scope == .segment }
        popularListsWritten = lists.count - segmentListsWritten
    }

    public func writeVideos(_ records: [VideoRecord]) throws {
        let w = try SSTFileWriter(path: sstDir + "/videos.sst")
        var value: [UInt8] = []
        for (i, r) in records.enumerated() {
            r.encode(into: &value)
            try w.put(StoreKey.video(UInt32(i)), value)
        }
        if try w.finish() { sstFiles.append(w.path) }
    }

    private func writeSST(_ file: String, _ entries: [([UInt8], [UInt8])]) throws {
        let w = try SSTFileWriter(path: sstDir + "/" + file)
        for (k, v) in entries { try w.put(k, v) }
        if try w.finish() { sstFiles.append(w.path) }
    }

    /// Ingests everything with the metadata, closes the database and moves it to `versions/NAME`.
    public func finish(metadata: RunMetadata) throws {
        var meta = metadata
        meta.version = name
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try enc.encode(meta)
        try writeSST("meta.sst", [(StoreKey.runMetadata, [UInt8](json))])
        do {
            let db = try RocksDBBuilder(path: dbDir)
            try db.ingest(sstFiles)
        }
        try writeFileSynced(dbDir + "/meta.json", [UInt8](json))  // durable before the rename publishes the dir
        try fsyncDirectory(dbDir)
        try FileManager.default.createDirectory(atPath: store.versionsDir, withIntermediateDirectories: true)
        let target = store.path(of: name)
        guard rename(dbDir, target) == 0 else {
            throw HomefeedError("cannot move \(dbDir) to \(target): \(String(cString: strerror(errno)))")
        }
        try fsyncDirectory(store.versionsDir)
        try? FileManager.default.removeItem(atPath: sstDir)
    }

    /// Drops a build that will not be finished.
    public func abandon() {
        try? FileManager.default.removeItem(atPath: dbDir)
        try? FileManager.default.removeItem(atPath: sstDir)
    }
}

/// Writes `bytes` to a new file at `path` and fsyncs it (the caller fsyncs the directory).
public func writeFileSynced(_ path: String, _ bytes: some ContiguousBytes) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw HomefeedError("cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    try bytes.withUnsafeBytes { b in
        var off = 0
        while off < b.count {
            let n = write(fd, b.baseAddress! + off, b.count - off)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HomefeedError("cannot write \(path): \(String(cString: strerror(errno)))") }
            off += n
        }
    }
    guard fsync(fd) == 0 else { throw HomefeedError("cannot fsync \(path): \(String(cString: strerror(errno)))") }
}

/// Streams user lists into one SST; users must arrive in key order (`StoreKey.userHash`, then id bytes).
public final class UserListWriter {
    private let sst: SSTFileWriter
    public let shard: ShardSpec
    /// The key and value of the user being added and the previous key, in buffers reached through one `let`
    /// pointer: no per-call exclusivity checks or array uniqueness tests (a third of the writer's own cost next
    /// to RocksDB's, `homefeed-bench store-write`).
    private let scratch: UnsafeMutablePointer<Scratch>
    private let onFinish: (String) -> Void
    public private(set) var users = 0
    public private(set) var entries = 0

    private struct Scratch {
        var key = Buffer(), lastKey = Buffer(), value = Buffer()
    }

    /// A growable byte buffer with a current length.
    private struct Buffer {
        var base = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        var capacity = 64
        var count = 0
        mutating func resize(_ n: Int) {
            if n > capacity {
                base.deallocate()
                capacity = max(n, 2 * capacity)
                base = .allocate(byteCount: capacity, alignment: 16)
            }
            count = n
        }
        var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    }

    init(path: String, shard: ShardSpec, onFinish: @escaping (String) -> Void) throws {
        sst = try SSTFileWriter(path: path)
        self.shard = shard
        self.onFinish = onFinish
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: Scratch())
    }

    deinit {
        for b in [scratch.pointee.key, scratch.pointee.lastKey, scratch.pointee.value] { b.base.deallocate() }
        scratch.deinitialize(count: 1)
        scratch.deallocate()
    }

    /// A standalone writer for `run --shard` (no version being built).
    public convenience init(path: String, shard: ShardSpec) throws {
        try self.init(path: path, shard: shard) { _ in }
    }

    public var path: String { sst.path }
    public var bytesWritten: Int { sst.keyValueBytes }

    public func add(userID: UnsafeRawBufferPointer, list: RecommendationList) throws {
        let s = scratch
        s.pointee.key.resize(9 + userID.count)
        StoreKey.user(userID, into: UnsafeMutableRawBufferPointer(start: s.pointee.key.base, count: s.pointee.key.count))
        let hash = UInt64(bigEndian: s.pointee.key.base.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
        guard shard.contains(hash: hash) else {
            throw HomefeedError("user '\(String(decoding: userID, as: UTF8.self))' does not belong to shard \(shard)")
        }
        guard users == 0 || Self.precedes(s.pointee.lastKey.bytes, s.pointee.key.bytes) else {
            throw HomefeedError("user lists out of key order at user '\(String(decoding: userID, as: UTF8.self))'")
        }
        s.pointee.value.resize(ListCodec.encodedSize(list))
        ListCodec.encode(list, to: s.pointee.value.base)
        try sst.put(s.pointee.key.bytes, s.pointee.value.bytes)
        swap(&s.pointee.key, &s.pointee.lastKey)
        users += 1
        entries += list.count
    }

    /// Bytewise order, as RocksDB's default comparator (memcmp, then length).
    static func precedes(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Bool {
        let c = memcmp(x.baseAddress!, y.baseAddress!, min(x.count, y.count))
        return c < 0 || (c == 0 && x.count < y.count)
    }

    public func add(userID: String, list: RecommendationList) throws {
        let done: Void? = try userID.utf8.withContiguousStorageIfAvailable { try add(userID: UnsafeRawBufferPointer($0), list: list) }
        if done == nil {
            var s = userID
            try s.withUTF8 { try add(userID: UnsafeRawBufferPointer($0), list: list) }
        }
    }

    /// Finishes the file; returns its path, or nil when the shard had no user.
    @discardableResult
    public func finish() throws -> String? {
        guard try sst.finish() else { return nil }
        onFinish(sst.path)
        return sst.path
    }
}

extension VersionedStore {
    /// Serves `version` unless the publish guard objects (see `PublishGuard`); then prunes old versions.
    /// When the store is pinned the version is kept but not served, and `.pinned` is returned.
    public func publish(_ version: String, force: Bool, guardMaxDrop: Double, keep: Int) throws -> PublishOutcome {
        if let pin = try pinned() { return .pinned(pin) }
        if let served = try current(), !force {
            let old = try metadata(of: served), new = try metadata(of: version)
            if let reason = PublishGuard.objection(old: old.counts, new: new.counts, maxDrop: guardMaxDrop) {
                throw HomefeedError("publish guard refused \(version) against served \(served): \(reason); the version is kept unpublished (use --force to publish anyway)")
            }
        }
        try setCurrent(version)
        let pruned = try prune(keep: keep)
        return .published(pruned: pruned)
    }
}

public enum PublishOutcome: Equatable, Sendable {
    case published(pruned: [String])
    case pinned(String)
}

/// Refuses a version that looks broken next to the one served: far fewer personalized users or much shorter lists.
public enum PublishGuard {
    public static func objection(old: RunMetadata.Counts, new: RunMetadata.Counts, maxDrop: Double) -> String? {
        func drop(_ a: Double, _ b: Double) -> Double { a > 0 ? (a - b) / a : 0 }
        let users = drop(Double(old.personalizedUsers), Double(new.personalizedUsers))
        if users > maxDrop {
            return "personalized users fell from \(old.personalizedUsers) to \(new.personalizedUsers) (more than \(Int((maxDrop * 100).rounded()))%)"
        }
        let len = drop(old.meanListLength, new.meanListLength)
        if len > maxDrop {
            return "mean list length fell from \(Format.fixed(old.meanListLength, 1)) to \(Format.fixed(new.meanListLength, 1)) (more than \(Int((maxDrop * 100).rounded()))%)"
        }
        return nil
    }
}
