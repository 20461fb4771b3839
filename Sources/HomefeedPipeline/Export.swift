import Foundation
import HomefeedCore
import HomefeedStore

/// `homefeed-batch export`: one line per user of the served version, `user_id<TAB>video_id,video_id,…` best first;
/// with `sources`, each entry as `video_id:source:score` (the candidate source that proposed it first, its ranking
/// score).
public enum Export {
    @discardableResult
    public static func run(storeDir: String, version: String? = nil, out: String?, sources: Bool = false) throws -> Int {
        let store = VersionedStore(root: storeDir)
        guard let name = try version ?? store.current() else { throw HomefeedError("\(storeDir): no published version to export") }
        let v = try StoreVersion(store: store, name: name)
        let fd: Int32 = out == nil ? 1 : open(out!, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HomefeedError("cannot write \(out!): \(String(cString: strerror(errno)))") }
        defer { if out != nil { close(fd) } }
        var buf: [UInt8] = []
        buf.reserveCapacity(1 << 20)
        func flush() throws {
            var off = 0
            while off < buf.count {
                let n = buf.withUnsafeBytes { write(fd, $0.baseAddress! + off, buf.count - off) }
                guard n > 0 else { throw HomefeedError("write failed: \(String(cString: strerror(errno)))") }
                off += n
            }
            buf.removeAll(keepingCapacity: true)
        }
        var users = 0
        try v.forEachUser { id, list in
            buf.append(contentsOf: id.utf8)
            buf.append(9)
            for i in 0..<list.count {
                if i > 0 { buf.append(UInt8(ascii: ",")) }
                buf.append(contentsOf: v.videos.ids[Int(list.video(i))].utf8)
                if sources {
                    buf.append(UInt8(ascii: ":")); buf.append(contentsOf: list.source(i).name.utf8)
                    buf.append(UInt8(ascii: ":")); buf.append(contentsOf: "\(list.score(i))".utf8)
                }
            }
            buf.append(10)
            users += 1
            if buf.count > 1 << 20 { try flush() }
        }
        try flush()
        return users
    }
}
