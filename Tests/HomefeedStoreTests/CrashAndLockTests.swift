import Foundation
import Glibc
import HomefeedCore
import HomefeedStore
import Testing

@Suite("Crash safety and the store lock")
struct CrashAndLockTests {
    @Test func crashMidBuildLeavesTheServedVersionIntact() throws {
        try withTempStore { store, _ in
            let users = Fixture.users(20)
            let old = try Fixture.build(store, users: users, createdAt: Fixture.createdAt)
            _ = try store.publish(old, force: false, guardMaxDrop: 0.5, keep: 3)

            // A run that dies mid-build: SSTs written, never finished, nothing cleaned up.
            do {
                let b = try VersionBuilder(store: store, createdAt: Fixture.createdAt + 60)
                try b.writePopular(Fixture.popular)
                let w = try b.userListWriter()
                for u in Fixture.users(30, prefix: "crash-") { try w.add(userID: u.id, list: u.list) }
                try w.finish()
                try b.writeVideos(Fixture.videos(4))
            }
            // A half-built database directory as a crash between ingest and rename would leave it, and a torn CURRENT.tmp.
            let halfBuilt = store.tmpDir + "/v000002-20251123T180200Z"
            try FileManager.default.createDirectory(atPath: halfBuilt, withIntermediateDirectories: true)
            try Data("garbage".utf8).write(to: URL(fileURLWithPath: halfBuilt + "/000001.sst"))
            try Data("v000002-2025".utf8).write(to: URL(fileURLWithPath: store.root + "/CURRENT.tmp"))

            // The served version is untouched and serves.
            #expect(try store.current() == old)
            #expect(store.versions() == [old])
            let v = try StoreVersion(store: store, name: old)
            for u in users { #expect(try v.userList(u.id) == u.list) }
            #expect(try v.userList("crash-1") == nil)

            // The next locked command removes the leftovers.
            let lock = try store.lock()
            let removed = try store.removeLeftovers()
            #expect(removed.sorted() == ["v000002-20251123T180100Z.sst", "v000002-20251123T180200Z"])
            #expect(directoryNames(store.tmpDir) == [])
            #expect(!fileExists(store.root + "/CURRENT.tmp"))
            #expect(try store.current() == old)

            // A new build succeeds and publishes.
            let fresh = Fixture.users(15, prefix: "fresh-")
            let new = try Fixture.build(store, users: fresh, createdAt: Fixture.createdAt + 120)
            #expect(new.hasPrefix("v000002-"))
            #expect(try store.publish(new, force: false, guardMaxDrop: 0.5, keep: 3) == .published(pruned: []))
            #expect(try store.current() == new)
            let nv = try StoreVersion(store: store, name: new)
            for u in fresh { #expect(try nv.userList(u.id) == u.list) }
            lock.release()
            // The old version, still open, still serves (and is still on disk: keep 3).
            #expect(try v.userList(users[0].id) == users[0].list)
        }
    }

    @Test func currentNamingAMissingVersion() throws {
        try withTempStore { store, _ in
            let real = try Fixture.build(store, createdAt: Fixture.createdAt)
            try FileManager.default.createDirectory(atPath: store.root, withIntermediateDirectories: true)
            let missing = "v000042-20250101T000000Z"
            try Data((missing + "\n").utf8).write(to: URL(fileURLWithPath: store.root + "/CURRENT"))
            #expect(try store.current() == missing)
            expectHomefeedError("cannot open store version") { try StoreVersion(store: store, name: missing) }
            expectHomefeedError("no complete version '\(missing)'") { try store.setCurrent(missing) }
            expectHomefeedError("no complete version 'v000043-20250101T000000Z'") {
                try store.setCurrent("v000043-20250101T000000Z")
            }
            #expect(try store.current() == missing)
            // Repair by pointing CURRENT at a real version.
            try store.setCurrent(real)
            #expect(try store.current() == real)
            #expect(try String(contentsOfFile: store.root + "/CURRENT", encoding: .utf8) == real + "\n")
        }
    }

    @Test func garbageInCurrentIsAnError() throws {
        try withTempStore { store, _ in
            try FileManager.default.createDirectory(atPath: store.root, withIntermediateDirectories: true)
            #expect(try store.current() == nil)
            #expect(try store.pinned() == nil)
            try Data("../etc/passwd".utf8).write(to: URL(fileURLWithPath: store.root + "/CURRENT"))
            expectHomefeedError("CURRENT", "not a version name") { try store.current() }
        }
    }

    @Test func lockIsExclusive() throws {
        try withTempStore { store, _ in
            let first = try store.lock()
            expectHomefeedError("locked", store.root + "/LOCK") { try store.lock() }
            // Another VersionedStore on the same root, same process: still conflicts (flock is per open file).
            let other = VersionedStore(root: store.root + "/")
            expectHomefeedError("locked") { try other.lock() }
            first.release()
            first.release()  // idempotent
            let second = try other.lock()
            expectHomefeedError("locked") { try store.lock() }
            second.release()
            // Released by deinit too.
            do { _ = try store.lock() }
            let third = try store.lock()
            third.release()
        }
    }

    @Test func lockConflictsWithAnotherProcess() throws {
        try withTempStore { store, _ in
            let lock = try store.lock()
            // flock(1) from util-linux, when present, probes the lock from a separate process.
            guard fileExists("/usr/bin/flock") else { lock.release(); return }
            func probe() throws -> Int32 {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
                p.arguments = ["-n", "-x", store.root + "/LOCK", "true"]
                try p.run()
                p.waitUntilExit()
                return p.terminationStatus
            }
            #expect(try probe() != 0)
            lock.release()
            #expect(try probe() == 0)
        }
    }
}
