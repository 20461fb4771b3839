import Foundation
import Synchronization
import Testing
import HomefeedTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Where the built commands are: the folder of the test bundle (`.build/<triple>/<config>/`), which
/// `swift build --build-tests` fills with `homefeed-batch` and `homefeed-lookupd` too.
enum CLI {
    static let binDir: String? = {
        var starts: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append(exe) }
        starts.append(Bundle.main.bundlePath)
        if let e = Bundle.main.executablePath { starts.append(e) }
        if let a = CommandLine.arguments.first { starts.append(a) }
        for start in starts where !start.isEmpty {
            var dir = URL(fileURLWithPath: start).standardizedFileURL
            for _ in 0..<5 {
                dir = dir.deletingLastPathComponent()
                let batch = dir.path + "/homefeed-batch", lookupd = dir.path + "/homefeed-lookupd"
                if FileManager.default.isExecutableFile(atPath: batch) && FileManager.default.isExecutableFile(atPath: lookupd) {
                    return dir.path
                }
                if dir.path == "/" { break }
            }
        }
        return nil
    }()

    static let found = binDir != nil
    static let notFound = "homefeed-batch / homefeed-lookupd not found next to the test bundle "
        + "(\((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "?")); "
        + "build them with `swift build --build-tests` before `swift test --skip-build`"

    static var batch: String { binDir! + "/homefeed-batch" }
    static var lookupd: String { binDir! + "/homefeed-lookupd" }

    /// The package root, from this file's path (Tests/HomefeedCLITests/Support.swift).
    static let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static var refreshScript: String { packageRoot + "/jobs/refresh" }
    static var trainScript: String { packageRoot + "/jobs/train" }
    static let canRunRefreshScript = FileManager.default.isExecutableFile(atPath: "/usr/bin/flock")
        || FileManager.default.isExecutableFile(atPath: "/bin/flock")
}

/// What a finished command did.
struct RunResult: CustomStringConvertible {
    var status: Int32
    /// True when the process ended by a signal (`status` is then the signal number).
    var signalled: Bool
    var timedOut: Bool
    var stdout: String
    var stderr: String
    var seconds: Double

    var ok: Bool { !signalled && !timedOut && status == 0 }
    var stdoutLines: [String] { lines(stdout) }
    var description: String {
        "exit \(signalled ? "by signal " : "")\(status)\(timedOut ? " (timed out)" : "") after \(String(format: "%.2f", seconds)) s\n"
            + "--- stdout:\n\(stdout.prefix(3000))\n--- stderr:\n\(stderr.prefix(3000))"
    }
}

/// A process started from a test, with stdout and stderr in files (no pipe can fill up and block it).
/// Call `kill()` in a `defer`: it SIGKILLs the process and anything it started, and reaps it.
final class Spawned {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String
    let started = Date()
    private static let counter = Mutex(0)

    init(_ executable: String, _ args: [String], env: [String: String] = [:], cwd: String? = nil, outputDir: String) throws {
        let n = Spawned.counter.withLock { c -> Int in c += 1; return c }
        let base = outputDir + "/proc-\(n)-" + URL(fileURLWithPath: executable).lastPathComponent
        stdoutPath = base + ".out"; stderrPath = base + ".err"
        try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
        // (Not FileManager.createFile: on Linux it writes through a /tmp/TemporaryDirectory.* it leaves behind.)
        try Data().write(to: URL(fileURLWithPath: stdoutPath))
        try Data().write(to: URL(fileURLWithPath: stderrPath))
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        defer { try? out.close(); try? err.close() }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        // The runner's own HOMEFEED_* settings (a test hook, a store) must not leak into the commands under test.
        var e = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HOMEFEED_") }
        for (k, v) in env { e[k] = v }
        process.environment = e
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { if process.isRunning { _ = Glibc.kill(pid, sig) } }

    /// Waits (bounded) for the process to end; false on timeout.
    @discardableResult
    func wait(timeout: Double) -> Bool {
        poll(timeout: timeout, interval: 0.01) { !self.process.isRunning }
    }

    /// The result once ended; on timeout the process is killed and the result says so.
    func result(timeout: Double = 120) -> RunResult {
        let finished = wait(timeout: timeout)
        if !finished { kill() }
        let signalled = process.terminationReason == .uncaughtSignal
        return RunResult(status: process.terminationStatus, signalled: signalled, timedOut: !finished,
                         stdout: stdout, stderr: stderr, seconds: Date().timeIntervalSince(started))
    }

    /// SIGKILL to the process and its descendants (a script's children), then reap. Safe to call twice.
    func kill() {
        guard process.isRunning else { return }
        let family = descendants(of: pid)
        _ = Glibc.kill(pid, SIGKILL)
        for p in family { _ = Glibc.kill(p, SIGKILL) }
        wait(timeout: 30)
    }
}

/// Runs a command to completion (bounded by `timeout`, then killed).
func run(_ executable: String, _ args: [String], env: [String: String] = [:], cwd: String? = nil, in dir: TempDir,
         timeout: Double = 120) throws -> RunResult {
    let p = try Spawned(executable, args, env: env, cwd: cwd, outputDir: dir.sub("proc-output"))
    defer { p.kill() }
    return p.result(timeout: timeout)
}

func batch(_ args: String..., env: [String: String] = [:], in dir: TempDir, timeout: Double = 120) throws -> RunResult {
    try run(CLI.batch, args, env: env, in: dir, timeout: timeout)
}

/// Polls `condition` every `interval` seconds until it holds or `timeout` passes.
@discardableResult
func poll(timeout: Double, interval: Double = 0.05, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if condition() { return true }
        if Date() >= deadline { return false }
        usleep(UInt32(interval * 1e6))
    }
}

/// Every process whose parent chain leads to `pid` (from /proc).
func descendants(of pid: Int32) -> [Int32] {
    var parent: [Int32: Int32] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let p = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.count > 1, let pp = Int32(fields[1]) { parent[p] = pp }
    }
    var out: [Int32] = [], frontier: Set<Int32> = [pid]
    while !frontier.isEmpty {
        let next = parent.filter { frontier.contains($0.value) }.map(\.key)
        out += next
        frontier = Set(next)
    }
    return out
}

func lines(_ s: String) -> [String] {
    var l = s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if l.last == "" { l.removeLast() }
    return l
}

func readText(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

func writeText(_ path: String, _ text: String) throws {
    try text.write(toFile: path, atomically: false, encoding: .utf8)
}

func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

func listDir(_ path: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

/// The store's served version (CURRENT), or nil.
func current(_ store: String) -> String? {
    readText(store + "/CURRENT")?.trimmingCharacters(in: .whitespacesAndNewlines)
}

func pinned(_ store: String) -> String? {
    readText(store + "/PINNED")?.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A half-built version in STORE/tmp that has started writing user lists: its name, or nil.
func partialVersion(_ store: String) -> String? {
    for entry in listDir(store + "/tmp") {
        if listDir(store + "/tmp/" + entry).contains(where: { $0.hasPrefix("users-") && $0.hasSuffix(".sst") }) { return entry }
    }
    return nil
}

/// `refresh: version NAME published; A active users, P personalized (…)`, parsed.
struct RunLine {
    var version: String
    var published: Bool
    var activeUsers: Int
    var personalized: Int
    var badRows: Int

    init?(_ line: String) {
        guard let m = line.firstMatch(of: #/^refresh: version (\S+) (.*?); (\d+) active users, (\d+) personalized \([^)]*\), \d+ popular lists, (\d+) bad rows; as of /#) else {
            return nil
        }
        version = String(m.1)
        published = m.2 == "published"
        activeUsers = Int(m.3)!
        personalized = Int(m.4)!
        badRows = Int(m.5)!
    }
}

/// `homefeed-batch versions`, parsed: (version, state) newest first; state is "" when neither served nor pinned.
func parseVersions(_ out: String) -> [(version: String, state: String, users: Int)] {
    lines(out).dropFirst().map { line in
        let t = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let hasState = t.count > 1 && t[1].first?.isLetter == true
        let users = Int(t.count > (hasState ? 4 : 3) ? t[hasState ? 4 : 3] : "") ?? -1
        return (t[0], hasState ? t[1] : "", users)
    }
}

/// A dataset written by `homefeed-batch generate`.
func generate(_ dir: TempDir, _ name: String = "data", users: Int = 300, videos: Int = 120, seed: Int = 7) throws -> String {
    let out = dir.sub(name)
    let r = try batch("generate", "--out", out, "--users", String(users), "--videos", String(videos), "--seed", String(seed),
                      "--quiet", in: dir)
    #expect(r.ok, "\(r)")
    return out
}

/// A config with small blocks, so a slowed run (HOMEFEED_TEST_BLOCK_DELAY) stays inside its rank stage a while.
func smallBlockConfig(_ dir: TempDir) throws -> String {
    let path = dir.sub("small-blocks.toml")
    try writeText(path, "[refresh]\nblock_users = 16\n")
    return path
}

/// The command suites skip themselves when the binaries are missing (a bare `swift test` of one target); in CI
/// that would hide them, so there a missing binary or flock(1) is a failure.
@Suite struct CommandsArePresentInCI {
    @Test func binariesAndFlockExistUnderCI() {
        guard ProcessInfo.processInfo.environment["CI"] != nil else { return }
        #expect(CLI.found, Comment(rawValue: CLI.notFound))
        #expect(CLI.canRunRefreshScript, "flock(1) is missing: jobs/refresh cannot be tested")
    }
}
