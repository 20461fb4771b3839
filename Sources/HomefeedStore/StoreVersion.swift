import Foundation
import Glibc
import HomefeedCore

/// One open, immutable version: concurrent lookups of user lists (pinned, zero-copy), the popular lists and the
/// video table in memory. Shared by all daemon threads; closed when the last request holding it finishes.
public final class StoreVersion: @unchecked Sendable {  // immutable after init; RocksDB reads are thread-safe
    public let name: String
    public let metadata: RunMetadata
    public let videos: VideoTable
    let popular: [[UInt8]: RecommendationList]
    private let db: RocksDBReader

    /// Opens a version. `blockCacheMB` 0 maps the files (reads come from the page cache); `prefetch` asks the
    /// kernel to read the files ahead in the background, so the first requests after a swap do not hit the disk.
    public init(store: VersionedStore, name: String, blockCacheMB: Int = 0, prefetch: Bool = false) throws {
        self.name = name
        if prefetch { Self.prefetch(directory: store.path(of: name)) }
        db = try RocksDBReader(path: store.path(of: name), blockCacheMB: blockCacheMB)
        guard let metaBytes = try db.get(StoreKey.runMetadata) else {
            throw HomefeedError("version \(name) has no run metadata: not a complete Homefeed version")
        }
        let meta: RunMetadata
        do { meta = try JSONDecoder().decode(RunMetadata.self, from: Data(metaBytes)) }
        catch { throw HomefeedError("version \(name): unreadable run metadata: \(error)") }
        try meta.checkStoreFormat(version: name)
        metadata = meta
        var table = VideoTable()
        var expected: UInt32 = 0
        try db.scan(prefix: [StoreKey.videoPrefix]) { k, v in
            guard k.count == 5 else { throw HomefeedError("version \(name): bad video key") }
            let idx = UInt32(bigEndian: k.loadUnaligned(fromByteOffset: 1, as: UInt32.self))
            guard idx == expected else { throw HomefeedError("version \(name): video table has a gap at \(expected)") }
            table.append(try VideoRecord.decode(v))
            expected += 1
            return true
        }
        videos = table
        var lists: [[UInt8]: RecommendationList] = [:]
        try db.scan(prefix: [StoreKey.popularPrefix]) { k, v in
            lists[[UInt8](k)] = try ListCodec.decode(v)
            return true
        }
        popular = lists
    }

    /// Hands the user's encoded list to `body` (nil when the user has none). The key is built on the stack:
    /// this is the daemon's per-request path.
    @inlinable
    public func withUserList<R>(_ userID: UnsafeRawBufferPointer, _ body: (ListView?) throws -> R) throws -> R {
        try withUnsafeTemporaryAllocation(byteCount: 9 + userID.count, alignment: 8) { key in
            StoreKey.user(userID, into: key)
            return try readValue(UnsafeRawBufferPointer(key)) { bytes in try body(bytes.map { try ListView($0) }) }
        }
    }

    @usableFromInline
    func readValue<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        try db.withValue(key, body)
    }

    /// posix_fadvise(WILLNEED) on every SST of the version: asynchronous readahead into the page cache.
    static func prefetch(directory: String) {
        for f in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where f.hasSuffix(".sst") {
            let fd = open(directory + "/" + f, O_RDONLY | O_CLOEXEC)
            if fd < 0 { continue }
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED)
            close(fd)
        }
    }

    /// The user's decoded list, or nil (tests, tools).
    public func userList(_ userID: String) throws -> RecommendationList? {
        try StoreKey.user(userID).withUnsafeBytes { k in try readValue(k) { try $0.map(ListCodec.decode) } }
    }

    public func popularList(_ scope: PopularScope, _ code: String = "") -> RecommendationList? {
        popular[StoreKey.popular(scope, code)]
    }

    /// Every user list in key order (export, checks).
    public func forEachUser(_ body: (String, ListView) throws -> Void) throws {
        try db.scan(prefix: [StoreKey.userPrefix]) { k, v in
            let id = String(decoding: StoreKey.userID(fromKey: k), as: UTF8.self)
            try body(id, try ListView(v))
            return true
        }
    }
}
