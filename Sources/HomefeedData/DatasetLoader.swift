import HomefeedCore
import Glibc

/// Loads a dataset folder (users.csv, videos.csv, interactions.csv; docs/DATA.md) into typed columns.
public enum DatasetLoader {
    /// Longest accepted id, in bytes.
    public static let maxIdBytes = 256
    /// Longest accepted language tag, in bytes.
    public static let maxLanguageBytes = 15

    /// Reads the three files of `directory`. Bad rows are skipped and counted into `Dataset.report`; the load throws
    /// when a file is missing, lacks a required column, or has more than `config.maxBadRowFraction` bad rows.
    /// With `progress`, interaction loading reports progress and the bad-row summary is printed to stderr.
    public static func load(directory: String, config: HomefeedConfig.Data, progress: Bool) throws -> Dataset {
        var ds = Dataset()
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        try loadUsers(path: dir + "/users.csv", into: &ds, config: config)
        try loadVideos(path: dir + "/videos.csv", into: &ds, config: config)
        try loadInteractions(path: dir + "/interactions.csv", into: &ds, config: config, progress: progress)
        if progress && ds.report.files.contains(where: { $0.badRows > 0 }) {
            for l in ds.report.summaryLines() { Log.info(l) }
        }
        return ds
    }

    // MARK: - Bad row bookkeeping

    /// Counts the rows and bad rows of one file and keeps the first examples.
    struct Tally {
        static let maxExamples = 20
        var file: LoadReport.FileReport
        var examples: [String] = []
        let start = TimeFormat.monotonic()

        init(_ name: String) { file = LoadReport.FileReport(file: name) }

        mutating func bad(_ reason: String, line: Int, _ detail: @autoclosure () -> String) {
            file.badRows += 1
            file.badByReason[reason, default: 0] += 1
            if examples.count < Tally.maxExamples { examples.append("\(file.file):\(line): \(detail())") }
        }

        mutating func malformed(_ issue: CSVIssue, line: Int) {
            if issue == .rowTooLong { bad("row too long", line: line, "\(issue)") }
            else { bad("bad quoting", line: line, "bad quoting: \(issue)") }
        }

        mutating func wrongFieldCount(_ n: Int, expected: Int, line: Int) {
            bad("wrong field count", line: line, "wrong field count (\(n) fields, expected \(expected))")
        }

        /// Adds the file to the report and throws when its bad fraction is above the limit.
        mutating func finish(into report: inout LoadReport, maxBadFraction: Double) throws {
            file.seconds = TimeFormat.monotonic() - start
            report.files.append(file)
            for e in examples where report.examples.count < Tally.maxExamples { report.examples.append(e) }
            if file.badRows > 0 && Double(file.badRows) > maxBadFraction * Double(file.rows) {
                let reasons = file.badByReason.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
                    .map { "\($0.key): \($0.value)" }.joined(separator: ", ")
                let pct = Format.fixed(Double(file.badRows) * 100 / Double(max(file.rows, 1)), 2)
                let maxPct = Format.fixed(maxBadFraction * 100, 2)
                throw HomefeedError("\(file.file): \(file.badRows) of \(file.rows) rows are bad (\(pct)% > max \(maxPct)%, "
                    + "data.max_bad_row_fraction); by reason: \(reasons); first: "
                    + examples.prefix(5).joined(separator: "; "))
            }
        }
    }

    static func quoted(_ b: UnsafeRawBufferPointer) -> String {
        let limit = 64
        var s = String(decoding: b.prefix(limit), as: UTF8.self)
        if b.count > limit { s += "…" }
        return "'" + s + "'"
    }

    @inline(__always)
    static func isValidId(_ b: UnsafeRawBufferPointer) -> Bool {
        if b.count == 0 || b.count > maxIdBytes { return false }
        for c in b where c < 0x20 || c == 0x7F { return false }
        return true
    }

    static func open(_ path: String) throws -> (CSVReader, CSVHeader, String) {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let reader: CSVReader
        do { reader = try CSVReader(path: path) } catch {
            throw HomefeedError("missing or unreadable \(name): \(error)")
        }
        guard let header = try reader.readHeader() else {
            throw HomefeedError("\(name): empty file (expected a header row) at \(path)")
        }
        return (reader, header, name)
    }

    /// A time field (`TimeFormat.parse`), nil when malformed. Four-byte values are parsed here: TimeFormat.parse
    /// reads `b[4]` for them, one byte past the field.
    @inline(__always)
    static func time(_ b: UnsafeRawBufferPointer) -> Int64? {
        if b.count == 4 { return b[0] == 43 ? nil : ByteParse.int(b) }
        return TimeFormat.parse(b)
    }

    /// An optional time column: empty = `Int64.min`, nil when malformed.
    @inline(__always)
    static func optionalTime(_ b: UnsafeRawBufferPointer) -> Int64? {
        let t = ByteParse.trim(b)
        if t.count == 0 { return Int64.min }
        return time(t)
    }

    // MARK: - users.csv

    static func loadUsers(path: String, into ds: inout Dataset, config: HomefeedConfig.Data) throws {
        let (reader, header, name) = try open(path)
        let cId = try header.require("user_id", file: name)
        let cCountry = try header.require("country", file: name)
        let cLanguage = try header.require("language", file: name)
        let cAge = header.index(of: "age") ?? -1
        let cGender = header.index(of: "gender") ?? -1
        let cSignup = header.index(of: "signup_time") ?? -1
        var t = Tally(name)
        var users = Users()
        var languages = ds.languages
        ds.languages = Interner()
        try reader.forEachRow { row in
            t.file.rows += 1
            if let issue = row.issue { t.malformed(issue, line: row.line); return }
            if row.count != header.count {
                t.wrongFieldCount(row.count, expected: header.count, line: row.line); return
            }
            let id = row[cId]
            guard isValidId(id) else { t.bad("bad user_id", line: row.line, "bad user_id \(quoted(id))"); return }
            let c = ByteParse.trim(row[cCountry])
            var country = CountryCode.unknown
            if c.count > 0 {
                guard let cc = CountryCode(c) else { t.bad("bad country", line: row.line, "bad country \(quoted(c))"); return }
                country = cc
            }
            let lang = ByteParse.trim(row[cLanguage])
            guard lang.count <= maxLanguageBytes else {
                t.bad("bad language", line: row.line, "bad language \(quoted(lang))"); return
            }
            var age: UInt8 = 0
            let a = row[cAge]
            if ByteParse.trim(a).count > 0 {
                guard let v = ByteParse.int(a), v >= 0, v <= 130 else {
                    t.bad("bad age", line: row.line, "bad age \(quoted(a))"); return
                }
                age = UInt8(v)
            }
            let g = ByteParse.trim(row[cGender])
            let gender: Gender
            if g.count == 0 || ByteParse.equalsLower(g, "u") || ByteParse.equalsLower(g, "unknown") { gender = .unknown }
            else if ByteParse.equalsLower(g, "f") || ByteParse.equalsLower(g, "female") { gender = .female }
            else if ByteParse.equalsLower(g, "m") || ByteParse.equalsLower(g, "male") { gender = .male }
            else if ByteParse.equalsLower(g, "o") || ByteParse.equalsLower(g, "other") { gender = .other }
            else { t.bad("bad gender", line: row.line, "bad gender \(quoted(g))"); return }
            guard let signup = optionalTime(row[cSignup]) else {
                t.bad("bad signup_time", line: row.line, "bad signup_time \(quoted(row[cSignup]))"); return
            }
            guard users.ids.appendIfNew(id) != nil else {
                t.bad("duplicate user_id", line: row.line, "duplicate user_id \(quoted(id))"); return
            }
            users.country.append(country)
            users.language.append(languages.intern(lang))
            users.age.append(age)
            users.gender.append(gender)
            users.signupTime.append(signup)
        }
        ds.languages = languages
        ds.users = users
        try t.finish(into: &ds.report, maxBadFraction: config.maxBadRowFraction)
    }

    // MARK: - videos.csv

    static func loadVideos(path: String, into ds: inout Dataset, config: HomefeedConfig.Data) throws {
        let (reader, header, name) = try open(path)
        let cId = try header.require("video_id", file: name)
        let cLanguage = try header.require("language", file: name)
        let cDuration = try header.require("duration_seconds", file: name)
        let cPublished = try header.require("published_time", file: name)
        let cTitle = header.index(of: "title") ?? -1
        let cTags = header.index(of: "tags") ?? -1
        let cChannel = header.index(of: "channel_id") ?? -1
        let cAvail = header.index(of: "availability") ?? -1
        var t = Tally(name)
        var videos = Videos()
        var languages = ds.languages, tags = ds.tags, channels = ds.channels
        ds.languages = Interner(); ds.tags = Interner(); ds.channels = Interner()
        var rowCountries: [CountryCode] = []
        var rowTags: [Int32] = []
        try reader.forEachRow { row in
            t.file.rows += 1
            if let issue = row.issue { t.malformed(issue, line: row.line); return }
            if row.count != header.count {
                t.wrongFieldCount(row.count, expected: header.count, line: row.line); return
            }
            let id = row[cId]
            guard isValidId(id) else { t.bad("bad video_id", line: row.line, "bad video_id \(quoted(id))"); return }
            let lang = ByteParse.trim(row[cLanguage])
            guard lang.count <= maxLanguageBytes else {
                t.bad("bad language", line: row.line, "bad language \(quoted(lang))"); return
            }
            let d = row[cDuration]
            guard let duration = ByteParse.double(d), duration > 0, duration < 1e9 else {
                t.bad("bad duration_seconds", line: row.line, "bad duration_seconds \(quoted(d))"); return
            }
            let p = row[cPublished]
            guard let published = time(ByteParse.trim(p)) else {
                t.bad("bad published_time", line: row.line, "bad published_time \(quoted(p))"); return
            }
            let channel = ByteParse.trim(row[cChannel])
            if channel.count > maxIdBytes || (channel.count > 0 && !isValidId(channel)) {
                t.bad("bad channel_id", line: row.line, "bad channel_id \(quoted(channel))"); return
            }
            // Availability: empty or * = everywhere; allow:US|CA; block:DE|FR.
            let av = ByteParse.trim(row[cAvail])
            var mode = AvailabilityMode.everywhere
            rowCountries.removeAll(keepingCapacity: true)
            if av.count > 0 && !(av.count == 1 && av[0] == UInt8(ascii: "*")) {
                let list: UnsafeRawBufferPointer
                if ByteParse.hasPrefixLower(av, "allow:") { mode = .allowList }
                else if ByteParse.hasPrefixLower(av, "block:") { mode = .blockList }
                else { t.bad("bad availability", line: row.line, "bad availability \(quoted(av))"); return }
                list = UnsafeRawBufferPointer(rebasing: av[6...])
                var ok = true
                ByteParse.forEachPart(list, separator: UInt8(ascii: "|")) { part in
                    if let cc = CountryCode(part) {
                        if !rowCountries.contains(cc) { rowCountries.append(cc) }
                    } else { ok = false }
                }
                guard ok else { t.bad("bad availability", line: row.line, "bad availability \(quoted(av))"); return }
            }
            // Good row: append every column.
            guard videos.ids.appendIfNew(id) != nil else {
                t.bad("duplicate video_id", line: row.line, "duplicate video_id \(quoted(id))"); return
            }
            rowTags.removeAll(keepingCapacity: true)
            ByteParse.forEachPart(row[cTags], separator: UInt8(ascii: "|")) { part in
                let tag = tags.intern(part)
                if !rowTags.contains(tag) { rowTags.append(tag) }
            }
            videos.language.append(languages.intern(lang))
            videos.durationSeconds.append(Float(duration))
            videos.publishedAt.append(published)
            videos.titles.append(row[cTitle])
            videos.tagIds.append(contentsOf: rowTags)
            videos.tagOffsets.append(Int32(videos.tagIds.count))
            videos.channel.append(channel.count > 0 ? channels.intern(channel) : -1)
            videos.availability.append(mode)
            videos.countries.append(contentsOf: rowCountries)
            videos.countryOffsets.append(Int32(videos.countries.count))
        }
        ds.languages = languages; ds.tags = tags; ds.channels = channels
        ds.videos = videos
        try t.finish(into: &ds.report, maxBadFraction: config.maxBadRowFraction)
    }

    // MARK: - interactions.csv

    /// Event names by first byte and length, matched case-insensitively.
    @inline(__always)
    static func event(_ b: UnsafeRawBufferPointer) -> EventKind? {
        switch b.count {
        case 4: return ByteParse.equalsLower(b, "like") ? .like : nil
        case 5:
            switch b[0] | 0x20 {
            case UInt8(ascii: "w"): return ByteParse.equalsLower(b, "watch") ? .watch : nil
            case UInt8(ascii: "c"): return ByteParse.equalsLower(b, "click") ? .click : nil
            case UInt8(ascii: "s"): return ByteParse.equalsLower(b, "share") ? .share : nil
            default: return nil
            }
        case 6: return ByteParse.equalsLower(b, "search") ? .search : nil
        case 7:
            return ByteParse.equalsLower(b, "dislike") ? .dislike : ByteParse.equalsLower(b, "comment") ? .comment : nil
        case 10: return ByteParse.equalsLower(b, "impression") ? .impression : nil
        default: return nil
        }
    }

    /// Devices are stored as UInt8: past 255 distinct labels, new ones are folded into `other`.
    static let maxDevices = 256

    static func loadInteractions(path: String, into ds: inout Dataset, config: HomefeedConfig.Data,
                                 progress: Bool) throws {
        let (reader, header, name) = try open(path)
        let cUser = try header.require("user_id", file: name)
        let cVideo = try header.require("video_id", file: name)
        let cEvent = try header.require("event", file: name)
        let cTime = try header.require("timestamp", file: name)
        let cWatch = header.index(of: "watch_seconds") ?? -1
        let cDevice = header.index(of: "device") ?? -1
        let cQuery = header.index(of: "query") ?? -1
        let nColumns = header.count
        var t = Tally(name)
        var inter = Interactions()
        inter.reserve(min(reader.fileSize / 40, 1 << 31))
        let users = ds.users.ids, videos = ds.videos.ids
        var devices = ds.devices, queries = ds.queries
        ds.devices = Interner(); ds.queries = Interner()
        let prog = progress ? Progress("load interactions", total: 0, unit: "rows") : nil
        let progressStep = 1 << 16
        var rows = 0
        try users.withLookup { users in try videos.withLookup { videos in try reader.forEachRow { row in
            rows += 1
            if rows & (progressStep - 1) == 0 { prog?.add(progressStep) }
            if let issue = row.issue { t.malformed(issue, line: row.line); return }
            if row.count != nColumns {
                t.wrongFieldCount(row.count, expected: nColumns, line: row.line); return
            }
            // Both table slots are loaded before either is probed, so their cache misses overlap.
            let u = row[cUser], v = row[cVideo]
            let hu = Interner.hash(u), hv = Interner.hash(v)
            let fu = users.firstWord(hash: hu), fv = videos.firstWord(hash: hv)
            let userIndex = users.index(of: u, hash: hu, first: fu)
            let videoIndex = v.count > 0 ? videos.index(of: v, hash: hv, first: fv) : -1
            guard let user = userIndex else {
                t.bad("unknown user_id", line: row.line, "unknown user_id \(quoted(u))"); return
            }
            let e = row[cEvent]
            guard let ev = event(e) ?? event(ByteParse.trim(e)) else {
                t.bad("unknown event", line: row.line, "unknown event \(quoted(e))"); return
            }
            var video: Int32 = -1
            if v.count > 0 {
                guard let vi = videoIndex else {
                    t.bad("unknown video_id", line: row.line, "unknown video_id \(quoted(v))"); return
                }
                video = vi
            } else if ev != .search {
                t.bad("missing video_id", line: row.line, "missing video_id for \(ev.name)"); return
            }
            let ts = row[cTime]
            guard let when = time(ts) ?? time(ByteParse.trim(ts)) else {
                t.bad("bad timestamp", line: row.line, "bad timestamp \(quoted(ts))"); return
            }
            let w = row[cWatch]
            var watch: Float = 0
            if w.count > 0 {
                guard let x = ByteParse.double(w), x >= 0, x < 1e12 else {
                    t.bad("bad watch_seconds", line: row.line, "bad watch_seconds \(quoted(w))"); return
                }
                watch = Float(x)
            }
            let d = row[cDevice]
            var device: UInt8 = 0
            if d.count > 0 {
                if let di = devices.index(of: d) { device = UInt8(truncatingIfNeeded: di) }
                else if devices.count < maxDevices - 1 { device = UInt8(truncatingIfNeeded: devices.append(d)) }
                else {
                    device = UInt8(truncatingIfNeeded: devices.index(of: "other") ?? devices.append("other"))
                }
            }
            let q = row[cQuery]
            let query: Int32 = q.count > 0 ? queries.intern(q) : -1
            inter.user.append(user)
            inter.video.append(video)
            inter.event.append(ev)
            inter.watchSeconds.append(watch)
            inter.timestamp.append(when)
            inter.device.append(device)
            inter.query.append(query)
        } } }
        t.file.rows = rows
        if let prog {
            prog.add(rows & (progressStep - 1))
            prog.finish()
        }
        ds.devices = devices; ds.queries = queries
        ds.interactions = inter
        try t.finish(into: &ds.report, maxBadFraction: config.maxBadRowFraction)
    }
}

extension LoadReport {
    /// Human-readable lines: per file rows, bad rows by reason, then the first examples.
    public func summaryLines() -> [String] {
        var out: [String] = []
        for f in files {
            var s = "\(f.file): \(f.rows) rows, \(f.badRows) bad"
            if !f.badByReason.isEmpty {
                s += " (" + f.badByReason.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
                    .joined(separator: ", ") + ")"
            }
            out.append(s)
        }
        out.append(contentsOf: examples.map { "  " + $0 })
        return out
    }

    /// Total bad rows over all files.
    public var badRows: Int { files.reduce(0) { $0 + $1.badRows } }
}
