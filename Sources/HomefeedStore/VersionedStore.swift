import Foundation
import Glibc
import HomefeedCore

/// A store directory: immutable versions, an atomically flipped CURRENT pointer, an optional pin, a lock.
///
///     STORE/
///       CURRENT            name of the served version (written: temp file, fsync, rename, fsync dir)
///       PINNED             present after a rollback: runs build but do not publish until `unpin`
///       HISTORY            every version ever served, one `name<TAB>time` line each (rollback targets)
///       LOCK               flock'ed by run / rollback / unpin
///       versions/v000042-20261123T180000Z/   a RocksDB (ingested SSTs) + meta.json
///       tmp/               versions being built; leftovers of a crash are removed by the next locked command
public final class VersionedStore: @unchecked Sendable {  // immutable after init; file-system state only
    public let root: String
    public var versionsDir: String { root + "/versions" }
    public var tmpDir: String { root + "/tmp" }
    var currentPath: String { root + "/CURRENT" }
    var pinnedPath: String { root + "/PINNED" }
    var historyPath: String { root + "/HISTORY" }

    public init(root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    // MARK: Reading state

    /// The served version's name, or nil when nothing is published yet.
    public func current() throws -> String? { try readPointer(currentPath) }
    public func pinned() throws -> String? { try readPointer(pinnedPath) }

    public func path(of version: String) -> String { versionsDir + "/" + version }

    private func readPointer(_ path: String) throws -> String? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        let name = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard Self.isVersionName(name) else { throw HomefeedError("\(path) holds '\(name)', not a version name") }
        return name
    }

    /// Complete versions, oldest first.
    public func versions() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: versionsDir)) ?? []
        return names.filter(Self.isVersionName).sorted()
    }

    /// `v` + 6-digit sequence + `-` + compact UTC time: sorts by sequence.
    public static func isVersionName(_ s: String) -> Bool {
        s.count >= 8 && s.hasPrefix("v") && s.dropFirst().prefix(6).allSatisfy(\.isNumber)
            && !s.contains("/") && !s.contains("..")
    }

    public func metadata(of version: String) throws -> RunMetadata {
        let p = path(of: version) + "/meta.json"
        guard let d = FileManager.default.contents(atPath: p) else { throw HomefeedError("version \(version): missing \(p)") }
        do { return try JSONDecoder().decode(RunMetadata.self, from: d) }
        catch { throw HomefeedError("version \(version): unreadable meta.json: \(error)") }
    }

    /// The next version name (sequence after the newest existing one).
    func nextVersionName(createdAt: Int64) -> String {
        let last = versions().last.flatMap { Int($0.dropFirst().prefix(6)) } ?? 0
        let seq = String(last + 1)
        return "v" + String(repeating: "0", count: max(0, 6 - seq.count)) + seq + "-" + TimeFormat.compact(createdAt)
    }

    // MARK: Locking

    /// Takes the store's exclusive lock (non-blocking); held until the returned lock is released or the process ends.
    public func lock() throws -> StoreLock {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return try StoreLock(path: root + "/LOCK")
    }

    /// Removes half-built versions left by a crashed run. Call with the lock held.
    public func removeLeftovers() throws -> [String] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: tmpDir)) ?? []
        for n in names { try fm.removeItem(atPath: tmpDir + "/" + n) }
        try? fm.removeItem(atPath: root + "/CURRENT.tmp")
        try? fm.removeItem(atPath: root + "/PINNED.tmp")
        return names
    }

    // MARK: Changing state (lock held)

    /// Makes `version` the served one: CURRENT is replaced atomically.
    public func setCurrent(_ version: String) throws {
        guard versions().contains(version) else { throw HomefeedError("no complete version '\(version)' in \(versionsDir)") }
        try atomicWrite(currentPath, version + "\n")
        try appendHistory(version)
    }

    /// Versions in the order they were served (oldest first); a name appears again when served again.
    public func servedHistory() -> [String] {
        guard let d = FileManager.default.contents(atPath: historyPath) else { return [] }
        return String(decoding: d, as: UTF8.self).split(separator: "\n").compactMap {
            let name = String($0.split(separator: "\t").first ?? "")
            return Self.isVersionName(name) ? name : nil
        }
    }

    /// The version served before the current one that is still on disk: what `rollback` goes back to. Versions
    /// that were built but never served (refused by the publish guard, built while pinned) are skipped.
    public func previousServed() throws -> String? {
        let cur = try current()
        let onDisk = Set(versions())
        return servedHistory().reversed().first { $0 != cur && onDisk.contains($0) }
    }

    private func appendHistory(_ version: String) throws {
        let fd = open(historyPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HomefeedError("cannot write \(historyPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var line = version + "\t" + TimeFormat.iso8601(TimeFormat.now()) + "\n"
        line.withUTF8 { p in _ = write(fd, p.baseAddress, p.count) }
        _ = fsync(fd)
    }

    public func pin(_ version: String) throws { try atomicWrite(pinnedPath, version + "\n") }

    public func unpin() throws {
        if FileManager.default.fileExists(atPath: pinnedPath) {
            try FileManager.default.removeItem(atPath: pinnedPath)
            try fsyncDirectory(root)
        }
    }

    /// Deletes the oldest versions beyond `keep`, never the served, the pinned, or the previously served one
    /// (the rollback target). Returns what it deleted.
    @discardableResult
    public func prune(keep: Int) throws -> [String] {
        let protected = Set([try current(), try pinned(), try previousServed()].compactMap { $0 })
        let all = versions()
        var deleted: [String] = []
        for v in all.dropLast(max(keep, 1)) where !protected.contains(v) {
            try FileManager.default.removeItem(atPath: path(of: v))
            deleted.append(v)
        }
        return deleted
    }

    /// Writes `text` to `path` so that readers see either the old or the new content, also across a crash.
    func atomicWrite(_ path: String, _ text: String) throws {
        try replaceFileSynced(path, Array(text.utf8))
    }
}

/// Replaces the file at `path` so that readers see either the old or the new content, also across a crash: a temp
/// file beside it (same filesystem), fsync, rename over, fsync the directory. (Foundation's `.atomic` writes go
/// through a /tmp directory it never removes.)
public func replaceFileSynced(_ path: String, _ bytes: some ContiguousBytes) throws {
    let tmp = path + ".tmp"
    try writeFileSynced(tmp, bytes)
    guard rename(tmp, path) == 0 else { throw HomefeedError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
    let dir = (path as NSString).deletingLastPathComponent
    try fsyncDirectory(dir.isEmpty ? "." : dir)
}

/// fsync of a directory, so a rename or a new entry in it survives a crash.
public func fsyncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw HomefeedError("cannot open directory \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw HomefeedError("cannot fsync directory \(path): \(String(cString: strerror(errno)))") }
}

/// An flock on the store's LOCK file; released on `release()` or deinit (and by the kernel if the process dies).
public final class StoreLock: @unchecked Sendable {  // the fd is only closed once, in release/deinit
    private var fd: Int32

    public init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HomefeedError("cannot open lock file \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd); fd = -1
            throw HomefeedError("\(path) is locked by another homefeed-batch command; try again when it finishes",
                                exitCode: HomefeedError.busyExitCode)
        }
    }

    public func release() {
        if fd >= 0 { close(fd); fd = -1 }
    }

    deinit { release() }
}
