import Foundation
import Testing
import HomefeedTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `homefeed-batch` run as an operator would: real processes, real files, real signals.
@Suite(.enabled(if: CLI.found, Comment(rawValue: CLI.notFound)))
struct BatchCommandTests {
    static let subcommands = ["generate", "import-movielens", "train", "run", "eval", "versions", "rollback", "unpin", "export"]

    // MARK: 1. Help and usage errors

    @Test func everyCommandHasHelpAndUsageErrorsNameTheProblem() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        for c in Self.subcommands {
            for flag in ["--help", "-h"] {
                let r = try batch(c, flag, in: dir)
                #expect(r.ok, "\(c) \(flag): \(r)")
                #expect(r.stdout.hasPrefix("usage: homefeed-batch \(c) "), "\(c): \(r)")
                #expect(r.stdout.contains("--help"), "\(c)")
                #expect(r.stderr.isEmpty, "\(c): \(r)")
            }
        }
        for flag in ["--help", "-h", "help"] {
            let r = try batch(flag, in: dir)
            #expect(r.ok, "\(r)")
            #expect(r.stdout.hasPrefix("usage: homefeed-batch COMMAND"))
            for c in Self.subcommands { #expect(r.stdout.contains("\n  \(c) "), "\(c) missing from top help") }
        }
        // No arguments: usage error, the command list is shown.
        let none = try run(CLI.batch, [], in: dir)
        #expect(none.status == 2 && !none.signalled, "\(none)")
        #expect(none.stdout.hasPrefix("usage: homefeed-batch COMMAND"))
        for c in Self.subcommands { #expect(none.stdout.contains("\n  \(c) "), "\(c) missing") }

        // Unknown command / option / argument: non-zero, named on stderr, nothing on stdout.
        let unknown = try batch("frobnicate", in: dir)
        #expect(unknown.status == 2, "\(unknown)")
        #expect(unknown.stderr.hasPrefix("error: unknown command 'frobnicate'"), "\(unknown)")
        #expect(unknown.stdout.isEmpty)
        for c in Self.subcommands {
            let r = try batch(c, "--frobnicate", in: dir)
            #expect(r.status == 1 && !r.signalled, "\(c): \(r)")
            #expect(r.stderr == "error: homefeed-batch \(c): unknown option --frobnicate (see --help)\n", "\(c): \(r)")
            #expect(r.stdout.isEmpty, "\(c)")
        }
        let stray = try batch("versions", "--store", dir.path, "-q", in: dir)
        #expect(stray.status == 1, "\(stray)")
        #expect(stray.stderr.contains("unexpected argument '-q'"), "\(stray)")
        let noValue = try batch("generate", "--out", in: dir)
        #expect(noValue.status == 1)
        #expect(noValue.stderr == "error: homefeed-batch generate: --out needs a value DIR\n", "\(noValue)")
        let notInt = try batch("generate", "--out", dir.sub("x"), "--users", "many", in: dir)
        #expect(notInt.status == 1)
        #expect(notInt.stderr.contains("--users expects an integer, got 'many'"), "\(notInt)")
        #expect(!exists(dir.sub("x")))
        let missing = try batch("run", "--store", dir.sub("s"), in: dir)
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: homefeed-batch run: --data is required (see --help)\n", "\(missing)")

        // homefeed-lookupd.
        for flag in ["--help", "-h"] {
            let h = try run(CLI.lookupd, [flag], in: dir)
            #expect(h.ok, "\(h)")
            #expect(h.stdout.hasPrefix("usage: homefeed-lookupd --store DIR"))
            #expect(h.stdout.contains("/v1/users/{id}/recommendations"))
        }
        let badOpt = try run(CLI.lookupd, ["--frobnicate"], in: dir)
        #expect(badOpt.status == 1 && !badOpt.signalled, "\(badOpt)")
        #expect(badOpt.stderr.contains("unknown option --frobnicate"), "\(badOpt)")
        #expect(badOpt.stdout.isEmpty)
        let badArg = try run(CLI.lookupd, ["--store", dir.path, "extra"], in: dir)
        #expect(badArg.status == 1, "\(badArg)")
        #expect(badArg.stderr.contains("unexpected argument 'extra'"), "\(badArg)")
        let noStore = try run(CLI.lookupd, ["--listen", "127.0.0.1:0"], in: dir)
        #expect(noStore.status == 1, "\(noStore)")
        #expect(noStore.stderr.contains("--store is required"), "\(noStore)")

        // jobs/refresh.
        let script = try run(CLI.refreshScript, ["--help"], in: dir)
        #expect(script.ok, "\(script)")
        #expect(script.stdout.hasPrefix("The hourly refresh"), "\(script)")
        #expect(script.stdout.contains("HOMEFEED_BIN"))
        #expect(!script.stdout.contains("set -e"), "the help shows script code: \(script)")
    }

    // MARK: 2. generate → run → versions → export

    @Test func generateRunVersionsExport() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = dir.sub("data"), store = dir.sub("store")
        let g = try batch("generate", "--out", data, "--users", "300", "--videos", "120", "--seed", "7", in: dir)
        #expect(g.ok, "\(g)")
        for f in ["users.csv", "videos.csv", "interactions.csv"] { #expect(exists(data + "/" + f), "\(f)") }
        let interactionRows = lines(readText(data + "/interactions.csv") ?? "").count - 1
        #expect(lines(readText(data + "/users.csv") ?? "").count - 1 == 300)
        #expect(lines(readText(data + "/videos.csv") ?? "").count - 1 == 120)
        #expect(g.stdoutLines.count == 1, "\(g)")
        let summary = g.stdoutLines.first ?? ""
        #expect(summary.hasPrefix("generate: 300 users ("), "\(summary)")
        #expect(summary.contains(", 120 videos, "), "\(summary)")
        #expect(summary.contains(" \(interactionRows) interactions"), "\(summary)")
        #expect(summary.contains(" in \(data) ("), "\(summary)")
        #expect(!summary.contains("GeneratorSummary("), "the summary is a debug dump: \(summary)")
        // Same seed, same files.
        let again = try batch("generate", "--out", dir.sub("data2"), "--users", "300", "--videos", "120", "--seed", "7", "--quiet", in: dir)
        #expect(again.ok)
        for f in ["users.csv", "videos.csv", "interactions.csv"] {
            #expect(readText(data + "/" + f) == readText(dir.sub("data2") + "/" + f), "\(f) differs for the same seed")
        }

        let r = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(r.ok, "\(r)")
        #expect(r.stdoutLines.count == 1, "\(r)")
        #expect(r.stderr.isEmpty, "--quiet: \(r)")
        let line = try #require(RunLine(r.stdout.trimmingCharacters(in: .newlines)), "\(r)")
        #expect(line.published)
        #expect(line.badRows == 0)
        #expect(line.personalized > 200 && line.personalized <= line.activeUsers && line.activeUsers <= 300, "\(r)")
        #expect(current(store) == line.version)
        #expect(line.version.hasPrefix("v000001-"))
        #expect(listDir(store + "/versions") == [line.version])
        #expect(listDir(store + "/tmp").isEmpty)

        let v = try batch("versions", "--store", store, in: dir)
        #expect(v.ok, "\(v)")
        #expect(v.stdoutLines.count == 2, "\(v)")
        #expect(v.stdoutLines.first?.hasPrefix("VERSION ") == true)
        let rows = parseVersions(v.stdout)
        #expect(rows.count == 1)
        #expect(rows.first?.version == line.version)
        #expect(rows.first?.state == "served")
        #expect(rows.first?.users == line.personalized)

        // export --out: one line per personalized user, user<TAB>v,v,… with known, distinct videos.
        let file = dir.sub("export.tsv")
        let e = try batch("export", "--store", store, "--out", file, in: dir)
        #expect(e.ok, "\(e)")
        #expect(e.stdout == "export: \(line.personalized) users → \(file)\n", "\(e)")
        let exported = lines(readText(file) ?? "")
        #expect(exported.count == line.personalized)
        let videoIDs = Set(lines(readText(data + "/videos.csv") ?? "").dropFirst().map { String($0.split(separator: ",")[0]) })
        let userIDs = Set(lines(readText(data + "/users.csv") ?? "").dropFirst().map { String($0.split(separator: ",")[0]) })
        var seenUsers = Set<String>()
        for l in exported {
            let parts = l.split(separator: "\t", omittingEmptySubsequences: false)
            #expect(parts.count == 2, "\(l)")
            guard parts.count == 2 else { continue }
            let user = String(parts[0]), vids = parts[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(userIDs.contains(user), "\(user)")
            #expect(seenUsers.insert(user).inserted, "duplicate user \(user)")
            #expect(!vids.isEmpty && vids.count <= 100, "\(l)")
            #expect(Set(vids).count == vids.count, "duplicate video in \(user)'s list")
            #expect(vids.allSatisfy(videoIDs.contains), "unknown video in \(l)")
        }
        // export to stdout: the same bytes.
        let e2 = try batch("export", "--store", store, in: dir)
        #expect(e2.ok, "\(e2)")
        #expect(e2.stdout == readText(file))
        #expect(e2.stderr.isEmpty)
        let e3 = try batch("export", "--store", store, "--version", line.version, in: dir)
        #expect(e3.stdout == readText(file))
        let e4 = try batch("export", "--store", store, "--version", "v000009-nope", in: dir)
        #expect(e4.status == 1)
        #expect(e4.stderr.contains("no version 'v000009-nope'"), "\(e4)")

        // Commands that read a store do not invent one from a typo.
        for c in ["versions", "export", "rollback", "unpin"] {
            let typo = dir.sub("stroe")
            let t = try batch(c, "--store", typo, in: dir)
            #expect(t.status == 1, "\(c): \(t)")
            #expect(t.stderr.contains(typo), "\(c): \(t)")
            #expect(!exists(typo), "\(c) created \(typo)")
        }
        // A store with no version yet.
        try FileManager.default.createDirectory(atPath: dir.sub("empty"), withIntermediateDirectories: true)
        let ev = try batch("versions", "--store", dir.sub("empty"), in: dir)
        #expect(ev.ok && ev.stdout == "no versions in \(dir.sub("empty"))\n", "\(ev)")
        let ee = try batch("export", "--store", dir.sub("empty"), in: dir)
        #expect(ee.status == 1 && ee.stderr.contains("no published version"), "\(ee)")
    }

    // MARK: 3. Crash mid-write

    @Test func refreshKilledMidWriteLeavesPreviousVersionServed() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir, users: 600, videos: 150, seed: 11)
        let store = dir.sub("store"), config = try smallBlockConfig(dir)
        let first = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(first.ok, "\(first)")
        let v1 = try #require(current(store))
        let before = try batch("export", "--store", store, in: dir)
        #expect(before.ok && !before.stdout.isEmpty)

        // A slowed run (0.2 s after each block of 16 users), killed once it is writing user lists.
        let slow = try Spawned(CLI.batch, ["run", "--data", data, "--store", store, "--config", config, "--force"],
                               env: ["HOMEFEED_TEST_BLOCK_DELAY": "0.2"], outputDir: dir.sub("proc-output"))
        defer { slow.kill() }
        let sawPartial = poll(timeout: 60) { partialVersion(store) != nil || !slow.isRunning }
        let partial = try #require(partialVersion(store), "no partial version appeared; run: \(slow.result(timeout: 1))")
        #expect(sawPartial)
        #expect(slow.isRunning, "the run finished before it could be killed")
        slow.signal(SIGKILL)
        let killed = slow.result(timeout: 30)
        #expect(killed.signalled && killed.status == SIGKILL, "\(killed)")
        #expect(!killed.stdout.contains("published"))

        // The previous version is served and readable; the partial one is not a version.
        #expect(current(store) == v1)
        #expect(listDir(store + "/versions") == [v1])
        #expect(listDir(store + "/tmp").contains(partial), "the crash leftovers are gone already?")
        let vs = try batch("versions", "--store", store, in: dir)
        #expect(vs.ok, "\(vs)")
        let rows = parseVersions(vs.stdout)
        #expect(rows.map(\.version) == [v1])
        #expect(rows.first?.state == "served")
        #expect(!vs.stdout.contains(partial.replacingOccurrences(of: ".sst", with: "")))
        let after = try batch("export", "--store", store, in: dir)
        #expect(after.ok, "\(after)")
        #expect(after.stdout == before.stdout)

        // The next run clears the leftovers, says so, and publishes.
        let third = try batch("run", "--data", data, "--store", store, in: dir)
        #expect(third.ok, "\(third)")
        #expect(third.stderr.contains("removed leftovers of an interrupted run: \(partial)"), "\(third)")
        let line = try #require(RunLine(third.stdout.trimmingCharacters(in: .newlines)), "\(third)")
        #expect(line.published)
        #expect(line.version.hasPrefix("v000002-"))
        #expect(current(store) == line.version)
        #expect(listDir(store + "/tmp").isEmpty)
        #expect(listDir(store + "/versions") == [v1, line.version])
        let rows2 = parseVersions(try batch("versions", "--store", store, in: dir).stdout)
        #expect(rows2.map(\.version) == [line.version, v1])
        #expect(rows2.map(\.state) == ["served", ""])
    }

    // MARK: 4. rollback / unpin

    @Test func rollbackPinsAndUnpinResumesPublishing() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let store = dir.sub("store")
        func runOnce(_ extra: String...) throws -> RunLine {
            let r = try run(CLI.batch, ["run", "--data", data, "--store", store, "--quiet"] + extra, in: dir)
            #expect(r.ok, "\(r)")
            return try #require(RunLine(r.stdout.trimmingCharacters(in: .newlines)), "\(r)")
        }
        func states() throws -> [String: String] {
            let r = try batch("versions", "--store", store, in: dir)
            #expect(r.ok, "\(r)")
            return Dictionary(uniqueKeysWithValues: parseVersions(r.stdout).map { ($0.version, $0.state) })
        }
        // A store with a single version has nothing to roll back to.
        let v1 = try runOnce("--now", "2026-10-20T00:00:00Z").version
        let none = try batch("rollback", "--store", store, in: dir)
        #expect(none.status == 1, "\(none)")
        #expect(none.stderr.contains("no earlier version to roll back to"), "\(none)")
        #expect(current(store) == v1 && pinned(store) == nil)

        let v2 = try runOnce().version
        #expect(current(store) == v2)
        let exportV1 = try batch("export", "--store", store, "--version", v1, in: dir).stdout
        #expect(exportV1 != (try batch("export", "--store", store, in: dir).stdout), "the two runs should differ (--now)")

        let rb = try batch("rollback", "--store", store, in: dir)
        #expect(rb.ok, "\(rb)")
        #expect(rb.stdout == "rollback: serving \(v1), pinned (runs build new versions but do not publish until homefeed-batch unpin)\n", "\(rb)")
        #expect(current(store) == v1)
        #expect(pinned(store) == v1)
        #expect(try states() == [v1: "served+pinned", v2: ""])
        #expect(try batch("export", "--store", store, in: dir).stdout == exportV1)

        // Pinned: a run builds but does not publish, and says so.
        let r3 = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(r3.ok, "\(r3)")
        let l3 = try #require(RunLine(r3.stdout.trimmingCharacters(in: .newlines)), "\(r3)")
        #expect(!l3.published)
        #expect(r3.stdout.contains("refresh: version \(l3.version) built but NOT published: the store is pinned to \(v1) (homefeed-batch unpin to resume)"), "\(r3)")
        #expect(current(store) == v1)
        #expect(try states() == [v1: "served+pinned", v2: "", l3.version: ""])

        let up = try batch("unpin", "--store", store, in: dir)
        #expect(up.ok, "\(up)")
        #expect(up.stdout == "unpin: \(v1) is no longer pinned; the next run publishes again\n")
        #expect(pinned(store) == nil && current(store) == v1)
        #expect(try states()[v1] == "served")
        let up2 = try batch("unpin", "--store", store, in: dir)
        #expect(up2.ok && up2.stdout == "unpin: the store was not pinned\n", "\(up2)")

        let v4 = try runOnce().version
        #expect(current(store) == v4)
        #expect(try states()[v4] == "served")

        // --to a named version, and an unknown one.
        let to = try batch("rollback", "--store", store, "--to", v2, in: dir)
        #expect(to.ok, "\(to)")
        #expect(to.stdout.hasPrefix("rollback: serving \(v2), pinned"))
        #expect(current(store) == v2 && pinned(store) == v2)
        #expect(try states() == [v1: "", v2: "served+pinned", l3.version: "", v4: ""])
        let bad = try batch("rollback", "--store", store, "--to", "v000042-nope", in: dir)
        #expect(bad.status == 1, "\(bad)")
        #expect(bad.stderr.contains("no version 'v000042-nope'"), "\(bad)")
        #expect(bad.stdout.isEmpty)
        #expect(current(store) == v2 && pinned(store) == v2)
        // A version of another store format (as an older build wrote it): the daemons would refuse it, so does rollback.
        let metaPath = store + "/versions/\(v1)/meta.json"
        let meta = try String(contentsOfFile: metaPath, encoding: .utf8)
        #expect(meta.contains("\"storeFormat\" : 2"))
        try meta.replacingOccurrences(of: "\"storeFormat\" : 2", with: "\"storeFormat\" : 1").write(toFile: metaPath, atomically: false, encoding: .utf8)
        let refused = try batch("rollback", "--store", store, "--to", v1, in: dir)
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("version \(v1) has store format 1; this build reads format 2"), "\(refused)")
        #expect(current(store) == v2 && pinned(store) == v2)
        let listed = try batch("versions", "--store", store, in: dir)
        #expect(listed.stdout.split(separator: "\n").first { $0.hasPrefix(v1) }?.hasSuffix("(store format 1: this build cannot serve it)") == true, "\(listed)")
        #expect(listed.stdout.split(separator: "\n").first { $0.hasPrefix(v2) }?.contains("store format") == false)
        // A damaged version (its table files gone): it would not open in the daemons, so rollback refuses it too.
        let v4Dir = store + "/versions/\(v4)"
        for f in try FileManager.default.contentsOfDirectory(atPath: v4Dir) where f.hasSuffix(".sst") {
            try FileManager.default.removeItem(atPath: v4Dir + "/" + f)
        }
        let damaged = try batch("rollback", "--store", store, "--to", v4, in: dir)
        #expect(damaged.status == 1, "\(damaged)")
        #expect(damaged.stderr.contains("rollback: \(v4) cannot be served"), "\(damaged)")
        #expect(current(store) == v2 && pinned(store) == v2)
    }

    // MARK: 5. Publish guard

    @Test func publishGuardRefusesASharpDropUnlessForced() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let store = dir.sub("store")
        let first = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(first.ok, "\(first)")
        let v1 = try #require(current(store))
        let users = try #require(RunLine(first.stdout.trimmingCharacters(in: .newlines))).personalized

        // Nobody was active in the last day before a far-future now: 0 personalized users.
        let args = ["run", "--data", data, "--store", store, "--quiet", "--active-days", "1", "--now", "2035-01-01T00:00:00Z"]
        let refused = try run(CLI.batch, args, in: dir)
        #expect(refused.status == 1 && !refused.signalled, "\(refused)")
        #expect(refused.stderr.contains("publish guard refused"), "\(refused)")
        #expect(refused.stderr.contains("personalized users fell from \(users) to 0"), "\(refused)")
        #expect(refused.stdout.isEmpty)
        #expect(current(store) == v1)
        #expect(parseVersions(try batch("versions", "--store", store, in: dir).stdout).first { $0.state.contains("served") }?.version == v1)

        let forced = try run(CLI.batch, args + ["--force"], in: dir)
        #expect(forced.ok, "\(forced)")
        let line = try #require(RunLine(forced.stdout.trimmingCharacters(in: .newlines)), "\(forced)")
        #expect(line.published && line.personalized == 0)
        #expect(current(store) == line.version)
        #expect(line.version != v1)
    }

    // MARK: 6. Lock

    @Test func aSecondCommandFailsFastWhileARunHoldsTheStore() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let store = dir.sub("store"), config = try smallBlockConfig(dir)
        let first = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(first.ok, "\(first)")
        let v1 = try #require(current(store))

        let slow = try Spawned(CLI.batch, ["run", "--data", data, "--store", store, "--config", config, "--quiet"],
                               env: ["HOMEFEED_TEST_BLOCK_DELAY": "0.3"], outputDir: dir.sub("proc-output"))
        defer { slow.kill() }
        #expect(poll(timeout: 60) { partialVersion(store) != nil || !slow.isRunning }, "the slow run never started writing")
        #expect(slow.isRunning, "\(slow.result(timeout: 1))")
        for args in [["run", "--data", data, "--store", store, "--quiet"], ["rollback", "--store", store],
                     ["unpin", "--store", store]] {
            let r = try run(CLI.batch, args, in: dir, timeout: 60)
            #expect(r.status == 75 && !r.signalled, "\(args[0]): \(r)")   // EX_TEMPFAIL: busy, try later
            #expect(r.stderr.contains("locked"), "\(args[0]): \(r)")
            #expect(r.seconds < 20, "\(args[0]) waited for the lock: \(r)")
        }
        #expect(slow.isRunning, "the slow run ended before the other commands were tried; the test proved nothing")
        // Readers need no lock.
        let v = try batch("versions", "--store", store, in: dir)
        #expect(v.ok && parseVersions(v.stdout).map(\.version) == [v1], "\(v)")

        // The lock dies with its holder.
        slow.kill()
        #expect(current(store) == v1)
        let again = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(again.ok, "\(again)")
        #expect(current(store) != v1)
    }

    // MARK: 7. Bad data

    @Test func malformedInteractionsFailTheRunAndLeaveTheServedVersion() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let store = dir.sub("store")
        let first = try batch("run", "--data", data, "--store", store, "--quiet", in: dir)
        #expect(first.ok, "\(first)")
        let v1 = try #require(current(store))
        let exported = try batch("export", "--store", store, in: dir).stdout

        // Every 40th line of interactions.csv broken (2.5% of rows > the 1% allowed).
        let original = lines(readText(data + "/interactions.csv") ?? "")
        let bad = dir.sub("bad")
        try FileManager.default.copyItem(atPath: data, toPath: bad)
        var broken = original
        for n in stride(from: 40, through: broken.count, by: 40) { broken[n - 1] = "garbage,row" }  // line n (1-based)
        try writeText(bad + "/interactions.csv", broken.joined(separator: "\n") + "\n")
        let r = try batch("run", "--data", bad, "--store", store, "--quiet", in: dir)
        #expect(r.status == 1 && !r.signalled, "\(r)")
        #expect(r.stderr.contains("interactions.csv"), "\(r)")
        #expect(r.stderr.contains("interactions.csv:40:"), "line number of the first bad row: \(r)")
        #expect(r.stdout.isEmpty)
        #expect(current(store) == v1)
        #expect(listDir(store + "/versions") == [v1])
        #expect(listDir(store + "/tmp").isEmpty)
        #expect(try batch("export", "--store", store, in: dir).stdout == exported)

        // One bad row is tolerated and counted.
        var oneBad = original
        oneBad[99] = "garbage,row"
        try writeText(bad + "/interactions.csv", oneBad.joined(separator: "\n") + "\n")
        let tolerated = try batch("run", "--data", bad, "--store", store, "--quiet", in: dir)
        #expect(tolerated.ok, "\(tolerated)")
        #expect(RunLine(tolerated.stdout.trimmingCharacters(in: .newlines))?.badRows == 1, "\(tolerated)")

        // A missing data folder: named, and no store is created for it.
        let nowhere = dir.sub("no-such-data"), newStore = dir.sub("store2")
        let m = try batch("run", "--data", nowhere, "--store", newStore, "--quiet", in: dir)
        #expect(m.status == 1, "\(m)")
        #expect(m.stderr.contains(nowhere) && m.stderr.contains("does not exist"), "\(m)")
        #expect(!exists(newStore), "a failed run created \(newStore)")
        // A data folder without interactions.csv.
        let partialData = dir.sub("partial-data")
        try FileManager.default.createDirectory(atPath: partialData, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data + "/users.csv", toPath: partialData + "/users.csv")
        try FileManager.default.copyItem(atPath: data + "/videos.csv", toPath: partialData + "/videos.csv")
        let served = current(store)
        let p = try batch("run", "--data", partialData, "--store", store, "--quiet", in: dir)
        #expect(p.status == 1, "\(p)")
        #expect(p.stderr.contains("interactions.csv"), "\(p)")
        #expect(current(store) == served)
        #expect(listDir(store + "/tmp").isEmpty)
    }

    // MARK: 7b. Offline evaluation

    /// `eval` on a generated dataset: both models on the same test users, a table each, and the JSON report.
    @Test func evalPrintsBothModelsAndWritesJSON() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let r = try batch("eval", "--data", data, "--k", "5,10", "--json", dir.sub("eval.json"), "--no-tune", "--quiet", in: dir)
        #expect(r.ok, "\(r)")
        #expect(r.stdout.contains("popular\n") && r.stdout.contains("mf\n") && r.stdout.contains("nDCG@k"), "\(r)")
        let json = try #require(FileManager.default.contents(atPath: dir.sub("eval.json")))
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let reports = try #require(object["reports"] as? [[String: Any]])
        #expect(reports.compactMap { $0["label"] as? String }.prefix(2) == ["popular", "mf"])
        let bad = try batch("eval", "--data", data, "--split", "sideways", in: dir)
        #expect(bad.status == 1 && bad.stderr.contains("--split must be random, time or files"), "\(bad)")
        let allCold = try batch("eval", "--data", data, "--cold-users", "0.999", "--no-tune", "--quiet", in: dir)
        #expect(allCold.status == 1 && allCold.stderr.contains("--cold-users 0.999 held") && allCold.stderr.contains("lower it"), "\(allCold)")
    }

    // MARK: 8. Sharded run

    @Test func shardedRunEqualsUnshardedRun() throws {
        let dir = TempDir("homefeed-cli"); defer { dir.remove() }
        let data = try generate(dir)
        let now = "2026-10-30T12:00:00Z"
        let sharded = dir.sub("sharded"), plain = dir.sub("plain"), shards = dir.sub("shards")
        var shardUsers = 0
        // Shard jobs share one model, trained first (the unsharded run trains the same one: same data, same seed, same
        // as-of time — the two-tower model's video features, age and counts, are measured there).
        let trained = try batch("train", "--data", data, "--store", sharded, "--now", now, "--quiet", in: dir)
        #expect(trained.ok && trained.stdout.hasPrefix("train: model model-000001-"), "\(trained)")
        #expect(trained.stdout.contains(#/item-item: head \d+, regularization [\d.]+, weight [\d.]+, co-watch window [\d.]+; /#), "\(trained)")
        for i in 0..<2 {
            let r = try batch("run", "--data", data, "--store", sharded, "--now", now, "--quiet", "--shard", "\(i)/2",
                              "--shard-out", shards, in: dir)
            #expect(r.ok, "\(r)")
            let m = r.stdout.firstMatch(of: #/^refresh shard \d/2: (\d+) users ranked .* → (\S+), /#)
            let users = Int(m?.1 ?? "") ?? -1
            #expect(users > 0, "\(r)")
            #expect(m.map { String($0.2) } == shards + "/users-\(i)-of-2.sst", "\(r)")
            shardUsers += users
            #expect(current(sharded) == nil, "a shard job published something")
        }
        #expect(listDir(shards) == ["users-0-of-2.sst", "users-0-of-2.sst.json", "users-1-of-2.sst", "users-1-of-2.sst.json"])
        let ingest = try batch("run", "--data", data, "--store", sharded, "--now", now, "--quiet", "--ingest-shards", shards, in: dir)
        #expect(ingest.ok, "\(ingest)")
        let il = try #require(RunLine(ingest.stdout.trimmingCharacters(in: .newlines)), "\(ingest)")
        #expect(il.published && il.personalized == shardUsers)

        let whole = try batch("run", "--data", data, "--store", plain, "--now", now, "--quiet", in: dir)
        #expect(whole.ok, "\(whole)")
        #expect(RunLine(whole.stdout.trimmingCharacters(in: .newlines))?.personalized == shardUsers)
        let a = try batch("export", "--store", sharded, in: dir), b = try batch("export", "--store", plain, in: dir)
        #expect(a.ok && b.ok)
        #expect(lines(a.stdout).count == shardUsers)
        #expect(a.stdout == b.stdout, "sharded and unsharded exports differ")

        // An incomplete shard set is refused, naming what is missing.
        let half = dir.sub("half")
        let h = try batch("run", "--data", data, "--store", sharded, "--now", now, "--quiet", "--shard", "1/2", "--shard-out", half, in: dir)
        #expect(h.ok, "\(h)")
        let served = current(sharded)
        let inc = try batch("run", "--data", data, "--store", sharded, "--now", now, "--quiet", "--ingest-shards", half, in: dir)
        #expect(inc.status == 1, "\(inc)")
        #expect(inc.stderr.contains("missing 0"), "\(inc)")
        #expect(current(sharded) == served)
        let both = try batch("run", "--data", data, "--store", sharded, "--shard", "0/2", "--ingest-shards", half, in: dir)
        #expect(both.status == 1 && both.stderr.contains("separate steps"), "\(both)")
    }
}
