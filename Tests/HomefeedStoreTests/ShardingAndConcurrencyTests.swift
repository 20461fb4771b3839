import Foundation
import HomefeedCore
import HomefeedStore
import Synchronization
import Testing

@Suite("Sharded builds and concurrent reads")
struct ShardingAndConcurrencyTests {
    /// Writes each shard's users with a standalone writer (as `run --shard I/N` does); returns the files written.
    private func writeShards(_ users: [(id: String, list: RecommendationList)], count: Int, dir: String) throws -> [String] {
        var files: [String] = []
        for i in 0..<count {
            let shard = try ShardSpec(index: i, count: count)
            let w = try UserListWriter(path: dir + "/" + shard.fileName, shard: shard)
            #expect(w.path == dir + "/" + shard.fileName)
            let mine = users.filter { shard.contains(hash: StoreKey.userHash($0.id)) }
            for u in mine { try w.add(userID: u.id, list: u.list) }
            #expect(w.users == mine.count)
            if let path = try w.finish() { files.append(path) } else { #expect(mine.isEmpty) }
        }
        return files
    }

    @Test func shardedAndUnshardedBuildsServeTheSameLists() throws {
        try withTempStore { store, dir in
            let users = Fixture.users(500)
            let unsharded = try Fixture.build(store, users: users, createdAt: Fixture.createdAt)

            let files = try writeShards(users, count: 4, dir: dir)
            #expect(files.count == 4)
            let b = try VersionBuilder(store: store, createdAt: Fixture.createdAt + 1)
            try b.writePopular(Fixture.popular)
            try b.addUserListFiles(files)
            try b.writeVideos(Fixture.videos(6))
            var meta = Fixture.metadata()
            meta.shards = 4
            try b.finish(metadata: meta)
            let sharded = b.name

            let a = try StoreVersion(store: store, name: unsharded)
            let s = try StoreVersion(store: store, name: sharded)
            #expect(s.metadata.shards == 4)
            for u in users {
                let la = try a.userList(u.id), ls = try s.userList(u.id)
                #expect(la == u.list, "unsharded \(u.id)")
                #expect(ls == u.list, "sharded \(u.id)")
            }
            var ida: [String] = [], ids: [String] = []
            try a.forEachUser { id, _ in ida.append(id) }
            try s.forEachUser { id, _ in ids.append(id) }
            #expect(ida == users.map(\.id))
            #expect(ids == ida)
            for p in Fixture.popular { #expect(s.popularList(p.scope, p.code) == p.list) }
            #expect(s.videos.ids == a.videos.ids)
        }
    }

    @Test func emptyShardsAreSkipped() throws {
        try withTempStore { store, dir in
            // Only users of shards 0 and 2 (of 3): shard 1 writes nothing.
            let shards = try (0..<3).map { try ShardSpec(index: $0, count: 3) }
            let users = Fixture.users(60).filter { !shards[1].contains(hash: StoreKey.userHash($0.id)) }
            #expect(!users.isEmpty)
            let files = try writeShards(users, count: 3, dir: dir)
            #expect(files.count == 2)
            #expect(!files.contains { $0.hasSuffix(shards[1].fileName) })

            let b = try VersionBuilder(store: store, createdAt: Fixture.createdAt)
            try b.addUserListFiles(files)
            // An empty shard written through the builder is skipped as well.
            let empty = try b.userListWriter(shard: shards[1])
            #expect(try empty.finish() == nil)
            var meta = Fixture.metadata()
            meta.shards = 3
            try b.finish(metadata: meta)

            let v = try StoreVersion(store: store, name: b.name)
            for u in users { #expect(try v.userList(u.id) == u.list) }
            var n = 0
            try v.forEachUser { _, _ in n += 1 }
            #expect(n == users.count)
        }
    }

    @Test func concurrentReadsSeeTheWrittenLists() throws {
        try withTempStore { store, _ in
            let users = Fixture.users(300)
            let name = try Fixture.build(store, users: users)
            let version = try StoreVersion(store: store, name: name, blockCacheMB: 1)
            let expected = Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0.list) })
            let ids = users.map(\.id) + (0..<30).map { "missing-\($0)" }

            struct Tally { var reads = 0, hits = 0, misses = 0, wrong: [String] = [] }
            let tally = Mutex(Tally())
            let done = DispatchGroup()
            for t in 0..<4 {
                done.enter()
                let thread = Thread {
                    var rng = SeededRandom(seed: UInt64(t) + 100)
                    var local = Tally()
                    for _ in 0..<2000 {
                        var id = ids[rng.nextInt(ids.count)]
                        let got: RecommendationList?
                        do {
                            got = try id.withUTF8 { p in
                                try version.withUserList(UnsafeRawBufferPointer(p)) { $0.map(decoded) }
                            }
                        } catch {
                            local.wrong.append("\(id): \(error)")
                            continue
                        }
                        local.reads += 1
                        if got == nil { local.misses += 1 } else { local.hits += 1 }
                        if got != expected[id] { local.wrong.append(id) }
                    }
                    tally.withLock { total in
                        total.reads += local.reads; total.hits += local.hits; total.misses += local.misses
                        total.wrong += local.wrong
                    }
                    done.leave()
                }
                thread.start()
            }
            done.wait()
            let result = tally.withLock { $0 }
            #expect(result.reads == 8000)
            #expect(result.wrong.isEmpty, "wrong reads: \(result.wrong.prefix(5))")
            #expect(result.hits > 0 && result.misses > 0)
        }
    }
}
