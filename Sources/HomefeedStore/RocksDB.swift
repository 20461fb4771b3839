import CRocksDB
import HomefeedCore
import Glibc

// Thin owners of RocksDB's C handles. The handles import as OpaquePointer; each wrapper is a `final class` that
// owns exactly one handle and frees it in deinit. They are `@unchecked Sendable` because RocksDB documents these
// objects as thread-safe for the operations used here (concurrent Get/iterators on one DB, immutable options
// after open); none of them has Swift-side mutable state after init.

/// Runs a C call that reports failure through a `char** errptr` and turns it into a HomefeedError.
@inline(__always)
func rocksCall<R>(_ what: @autoclosure () -> String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) throws -> R {
    var err: UnsafeMutablePointer<CChar>? = nil
    let r = body(&err)
    if let err {
        let msg = String(cString: err)
        rocksdb_free(err)
        throw HomefeedError("\(what()): \(msg)")
    }
    return r
}

/// The table layout every Homefeed SST is written with (the reader inherits it from the files):
/// 8 KiB blocks with a restart point at every key (see `init`), no compression (lists are packed floats and ints and
/// barely compress; lookups must not pay for it), 10-bit bloom filters (unknown users miss without touching a data
/// block), a sparse hash index inside data blocks (point lookups without binary search), index and filter blocks
/// held by the table reader, not the cache.
final class TableOptions: @unchecked Sendable {
    let options: OpaquePointer
    private let table: OpaquePointer
    private let cache: OpaquePointer?

    init(blockCacheMB: Int? = nil) {
        options = rocksdb_options_create()
        table = rocksdb_block_based_options_create()
        // Point lookups of ~1 KB values from mapped files cost cache and TLB misses, not instructions. 8 KiB
        // blocks, a restart point at every key and a sparse in-block hash index (10 buckets per key: a bucket
        // shared by two keys falls back to binary search, which half the lookups did at RocksDB's default 0.75)
        // let a get touch the index, the block's trailer and hash bucket, and the key itself. Measured with
        // `homefeed-bench lookup` on a 1 M-user version, same run: bare get p50 2.4 µs vs 2.8 µs for 32 KiB
        // blocks with a restart every 4 keys (the previous layout), request p50 4.4 vs 4.9 µs.
        rocksdb_block_based_options_set_block_size(table, 8 * 1024)
        rocksdb_block_based_options_set_block_restart_interval(table, 1)
        rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom_full(10))
        rocksdb_block_based_options_set_data_block_index_type(table, 1)  // kDataBlockBinaryAndHash
        rocksdb_block_based_options_set_data_block_hash_ratio(table, 0.1)
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 0)
        if let mb = blockCacheMB, mb > 0 {
            cache = rocksdb_cache_create_lru(max(1, mb) << 20)
            rocksdb_block_based_options_set_block_cache(table, cache)
        } else if blockCacheMB == 0 {
            // Readers without a block cache map the files and read blocks straight from the page cache.
            cache = nil
            rocksdb_block_based_options_set_no_block_cache(table, 1)
            rocksdb_options_set_allow_mmap_reads(options, 1)
        } else {
            cache = nil
        }
        rocksdb_options_set_block_based_table_factory(options, table)
        rocksdb_options_set_compression(options, Int32(rocksdb_no_compression))
        rocksdb_options_set_max_open_files(options, -1)   // open every SST up front: a deleted version stays readable
        rocksdb_options_set_info_log_level(options, 3)      // errors only; versions are tiny immutable DBs
        rocksdb_options_set_keep_log_file_num(options, 1)
        rocksdb_options_set_skip_stats_update_on_db_open(options, 1)
        rocksdb_options_set_disable_auto_compactions(options, 1)  // ingested files are final
    }

    deinit {
        rocksdb_options_destroy(options)
        rocksdb_block_based_options_destroy(table)
        if let cache { rocksdb_cache_destroy(cache) }
    }
}

/// Writes one sorted SST file. Keys must be added in strictly increasing bytewise order.
public final class SSTFileWriter: @unchecked Sendable {
    private let env: OpaquePointer
    private let writer: OpaquePointer
    private let table = TableOptions()
    public let path: String
    public private(set) var entries = 0
    public private(set) var keyValueBytes = 0

    public init(path: String) throws {
        self.path = path
        env = rocksdb_envoptions_create()
        writer = rocksdb_sstfilewriter_create(env, table.options)
        try rocksCall("cannot create SST file \(path)") { rocksdb_sstfilewriter_open(writer, path, $0) }
    }

    public func put(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws {
        try rocksCall("SST \(path): put") {
            rocksdb_sstfilewriter_put(writer, key.baseAddress?.assumingMemoryBound(to: CChar.self), key.count,
                                      value.baseAddress?.assumingMemoryBound(to: CChar.self), value.count, $0)
        }
        entries += 1
        keyValueBytes += key.count + value.count
    }

    public func put(_ key: [UInt8], _ value: [UInt8]) throws {
        try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try put(k, v) } }
    }

    /// Finishes the file (fsyncs it). Returns false, and removes nothing, when no entry was added:
    /// RocksDB cannot write an empty SST, so callers skip such files.
    public func finish() throws -> Bool {
        if entries == 0 { return false }
        try rocksCall("SST \(path): finish") { rocksdb_sstfilewriter_finish(writer, $0) }
        return true
    }

    public var fileSize: UInt64 {
        var size: UInt64 = 0
        rocksdb_sstfilewriter_file_size(writer, &size)
        return size
    }

    deinit {
        rocksdb_sstfilewriter_destroy(writer)
        rocksdb_envoptions_destroy(env)
    }
}

/// A writable database used only while a version is being assembled: created empty, SSTs ingested, closed.
final class RocksDBBuilder {
    private let db: OpaquePointer
    private let table = TableOptions()
    let path: String

    init(path: String) throws {
        self.path = path
        let options = table.options
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_set_error_if_exists(options, 1)
        db = try rocksCall("cannot create RocksDB at \(path)") { rocksdb_open(options, path, $0) }!
    }

    /// Moves the files into the database (they must not overlap).
    func ingest(_ files: [String]) throws {
        guard !files.isEmpty else { return }
        let opts = rocksdb_ingestexternalfileoptions_create()
        defer { rocksdb_ingestexternalfileoptions_destroy(opts) }
        rocksdb_ingestexternalfileoptions_set_move_files(opts, 1)
        var cStrings = files.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        try cStrings.withUnsafeMutableBufferPointer { buf in
            try buf.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: files.count) { ptr in
                try rocksCall("ingest into \(path)") { rocksdb_ingest_external_file(db, ptr, files.count, opts, $0) }
            }
        }
    }

    deinit { rocksdb_close(db) }
}

/// A read-only open database: concurrent point lookups (pinned, no copy) and ordered scans.
public final class RocksDBReader: @unchecked Sendable {
    private let db: OpaquePointer
    private let table: TableOptions
    private let readOptions: OpaquePointer
    public let path: String

    public init(path: String, blockCacheMB: Int) throws {
        self.path = path
        let table = TableOptions(blockCacheMB: blockCacheMB)
        self.table = table
        readOptions = rocksdb_readoptions_create()
        // Versions are immutable files that were checksummed when written and ingested; re-verifying a block's
        // checksum on every lookup cost ~3% of the daemon's CPU (perf), so reads skip it.
        rocksdb_readoptions_set_verify_checksums(readOptions, 0)
        db = try rocksCall("cannot open store version \(path)") {
            rocksdb_open_for_read_only(table.options, path, 0, $0)
        }!
    }

    /// Looks `key` up and hands the value's bytes (pinned in the block cache, valid only inside `body`) or nil.
    @inlinable
    public func withValue<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        let pinned = try rawGetPinned(key)
        guard let pinned else { return try body(nil) }
        defer { rocksdb_pinnableslice_destroy(pinned) }
        var len = 0
        let p = rocksdb_pinnableslice_value(pinned, &len)
        return try body(UnsafeRawBufferPointer(start: p, count: len))
    }

    @usableFromInline
    func rawGetPinned(_ key: UnsafeRawBufferPointer) throws -> OpaquePointer? {
        try rocksCall("read from \(path)") {
            rocksdb_get_pinned(db, readOptions, key.baseAddress?.assumingMemoryBound(to: CChar.self), key.count, $0)
        }
    }

    public func get(_ key: [UInt8]) throws -> [UInt8]? {
        try key.withUnsafeBytes { k in try withValue(k) { $0.map { [UInt8]($0) } } }
    }

    /// Visits every key starting with `prefix`, in order; `body` returns false to stop.
    public func scan(prefix: [UInt8], _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        let it = rocksdb_create_iterator(db, readOptions)!
        defer { rocksdb_iter_destroy(it) }
        prefix.withUnsafeBytes { p in rocksdb_iter_seek(it, p.baseAddress?.assumingMemoryBound(to: CChar.self), p.count) }
        while rocksdb_iter_valid(it) != 0 {
            var klen = 0, vlen = 0
            let k = UnsafeRawBufferPointer(start: rocksdb_iter_key(it, &klen), count: klen)
            guard klen >= prefix.count, prefix.withUnsafeBytes({ memcmp($0.baseAddress!, k.baseAddress!, prefix.count) == 0 })
            else { break }
            let v = UnsafeRawBufferPointer(start: rocksdb_iter_value(it, &vlen), count: vlen)
            if try !body(k, v) { break }
            rocksdb_iter_next(it)
        }
        try rocksCall("scan \(path)") { rocksdb_iter_get_error(it, $0) }
    }

    deinit {
        rocksdb_close(db)
        rocksdb_readoptions_destroy(readOptions)
    }
}
