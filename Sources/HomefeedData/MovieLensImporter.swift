import HomefeedCore
import Glibc

/// What an import wrote.
public struct ImportSummary: Sendable, Equatable {
    /// `ml-100k` (u.data/u.user/u.item) or `ml-latest` (ratings.csv/movies.csv/tags.csv).
    public var layout = ""
    public var users = 0
    public var videos = 0
    /// Rating rows read.
    public var ratings = 0
    public var watches = 0
    public var likes = 0
    public var dislikes = 0
    /// Rows of interactions.csv.
    public var interactions = 0
    /// Distinct (video, tag) pairs added from tags.csv.
    public var tagsAdded = 0
    /// Input rows that could not be used (malformed, unknown movie in tags.csv, ...).
    public var skippedRows = 0
    /// The first skipped rows, as `file:line: reason`.
    public var skippedExamples: [String] = []
    public init() {}
}

extension ImportSummary: CustomStringConvertible {
    /// `ml-100k: 943 users, 1682 videos, 75066 ratings -> 75066 watches, 41546 likes, 0 dislikes (116612 rows)...`
    public var description: String {
        var s = "\(layout): \(users) users, \(videos) videos, \(ratings) ratings -> \(watches) watches, \(likes) likes, "
            + "\(dislikes) dislikes (\(interactions) interaction rows)"
        if tagsAdded > 0 { s += ", \(tagsAdded) tags from tags.csv" }
        if skippedRows > 0 { s += ", \(skippedRows) input rows skipped (first: \(skippedExamples.prefix(3).joined(separator: "; ")))" }
        return s
    }
}

/// Converts MovieLens into the input contract (docs/DATA.md): users.csv, videos.csv, interactions.csv.
public enum MovieLensImporter {
    /// Every movie gets this duration; a rating becomes a watch of the whole movie.
    public static let movieDurationSeconds = 6000

    /// Imports the MovieLens folder `source` into the folder `out` (created when missing).
    /// - ratingsOverride: a tab-separated `user item rating timestamp` file without header (a split's train file)
    ///   that replaces u.data / ratings.csv.
    /// - likeThreshold: a rating ≥ this adds a `like` next to the `watch`.
    /// - dislikeThreshold: when set, a rating ≤ this becomes a `dislike` instead of a watch.
    public static func importMovieLens(source: String, out: String, ratingsOverride: String?,
                                       likeThreshold: Double = 4, dislikeThreshold: Double? = nil) throws -> ImportSummary {
        if let d = dislikeThreshold, d >= likeThreshold {
            throw HomefeedError("the dislike threshold (\(d)) must be below the like threshold (\(likeThreshold))")
        }
        let src = source.hasSuffix("/") ? String(source.dropLast()) : source
        var state = State()
        let ratingsPath: String
        let ratingsFormat: RatingsFormat
        if exists(src + "/u.data") || exists(src + "/u.item") {
            state.summary.layout = "ml-100k"
            try readUUser(src + "/u.user", &state)
            try readUItem(src + "/u.item", genres: try readUGenre(src + "/u.genre"), &state)
            ratingsPath = src + "/u.data"
            ratingsFormat = .tsv
        } else if exists(src + "/ratings.csv") || exists(src + "/movies.csv") {
            state.summary.layout = "ml-latest"
            try readMovies(src + "/movies.csv", &state)
            ratingsPath = src + "/ratings.csv"
            ratingsFormat = .csv
        } else {
            throw HomefeedError("\(source) is not a MovieLens folder: expected u.data/u.item (ml-100k) "
                                + "or ratings.csv/movies.csv (ml-latest)")
        }
        try makeDirectory(out)
        let dst = out.hasSuffix("/") ? String(out.dropLast()) : out
        if let o = ratingsOverride {
            try readRatings(o, format: .tsv, out: dst, like: likeThreshold, dislike: dislikeThreshold, &state)
        } else {
            try readRatings(ratingsPath, format: ratingsFormat, out: dst, like: likeThreshold, dislike: dislikeThreshold,
                            &state)
        }
        if state.summary.layout == "ml-latest" && exists(src + "/tags.csv") { try readTags(src + "/tags.csv", &state) }
        try writeUsers(dst + "/users.csv", state)
        try writeVideos(dst + "/videos.csv", state)
        state.summary.users = state.userIds.count
        state.summary.videos = state.videoIds.count
        return state.summary
    }

    // MARK: - State

    enum RatingsFormat { case tsv, csv }

    struct State {
        var summary = ImportSummary()
        var userIds = Interner()
        var userAge: [Int] = []          // 0 = unknown
        var userGender: [String] = []
        var videoIds = Interner()
        var videoTitle: [String] = []
        var videoPublished: [Int64] = []
        var videoTags: [[String]] = []
        var videoTagKeys: [Set<String>] = []   // lower-cased, for deduplication

        mutating func skip(_ file: String, _ line: Int, _ reason: @autoclosure () -> String) {
            summary.skippedRows += 1
            if summary.skippedExamples.count < 20 { summary.skippedExamples.append("\(file):\(line): \(reason())") }
        }

        @discardableResult
        mutating func user(_ id: UnsafeRawBufferPointer) -> Int32 {
            if let u = userIds.index(of: id) { return u }
            userAge.append(0); userGender.append("")
            return userIds.append(id)
        }

        @discardableResult
        mutating func video(_ id: UnsafeRawBufferPointer) -> Int32 {
            if let v = videoIds.index(of: id) { return v }
            videoTitle.append(""); videoPublished.append(0); videoTags.append([]); videoTagKeys.append([])
            return videoIds.append(id)
        }

        /// Adds a tag to a video unless it has it already (case-insensitively); true when added.
        @discardableResult
        mutating func addTag(_ v: Int, _ raw: String) -> Bool {
            // `|` separates tags in videos.csv; line breaks and surrounding spaces are dropped.
            var tag = String(raw.map { $0 == "|" ? "/" : ($0.isNewline ? " " : $0) })
            while tag.first?.isWhitespace == true { tag.removeFirst() }
            while tag.last?.isWhitespace == true { tag.removeLast() }
            if tag.isEmpty { return false }
            let key = tag.lowercased()
            if key == "unknown" || key == "(no genres listed)" { return false }
            if videoTagKeys[v].insert(key).inserted { videoTags[v].append(tag); return true }
            return false
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func fileName(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

    static func makeDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw HomefeedError("cannot create directory \(prefix): \(String(cString: strerror(errno)))")
            }
            prefix += "/"
        }
    }

    static func validId(_ b: UnsafeRawBufferPointer) -> Bool { DatasetLoader.isValidId(b) }

    // MARK: - ml-100k

    /// `u.genre`: `name|index`. Missing file: the standard 19 ML-100k genres.
    static func readUGenre(_ path: String) throws -> [Int: String] {
        guard exists(path) else {
            let names = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                         "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                         "Thriller", "War", "Western"]
            return Dictionary(uniqueKeysWithValues: names.enumerated().map { ($0.offset, $0.element) })
        }
        var genres: [Int: String] = [:]
        let r = try CSVReader(path: path, delimiter: UInt8(ascii: "|"), quoting: false)
        try r.forEachRow { row in
            guard row.count >= 2, let i = ByteParse.int(row[1]), i >= 0, i < 1000 else { return }
            genres[Int(i)] = ByteParse.utf8OrLatin1(ByteParse.trim(row[0]))
        }
        return genres
    }

    /// `u.user`: `id|age|gender|occupation|zip`.
    static func readUUser(_ path: String, _ st: inout State) throws {
        guard exists(path) else { return }
        let name = fileName(path)
        let r = try CSVReader(path: path, delimiter: UInt8(ascii: "|"), quoting: false)
        try r.forEachRow { row in
            let id = row[0]
            guard row.count >= 3, validId(id) else { st.skip(name, row.line, "expected id|age|gender|..."); return }
            let u = Int(st.user(id))
            if let a = ByteParse.int(row[1]), a > 0, a <= 130 { st.userAge[u] = Int(a) }
            let g = ByteParse.trim(row[2])
            st.userGender[u] = ByteParse.equalsLower(g, "m") ? "m" : ByteParse.equalsLower(g, "f") ? "f" : ""
        }
    }

    private static let months: [String] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                           "dec"]

    /// `01-Jan-1995` → Unix seconds.
    static func parseReleaseDate(_ s: String) -> Int64? {
        let parts = s.split(separator: "-")
        guard parts.count == 3, let d = Int(parts[0]), (1...31).contains(d),
              let m = months.firstIndex(of: parts[1].lowercased()), let y = Int(parts[2]), (1000...9999).contains(y)
        else { return nil }
        return Int64(TimeFormat.daysFromCivil(y, m + 1, d)) * 86400
    }

    /// The year in parentheses at the end of a MovieLens title (`Toy Story (1995)`, `Babylon 5 (1994-1998)`) as
    /// Unix seconds of its January 1st.
    static func titleYear(_ title: String) -> Int64? {
        let u = Array(title.utf8)
        var i = u.count - 1
        while i >= 5 {
            if u[i - 5] == UInt8(ascii: "(") && u[(i - 4)...(i - 1)].allSatisfy({ $0 &- 48 <= 9 })
                && (u[i] == UInt8(ascii: ")") || u[i] == UInt8(ascii: "-") || u[i] == 0xE2) {
                let y = u[(i - 4)...(i - 1)].reduce(0) { $0 * 10 + Int($1 - 48) }
                if y >= 1800 { return Int64(TimeFormat.daysFromCivil(y, 1, 1)) * 86400 }
            }
            i -= 1
        }
        return nil
    }

    /// `u.item`: `id|title|release date|video release date|IMDb URL|19 genre flags`, Latin-1.
    static func readUItem(_ path: String, genres: [Int: String], _ st: inout State) throws {
        guard exists(path) else { return }
        let name = fileName(path)
        let r = try CSVReader(path: path, delimiter: UInt8(ascii: "|"), quoting: false)
        try r.forEachRow { row in
            let id = row[0]
            guard row.count >= 5, validId(id) else { st.skip(name, row.line, "expected id|title|date|...|genres"); return }
            let v = Int(st.video(id))
            let title = ByteParse.utf8OrLatin1(ByteParse.trim(row[1]))
            st.videoTitle[v] = title
            let date = ByteParse.utf8OrLatin1(ByteParse.trim(row[2]))
            st.videoPublished[v] = parseReleaseDate(date) ?? titleYear(title) ?? 0
            if row.count > 5 {
                for f in 5..<row.count {
                    let flag = ByteParse.trim(row[f])
                    if flag.count == 1 && flag[0] == UInt8(ascii: "1"), let g = genres[f - 5] { st.addTag(v, g) }
                }
            }
        }
    }

    // MARK: - ml-latest

    /// `movies.csv`: `movieId,title,genres` (genres `|`-separated).
    static func readMovies(_ path: String, _ st: inout State) throws {
        guard exists(path) else { return }
        let name = fileName(path)
        let r = try CSVReader(path: path)
        guard let header = try r.readHeader() else { return }
        let cId = try header.require("movieId", file: name)
        let cTitle = try header.require("title", file: name)
        let cGenres = header.index(of: "genres") ?? -1
        try r.forEachRow { row in
            let id = ByteParse.trim(row[cId])
            if let issue = row.issue { st.skip(name, row.line, "\(issue)"); return }
            guard row.count == header.count, validId(id) else { st.skip(name, row.line, "malformed row"); return }
            let v = Int(st.video(id))
            let title = ByteParse.utf8OrLatin1(ByteParse.trim(row[cTitle]))
            st.videoTitle[v] = title
            st.videoPublished[v] = titleYear(title) ?? 0
            ByteParse.forEachPart(row[cGenres], separator: UInt8(ascii: "|")) { g in
                st.addTag(v, ByteParse.utf8OrLatin1(g))
            }
        }
    }

    /// `tags.csv`: `userId,movieId,tag,timestamp`; each tag is added to its movie (deduplicated).
    static func readTags(_ path: String, _ st: inout State) throws {
        let name = fileName(path)
        let r = try CSVReader(path: path)
        guard let header = try r.readHeader() else { return }
        let cMovie = try header.require("movieId", file: name)
        let cTag = try header.require("tag", file: name)
        try r.forEachRow { row in
            if let issue = row.issue { st.skip(name, row.line, "\(issue)"); return }
            guard row.count == header.count else { st.skip(name, row.line, "malformed row"); return }
            let m = ByteParse.trim(row[cMovie])
            guard let v = st.videoIds.index(of: m) else {
                st.skip(name, row.line, "unknown movieId '\(String(decoding: m, as: UTF8.self))'"); return
            }
            if st.addTag(Int(v), ByteParse.utf8OrLatin1(row[cTag])) { st.summary.tagsAdded += 1 }
        }
    }

    // MARK: - Ratings → interactions.csv

    static func readRatings(_ path: String, format: RatingsFormat, out: String, like: Double, dislike: Double?,
                            _ st: inout State) throws {
        guard exists(path) else { throw HomefeedError("missing MovieLens ratings file \(path)") }
        let name = fileName(path)
        let r = format == .tsv ? try CSVReader(path: path, delimiter: UInt8(ascii: "\t"), quoting: false)
                               : try CSVReader(path: path)
        var cUser = 0, cMovie = 1, cRating = 2, cTime = 3
        if format == .csv {
            guard let header = try r.readHeader() else { throw HomefeedError("\(name): empty file") }
            cUser = try header.require("userId", file: name)
            cMovie = try header.require("movieId", file: name)
            cRating = try header.require("rating", file: name)
            cTime = try header.require("timestamp", file: name)
        }
        let minFields = max(cUser, cMovie, cRating, cTime) + 1
        let w = try CSVWriter(path: out + "/interactions.csv")
        w.row(["user_id", "video_id", "event", "watch_seconds", "timestamp", "device", "query"])
        try r.forEachRow { row in
            if let issue = row.issue { st.skip(name, row.line, "\(issue)"); return }
            let u = ByteParse.trim(row[cUser]), m = ByteParse.trim(row[cMovie])
            guard row.count >= minFields, validId(u), validId(m) else {
                st.skip(name, row.line, "expected user, item, rating, timestamp"); return
            }
            guard let rating = ByteParse.double(row[cRating]) else {
                st.skip(name, row.line, "bad rating '\(String(decoding: row[cRating], as: UTF8.self))'"); return
            }
            let tb = ByteParse.trim(row[cTime])
            guard let t = DatasetLoader.time(tb) else {
                st.skip(name, row.line, "bad timestamp '\(String(decoding: tb, as: UTF8.self))'"); return
            }
            st.user(u)
            st.video(m)
            st.summary.ratings += 1
            if let d = dislike, rating <= d {
                event(w, u, m, "dislike", watch: false, t)
                st.summary.dislikes += 1
            } else {
                event(w, u, m, "watch", watch: true, t)
                st.summary.watches += 1
                if rating >= like {
                    event(w, u, m, "like", watch: false, t)
                    st.summary.likes += 1
                }
            }
        }
        st.summary.interactions = w.rows - 1
        try w.close()
    }

    @inline(__always)
    static func event(_ w: CSVWriter, _ u: UnsafeRawBufferPointer, _ m: UnsafeRawBufferPointer, _ kind: StaticString,
                      watch: Bool, _ t: Int64) {
        w.field(u)
        w.field(m)
        w.field(UnsafeRawBufferPointer(start: kind.utf8Start, count: kind.utf8CodeUnitCount))
        if watch { w.field(movieDurationSeconds) } else { w.emptyField() }
        w.field(t)
        w.emptyField()
        w.emptyField()
        w.endRow()
    }

    // MARK: - users.csv, videos.csv

    static func writeUsers(_ path: String, _ st: State) throws {
        let w = try CSVWriter(path: path)
        w.row(["user_id", "country", "language", "age", "gender", "signup_time"])
        for u in 0..<st.userIds.count {
            st.userIds.withBytes(u) { w.field($0) }
            w.field("US")
            w.field("en")
            if st.userAge[u] > 0 { w.field(st.userAge[u]) } else { w.emptyField() }
            w.field(st.userGender[u])
            w.emptyField()
            w.endRow()
        }
        try w.close()
    }

    static func writeVideos(_ path: String, _ st: State) throws {
        let w = try CSVWriter(path: path)
        w.row(["video_id", "language", "duration_seconds", "published_time", "title", "tags", "channel_id",
               "availability"])
        for v in 0..<st.videoIds.count {
            st.videoIds.withBytes(v) { w.field($0) }
            w.field("en")
            w.field(movieDurationSeconds)
            w.field(st.videoPublished[v])
            w.field(st.videoTitle[v])
            w.field(st.videoTags[v].joined(separator: "|"))
            w.emptyField()
            w.field("*")
            w.endRow()
        }
        try w.close()
    }
}
