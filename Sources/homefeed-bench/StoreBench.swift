import Foundation
import HomefeedCore
import HomefeedStore

/// `store-write`: UserListWriter (key + list encoding + order check + SstFileWriter) against a bare SstFileWriter
/// writing the same pre-encoded bytes, best of `--repeat` runs each, alternating which goes first.
func benchStoreWrite(_ a: [String]) throws {
    guard let dir = arg("dir", a) else { throw HomefeedError("store-write: --dir DIR is required") }
    let n = intArg("users", a, 200_000), k = intArg("entries", a, 100)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let users = synthUsers(n, videos: 200_000, entries: k, seed: 1)
    // The same bytes, pre-encoded, for the bare reference.
    let encoded: [([UInt8], [UInt8])] = users.map { (StoreKey.user($0.id), ListCodec.encode($0.list)) }
    let bytes = encoded.reduce(0) { $0 + $1.0.count + $1.1.count }
    var bestOurs = Double.infinity, bestBare = Double.infinity
    // Alternate which side goes first so page-cache writeback of one run does not always land on the other.
    for r in 0..<intArg("repeat", a, 5) {
        let p1 = dir + "/ours-\(r).sst", p2 = dir + "/bare-\(r).sst"
        func ours() throws -> Double {
            let t0 = TimeFormat.monotonic()
            let w = try UserListWriter(path: p1, shard: .all)
            for i in users.indices { try w.add(userID: users[i].id, list: users[i].list) }
            try w.finish()
            return TimeFormat.monotonic() - t0
        }
        func bare() throws -> Double {
            let t0 = TimeFormat.monotonic()
            let w = try SSTFileWriter(path: p2)
            for (key, v) in encoded { try w.put(key, v) }
            _ = try w.finish()
            return TimeFormat.monotonic() - t0
        }
        if r % 2 == 0 { bestOurs = min(bestOurs, try ours()); bestBare = min(bestBare, try bare()) }
        else { bestBare = min(bestBare, try bare()); bestOurs = min(bestOurs, try ours()) }
        try? FileManager.default.removeItem(atPath: p1); try? FileManager.default.removeItem(atPath: p2)
    }
    let ours = Double(bytes) / bestOurs / 1e6, bare = Double(bytes) / bestBare / 1e6
    print("\(n) users × \(k) entries = \(Format.bytes(bytes)) of keys+values")
    print("UserListWriter (encode+key+put+finish): \(Format.fixed(ours, 1)) MB/s; bare SstFileWriter (put+finish of the same bytes): \(Format.fixed(bare, 1)) MB/s")
    print("bench store-write ours_mb_per_s=\(Format.fixed(ours, 1)) bare_mb_per_s=\(Format.fixed(bare, 1)) ratio=\(Format.fixed(ours / bare, 3)) users=\(n)")
}
