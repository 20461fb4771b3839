import HomefeedCore
import HomefeedHTTP
import HomefeedStore

/// The parameters of a recommendation request, validated.
struct RecommendationQuery {
    var region: CountryCode?
    var language: String?
    var limit: Int
    var maxAgeSeconds: Int64?
    var exclude: [String] = []
}

extension LookupService {
    /// Parses `region`, `lang`, `limit`, `exclude`, `max_age_hours`; unknown parameters are ignored.
    func parseQuery(_ q: UnsafeRawBufferPointer) -> Result<RecommendationQuery, HomefeedError> {
        var out = RecommendationQuery(limit: config.defaultLimit)
        var scratch: [UInt8] = []
        var start = 0
        while start < q.count {
            var end = start
            while end < q.count && q[end] != UInt8(ascii: "&") { end += 1 }
            defer { start = end + 1 }
            var eq = start
            while eq < end && q[eq] != UInt8(ascii: "=") { eq += 1 }
            let key = UnsafeRawBufferPointer(rebasing: q[start..<eq])
            let raw = UnsafeRawBufferPointer(rebasing: q[min(eq + 1, end)..<end])
            guard PercentDecoding.decode(raw, plusIsSpace: true, into: &scratch) else {
                return .failure(HomefeedError("malformed percent-encoding in query parameter \(String(decoding: key, as: UTF8.self))"))
            }
            let value = String(decoding: scratch, as: UTF8.self)
            if key.elementsEqual("region".utf8) {
                guard let c = CountryCode(value) else { return .failure(HomefeedError("region must be an ISO 3166-1 alpha-2 code, got '\(value)'")) }
                out.region = c
            } else if key.elementsEqual("lang".utf8) {
                guard !value.isEmpty, value.utf8.count <= 15 else { return .failure(HomefeedError("lang must be a language code of 1 to 15 bytes")) }
                out.language = value
            } else if key.elementsEqual("limit".utf8) {
                guard let n = Int(value), n >= 1, n <= config.maxLimit else {
                    return .failure(HomefeedError("limit must be an integer in 1...\(config.maxLimit), got '\(value)'"))
                }
                out.limit = n
            } else if key.elementsEqual("max_age_hours".utf8) {
                guard let h = Double(value), h > 0, h < 1e7 else {
                    return .failure(HomefeedError("max_age_hours must be a positive number, got '\(value)'"))
                }
                out.maxAgeSeconds = Int64(h * 3600)
            } else if key.elementsEqual("exclude".utf8) {
                for id in value.split(separator: ",") where !id.isEmpty { out.exclude.append(String(id)) }
                guard out.exclude.count <= 1000 else { return .failure(HomefeedError("exclude lists at most 1000 video ids")) }
            }
        }
        return .success(out)
    }

    /// GET /v1/users/{id}/recommendations.
    ///
    /// 1. Take the served state (one reference for the whole request).
    /// 2. Resolve excluded videos: `exclude` plus the user's recently seen ones.
    /// 3. Walk the user's list, keeping videos that pass every filter (available in the region, young enough,
    ///    not excluded, not blocked).
    /// 4. Top up from the fallback chain (region, language, global) while short of `limit`; unknown users are
    ///    served from that chain alone.
    /// 5. Render JSON.
    func recommend(userID: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer, _ response: inout HTTPResponse) {
        // 1.
        guard let st = current else { error(&response, 503, "no store version is open yet"); return }
        let q: RecommendationQuery
        switch parseQuery(query) {
        case .success(let v): q = v
        case .failure(let e): error(&response, 400, e.message); return
        }
        let videos = st.version.videos
        // 2.
        var excluded: [UInt32] = []
        for id in q.exclude { if let v = videos.index(of: id) { excluded.append(v) } }
        if seen.userCount > 0 {
            for id in seen.seen(user: String(decoding: userID, as: UTF8.self)) {
                if let v = videos.index(of: id) { excluded.append(v) }
            }
        }
        let effectiveNow = st.asOf + (TimeFormat.now() - st.createdAt)
        let minPublished = q.maxAgeSeconds.map { effectiveNow - $0 } ?? Int64.min
        var items: [(video: UInt32, score: Float)] = []
        items.reserveCapacity(q.limit)
        var region = q.region ?? .unknown
        var language = q.language
        // 3.
        var key: [UInt8] = []
        let personal: Bool
        do {
            personal = try st.version.withUserList(userID, key: &key) { view -> Bool in
                guard let view else { return false }
                if q.region == nil { region = view.country }
                if language == nil, view.count >= 0 { language = view.language }
                var i = 0
                while i < view.count && items.count < q.limit {
                    let v = view.video(i)
                    if passes(v, st, region, minPublished, excluded) { items.append((v, view.score(i))) }
                    i += 1
                }
                return true
            }
        } catch {
            self.error(&response, 500, "store read failed: \(error)")
            return
        }
        // 4.
        var source: LookupMetrics.Fallback = personal ? .personalized : .popularGlobal
        var toppedUp = false
        let chain: [(RecommendationList?, LookupMetrics.Fallback)] = [
            (st.regionLists[region.raw], .popularRegion),
            (language.flatMap { st.languageLists[$0] }, .popularLanguage),
            (st.globalList, .popularGlobal),
        ]
        var sourceChosen = personal
        for (list, level) in chain where items.count < q.limit {
            guard let list else { continue }
            if !sourceChosen { source = level; sourceChosen = true } else { toppedUp = true }
            let before = items.count
            for (v, s) in zip(list.videos, list.scores) where items.count < q.limit {
                if passes(v, st, region, minPublished, excluded) && !items.contains(where: { $0.video == v }) {
                    items.append((v, s))
                }
            }
            if items.count == before && personal == false && level != .popularGlobal { continue }
        }
        if personal && items.count == 0 { toppedUp = false }
        metrics.record(source: source, toppedUp: toppedUp && personal)
        // 5.
        var out = response.body
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: #"{"user_id":"#.utf8)
        out.append(UInt8(ascii: "\""))
        JSONText.appendEscaped(userID, to: &out)
        out.append(contentsOf: #"","source":""#.utf8)
        out.append(contentsOf: source.label.utf8)
        out.append(contentsOf: #"","#.utf8)
        out.append(contentsOf: st.versionJSON)
        out.append(contentsOf: #","items":["#.utf8)
        for (n, item) in items.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"video_id":"#.utf8)
            out.append(contentsOf: videos.jsonIDs[Int(item.video)])
            out.append(contentsOf: #","score":"#.utf8)
            appendScore(item.score, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
        response.body = out
    }

    @inline(__always)
    private func passes(_ v: UInt32, _ st: ServingState, _ region: CountryCode, _ minPublished: Int64, _ excluded: [UInt32]) -> Bool {
        let i = Int(v)
        let videos = st.version.videos
        guard i < videos.count, !st.blocked[i], videos.publishedAt[i] >= minPublished else { return false }
        if region != .unknown && !videos.isAvailable(i, in: region) { return false }
        return !excluded.contains(v)
    }
}

/// A score as a JSON number with at most 6 decimals, without Foundation or String allocation.
func appendScore(_ f: Float, to out: inout [UInt8]) {
    var x = Double(f)
    guard x.isFinite else { out.append(UInt8(ascii: "0")); return }
    if x < 0 { out.append(UInt8(ascii: "-")); x = -x }
    guard x < 1e12 else { out.append(contentsOf: String(x).utf8); return }
    let scaled = UInt64((x * 1e6).rounded())
    let whole = scaled / 1_000_000
    var frac = scaled % 1_000_000
    appendDecimal(whole, to: &out)
    if frac == 0 { return }
    out.append(UInt8(ascii: "."))
    var digits = 6
    while frac % 10 == 0 { frac /= 10; digits -= 1 }
    var buf: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (48, 48, 48, 48, 48, 48)
    withUnsafeMutableBytes(of: &buf) { b in
        var f = frac
        for k in stride(from: digits - 1, through: 0, by: -1) { b[k] = UInt8(48 + f % 10); f /= 10 }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[0..<digits]))
    }
}

func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
    if v < 10 { out.append(UInt8(48 + v)); return }
    var tmp: [UInt8] = []
    var x = v
    while x > 0 { tmp.append(UInt8(48 + x % 10)); x /= 10 }
    out.append(contentsOf: tmp.reversed())
}
