import Glibc
import HomefeedCore
import HomefeedHTTP
import HomefeedStore

/// The parameters of a recommendation request, validated.
@inline(__always)
func equals(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    b.count == s.utf8CodeUnitCount && (b.count == 0 || memcmp(b.baseAddress!, s.utf8Start, b.count) == 0)
}

/// A non-negative decimal integer of at most 9 digits, or nil.
@inline(__always)
func parseInt(_ b: UnsafeRawBufferPointer) -> Int? {
    guard b.count >= 1, b.count <= 9 else { return nil }
    var v = 0
    for c in b {
        let d = c &- 48
        if d > 9 { return nil }
        v = v * 10 + Int(d)
    }
    return v
}

struct RecommendationQuery {
    var region: CountryCode?
    var language: String?
    var limit: Int
    var maxAgeSeconds: Int64?
    /// Cold-start attributes (`age`, `gender`): with `region` and `lang` they pick an unknown user's segment list.
    var age: AgeBucket?
    var gender: SegmentGender?
    /// The decoded `exclude` value (comma-separated ids), resolved against the served version by `FilterTable`.
    var exclude: [UInt8] = []
}

extension LookupService {
    /// Parses `region`, `lang`, `limit`, `exclude`, `max_age_hours`, `age`, `gender`; unknown parameters are ignored.
    /// Byte-level: a typical query (`limit=20`) allocates nothing.
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
            var raw = UnsafeRawBufferPointer(rebasing: q[min(eq + 1, end)..<end])
            if PercentDecoding.needsDecoding(raw, plusIsSpace: true) {
                guard PercentDecoding.decode(raw, plusIsSpace: true, into: &scratch) else {
                    return .failure(HomefeedError("malformed percent-encoding in query parameter \(String(decoding: key, as: UTF8.self))"))
                }
                raw = scratch.withUnsafeBytes { $0 }  // scratch is not touched again until the next parameter
            }
            let value = raw
            func text() -> String { String(decoding: value, as: UTF8.self) }
            if equals(key, "limit") {
                guard let n = parseInt(value), n >= 1, n <= config.maxLimit else {
                    return .failure(HomefeedError("limit must be an integer in 1...\(config.maxLimit), got '\(text())'"))
                }
                out.limit = n
            } else if equals(key, "region") {
                guard let c = CountryCode(value) else { return .failure(HomefeedError("region must be an ISO 3166-1 alpha-2 code, got '\(text())'")) }
                out.region = c
            } else if equals(key, "lang") {
                guard value.count >= 1, value.count <= 15 else { return .failure(HomefeedError("lang must be a language code of 1 to 15 bytes")) }
                out.language = text()
            } else if equals(key, "max_age_hours") {
                guard let h = parseInt(value).map(Double.init) ?? Double(text()), h > 0, h < 1e7 else {
                    return .failure(HomefeedError("max_age_hours must be a positive number, got '\(text())'"))
                }
                out.maxAgeSeconds = Int64(h * 3600)
            } else if equals(key, "age") {
                guard let a = parseInt(value), a <= 130 else {
                    return .failure(HomefeedError("age must be a whole number of years in 0...130 (0 = unknown), got '\(text())'"))
                }
                out.age = AgeBucket(age: a)
            } else if equals(key, "gender") {
                guard let g = SegmentGender(parsing: value) else {
                    return .failure(HomefeedError("gender must be f, m, o or u (female, male, other, unknown; any case), got '\(text())'"))
                }
                out.gender = g
            } else if equals(key, "exclude") {
                if !out.exclude.isEmpty { out.exclude.append(UInt8(ascii: ",")) }   // a repeated parameter adds ids
                out.exclude.append(contentsOf: value)
                guard out.exclude.count(where: { $0 == UInt8(ascii: ",") }) < 1000 else {
                    return .failure(HomefeedError("exclude lists at most 1000 video ids"))
                }
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
    ///    served from that chain alone, led by their cold-start segment's list when the request names `region`,
    ///    `lang`, `age` and `gender` and the version has that segment.
    /// 5. Render JSON straight into the response buffer.
    func recommend(userID: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer, _ response: inout HTTPResponse) {
        // 1.
        guard let st = current else { response.setError(503, "no store version is open yet"); return }
        let q: RecommendationQuery
        switch parseQuery(query) {
        case .success(let v): q = v
        case .failure(let e): response.setError(400, e.message); return
        }
        let table = st.filter
        // 2.
        var excluded: [UInt32] = []
        q.exclude.withUnsafeBytes { ids in
            var start = 0
            while start < ids.count {
                var end = start
                while end < ids.count && ids[end] != UInt8(ascii: ",") { end += 1 }
                if let v = table.index(ofID: UnsafeRawBufferPointer(rebasing: ids[start..<end])) { excluded.append(v) }
                start = end + 1
            }
        }
        do {
            for id in seen.seen(userID: userID) {
                var id = id
                if let v = id.withUTF8({ table.index(ofID: UnsafeRawBufferPointer($0)) }) { excluded.append(v) }
            }
        }
        let effectiveNow = st.asOf + (TimeFormat.now() - st.createdAt)
        let minPublished = q.maxAgeSeconds.map { effectiveNow - $0 } ?? Int64.min
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: q.limit) { videos in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: q.limit) { scores in
            // 3.–4. inside the pinned read: the top-up checks the user's seen filter, which lives in the value.
            //    (No mutable state is captured by the closures: captured vars are boxed and every access is
            //    checked for exclusivity at run time — measured at ~2k instructions per request.)
            let assembled: (n: Int, source: LookupMetrics.Fallback, toppedUp: Bool)
            do {
                assembled = try st.version.withUserList(userID) { view in
                    let region = q.region ?? view?.country ?? .unknown
                    let limit = q.limit
                    var n = 0
                    if let view {
                        var i = 0
                        while i < view.count && n < limit {
                            let v = view.video(i)
                            if table.passes(Int(v), region: region, minPublished: minPublished)
                                && (excluded.isEmpty || !excluded.contains(v)) {
                                videos[n] = v; scores[n] = view.score(i); n += 1
                            }
                            i += 1
                        }
                    }
                    // 4.
                    var source: LookupMetrics.Fallback = .personalized
                    var toppedUp = false
                    if n < limit {
                        let language = q.language ?? view?.language
                        var chosen = view != nil
                        // An unknown user who told region, language, age and gender: that segment's list first.
                        let segment = view == nil ? st.segmentList(for: q) : nil
                        // The videos already taken, in a small open-addressing set on the stack: checking each
                        // top-up candidate against the list so far was O(limit) and dominated limit=100 requests.
                        let slots = 1 << (Int.bitWidth - (2 * limit).leadingZeroBitCount)   // power of two > 2·limit
                        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: slots) { buf in
                        var taken = VideoSet(buf)
                        for k in 0..<n { _ = taken.insert(videos[k]) }
                        for (list, level) in [(segment, LookupMetrics.Fallback.segment),
                                              (st.regionLists[region.raw], .popularRegion),
                                              (language.flatMap { st.languageLists[$0] }, .popularLanguage),
                                              (st.globalList, .popularGlobal)] where n < limit {
                            guard let list else { continue }
                            let topUp = chosen, before = n
                            if !chosen { source = level; chosen = true }
                            for (v, s) in zip(list.videos, list.scores) where n < limit {
                                if table.passes(Int(v), region: region, minPublished: minPublished)
                                    && !excluded.contains(v) && !(view?.mightHaveSeen(v) ?? false)
                                    && taken.insert(v) {
                                    videos[n] = v; scores[n] = s; n += 1
                                }
                            }
                            if topUp && n > before { toppedUp = true }   // a top-up only if this list added something
                        }
                        }
                        if !chosen { source = .popularGlobal }
                    }
                    return (n, source, toppedUp && view != nil)
                }
            } catch {
                response.setError(500, "store read failed: \(error)")
                return
            }
            let (n, source, toppedUp) = assembled
            metrics.record(source: source, toppedUp: toppedUp)
            // 5.
            let capacity = 256 + st.versionJSON.count + userID.count * 6 + n * (48 + table.maxIDBytes)
            response.body.removeAll(keepingCapacity: true)
            JSONWriter.append(to: &response.body, capacity: capacity) { out in
                out.write(#"{"user_id":""#)
                out.writeEscaped(userID)
                out.write(#"","source":""#)
                out.write(source.jsonLabel)
                out.write(#"","#)
                out.write(st.versionJSON)
                out.write(#","items":["#)
                for k in 0..<n {
                    out.write(k == 0 ? #"{"video_id":"# : #",{"video_id":"#)
                    table.writeJSONID(Int(videos[k]), to: &out)
                    out.write(#","score":"#)
                    out.writeScore(scores[k])
                    out.write(byte: UInt8(ascii: "}"))
                }
                out.write("]}")
            }
        }
        }
    }
}


extension ServingState {
    /// The list of the segment the query names (`region`, `lang`, `age`, `gender`: all four), or nil. The key is
    /// packed from the query's values on the stack: one hash lookup, no allocation.
    @inline(__always)
    func segmentList(for q: RecommendationQuery) -> RecommendationList? {
        guard !segmentLists.isEmpty, let r = q.region, let l = q.language, let a = q.age, let g = q.gender,
              let key = UserSegment.Key(country: r, language: l, age: a, gender: g) else { return nil }
        return segmentLists[key]
    }
}

/// A set of video indices over caller-provided slots (a power of two, more than twice the elements), linear probing.
struct VideoSet {
    private let slots: UnsafeMutableBufferPointer<UInt32>
    private static let empty = UInt32.max

    init(_ slots: UnsafeMutableBufferPointer<UInt32>) {
        self.slots = slots
        slots.update(repeating: Self.empty)
    }

    /// Adds v; false when it was already there.
    @inline(__always)
    mutating func insert(_ v: UInt32) -> Bool {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: v &* 0x9E37_79B1) & mask
        while true {
            let e = slots[i]
            if e == v { return false }
            if e == Self.empty { slots[i] = v; return true }
            i = (i + 1) & mask
        }
    }
}
