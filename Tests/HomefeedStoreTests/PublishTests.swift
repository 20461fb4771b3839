import Foundation
import HomefeedCore
import HomefeedStore
import Testing

@Suite("Publish, prune, pin and the publish guard")
struct PublishTests {
    @Test func keepsTheNewestN() throws {
        try withTempStore { store, _ in
            let lock = try store.lock()
            defer { lock.release() }
            var names: [String] = []
            var first: StoreVersion?
            let users = Fixture.users(5)
            for i in 0..<7 {
                let name = try Fixture.build(store, users: users, createdAt: Fixture.createdAt + Int64(i))
                names.append(name)
                if i == 0 { first = try StoreVersion(store: store, name: name) }  // a reader holding the oldest
                let outcome = try store.publish(name, force: false, guardMaxDrop: 0.5, keep: 3)
                #expect(outcome == .published(pruned: i >= 3 ? [names[i - 3]] : []))
                #expect(try store.current() == name)
            }
            #expect(store.versions() == Array(names.suffix(3)))
            #expect(try store.current() == names[6])
            for gone in names.prefix(4) { #expect(!fileExists(store.path(of: gone))) }
            #expect(try StoreVersion(store: store, name: names[6]).userList(users[0].id) == users[0].list)
            // A version deleted by prune stays readable through a reader that had it open (all files held open).
            let old = try #require(first)
            for u in users { #expect(try old.userList(u.id) == u.list) }
            var n = 0
            try old.forEachUser { _, _ in n += 1 }
            #expect(n == users.count)
        }
    }

    @Test func servedAndPinnedVersionsAreNeverPruned() throws {
        try withTempStore { store, _ in
            let v = try (0..<4).map { try Fixture.build(store, createdAt: Fixture.createdAt + Int64($0)) }
            try store.setCurrent(v[0])
            // keep 1: only the newest and the served one survive.
            #expect(try store.prune(keep: 1) == [v[1], v[2]])
            #expect(store.versions() == [v[0], v[3]])
            // Pinned + served (a rollback): both survive along with the newest.
            let v4 = try Fixture.build(store, createdAt: Fixture.createdAt + 4)
            let v5 = try Fixture.build(store, createdAt: Fixture.createdAt + 5)
            try store.pin(v[0])
            try store.setCurrent(v4)
            #expect(try store.prune(keep: 1) == [v[3]])
            #expect(store.versions() == [v[0], v4, v5])
            // keep 0 is treated as 1: the newest is never deleted, nor the previously served v4 (the rollback target).
            try store.unpin()
            try store.setCurrent(v5)
            #expect(try store.previousServed() == v4)
            #expect(try store.prune(keep: 0) == [v[0]])
            #expect(store.versions() == [v4, v5])
        }
    }

    @Test func pinnedStoreBuildsButDoesNotPublish() throws {
        try withTempStore { store, _ in
            let v1 = try Fixture.build(store, createdAt: Fixture.createdAt)
            #expect(try store.publish(v1, force: false, guardMaxDrop: 0.5, keep: 5) == .published(pruned: []))
            let v2 = try Fixture.build(store, createdAt: Fixture.createdAt + 1)
            #expect(try store.publish(v2, force: false, guardMaxDrop: 0.5, keep: 5) == .published(pruned: []))

            // Roll back to v1.
            try store.pin(v1)
            try store.setCurrent(v1)
            #expect(try store.pinned() == v1)

            let v3 = try Fixture.build(store, createdAt: Fixture.createdAt + 2)
            #expect(try store.publish(v3, force: false, guardMaxDrop: 0.5, keep: 1) == .pinned(v1))
            #expect(try store.publish(v3, force: true, guardMaxDrop: 0.5, keep: 1) == .pinned(v1))
            #expect(try store.current() == v1)
            #expect(store.versions() == [v1, v2, v3])  // nothing pruned while pinned

            try store.unpin()
            #expect(try store.pinned() == nil)
            try store.unpin()  // idempotent
            // v1 was served last before v3, so it stays as the rollback target; nothing is pruned at keep 2.
            #expect(try store.publish(v3, force: false, guardMaxDrop: 0.5, keep: 2) == .published(pruned: []))
            #expect(try store.current() == v3)
            #expect(try store.previousServed() == v1)
            #expect(store.versions() == [v1, v2, v3])
        }
    }

    @Test func guardRefusesFewerPersonalizedUsers() throws {
        try withTempStore { store, _ in
            let v1 = try Fixture.build(store, metadata: Fixture.metadata(personalizedUsers: 1000, meanListLength: 50),
                                       createdAt: Fixture.createdAt)
            _ = try store.publish(v1, force: false, guardMaxDrop: 0.2, keep: 5)
            // A 10% drop is within the guard.
            let v2 = try Fixture.build(store, metadata: Fixture.metadata(personalizedUsers: 900, meanListLength: 50),
                                       createdAt: Fixture.createdAt + 1)
            #expect(try store.publish(v2, force: false, guardMaxDrop: 0.2, keep: 5) == .published(pruned: []))
            // 900 → 400 is refused.
            let v3 = try Fixture.build(store, metadata: Fixture.metadata(personalizedUsers: 400, meanListLength: 50),
                                       createdAt: Fixture.createdAt + 2)
            expectHomefeedError("publish guard refused \(v3)", v2, "900", "400", "20%", "--force") {
                try store.publish(v3, force: false, guardMaxDrop: 0.2, keep: 1)
            }
            #expect(try store.current() == v2)
            #expect(store.versions() == [v1, v2, v3])  // refused version kept, nothing pruned
            #expect(try StoreVersion(store: store, name: v3).metadata.counts.personalizedUsers == 400)
            // force publishes it.
            #expect(try store.publish(v3, force: true, guardMaxDrop: 0.2, keep: 5) == .published(pruned: []))
            #expect(try store.current() == v3)
        }
    }

    @Test func guardRefusesShorterLists() throws {
        try withTempStore { store, _ in
            let v1 = try Fixture.build(store, metadata: Fixture.metadata(personalizedUsers: 1000, meanListLength: 48.25),
                                       createdAt: Fixture.createdAt)
            _ = try store.publish(v1, force: false, guardMaxDrop: 0.3, keep: 5)
            let v2 = try Fixture.build(store, metadata: Fixture.metadata(personalizedUsers: 1200, meanListLength: 12),
                                       createdAt: Fixture.createdAt + 1)
            expectHomefeedError("mean list length fell from 48.3 to 12.0", "30%") {
                try store.publish(v2, force: false, guardMaxDrop: 0.3, keep: 5)
            }
            #expect(try store.current() == v1)
            #expect(fileExists(store.path(of: v2)))
            #expect(try store.publish(v2, force: true, guardMaxDrop: 0.3, keep: 5) == .published(pruned: []))
            #expect(try store.current() == v2)
        }
    }

    @Test func guardObjectionRules() {
        func counts(_ users: Int, _ len: Double) -> RunMetadata.Counts {
            var c = RunMetadata.Counts()
            c.personalizedUsers = users
            c.meanListLength = len
            return c
        }
        #expect(PublishGuard.objection(old: counts(100, 10), new: counts(100, 10), maxDrop: 0) == nil)
        #expect(PublishGuard.objection(old: counts(100, 10), new: counts(500, 90), maxDrop: 0) == nil)  // growth is fine
        #expect(PublishGuard.objection(old: counts(100, 10), new: counts(50, 10), maxDrop: 0.5) == nil)  // exactly 50%
        #expect(PublishGuard.objection(old: counts(100, 10), new: counts(49, 10), maxDrop: 0.5)?.contains("from 100 to 49") == true)
        #expect(PublishGuard.objection(old: counts(0, 0), new: counts(0, 0), maxDrop: 0.1) == nil)  // nothing to compare
        #expect(PublishGuard.objection(old: counts(100, 10), new: counts(100, 4), maxDrop: 0.5)?.contains("10.0 to 4.0") == true)
        // The threshold is reported as the operator configured it (0.29 is 28.999… in binary: not "28%").
        #expect(PublishGuard.objection(old: counts(100, 10), new: counts(50, 10), maxDrop: 0.29)?.contains("more than 29%") == true)
        #expect(PublishGuard.objection(old: counts(100, 10), new: counts(100, 1), maxDrop: 0.57)?.contains("more than 57%") == true)
    }
}
