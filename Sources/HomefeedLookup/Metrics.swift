import HomefeedCore
import HomefeedHTTP
import Synchronization

/// Prometheus counters of the daemon, lock-free (atomics) so every worker thread updates them directly.
public final class LookupMetrics: Sendable {
    public enum Route: Int, CaseIterable, Sendable {
        case recommendations, seen, healthz, readyz, metrics, version, other
        var label: String {
            switch self {
            case .recommendations: "recommendations"; case .seen: "seen"; case .healthz: "healthz"
            case .readyz: "readyz"; case .metrics: "metrics"; case .version: "version"; case .other: "other"
            }
        }
    }
    static let statuses = [200, 204, 400, 404, 405, 413, 422, 500, 503]
    /// Upper bounds of the handler latency buckets, seconds.
    static let buckets: [Double] = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1]
    public enum Fallback: Int, CaseIterable, Sendable {
        case personalized, popularRegion, popularLanguage, popularGlobal, segment
        /// The `source` of a response (and the metrics label).
        var jsonLabel: StaticString {
            switch self {
            case .personalized: "personalized"; case .popularRegion: "popular_region"
            case .popularLanguage: "popular_language"; case .popularGlobal: "popular_global"; case .segment: "segment"
            }
        }
        var label: String { jsonLabel.description }
    }

    private let requests: InlineArray<70, Atomic<Int>>      // route × (statuses + other)
    private let latency: InlineArray<12, Atomic<Int>>       // buckets + overflow (non-cumulative)
    private let latencySumNanos = Atomic<Int>(0)
    private let sources: InlineArray<5, Atomic<Int>>
    private let toppedUp = Atomic<Int>(0)
    let versionSwaps = Atomic<Int>(0)
    let versionLoadFailures = Atomic<Int>(0)

    public init() {
        requests = InlineArray { _ in Atomic(0) }
        latency = InlineArray { _ in Atomic(0) }
        sources = InlineArray { _ in Atomic(0) }
    }

    func record(route: Route, status: Int, seconds: Double) {
        let s = Self.statuses.firstIndex(of: status) ?? Self.statuses.count
        requests[route.rawValue * 10 + s].add(1, ordering: .relaxed)
        var b = 0
        while b < Self.buckets.count && seconds > Self.buckets[b] { b += 1 }
        latency[b].add(1, ordering: .relaxed)
        latencySumNanos.add(Int(seconds * 1e9), ordering: .relaxed)
    }

    func record(source: Fallback, toppedUp t: Bool) {
        sources[source.rawValue].add(1, ordering: .relaxed)
        if t { toppedUp.add(1, ordering: .relaxed) }
    }

    /// Requests counted for a route and status (tests).
    public func count(route: Route, status: Int) -> Int {
        let s = Self.statuses.firstIndex(of: status) ?? Self.statuses.count
        return requests[route.rawValue * 10 + s].load(ordering: .relaxed)
    }

    public func count(source: Fallback) -> Int { sources[source.rawValue].load(ordering: .relaxed) }

    /// The Prometheus text exposition (version 0.0.4).
    func render(state: ServingState?, server: HTTPServerStats?, seenUsers: Int, draining: Bool) -> String {
        var o = ""
        o += "# HELP homefeed_requests_total Requests by route and status.\n# TYPE homefeed_requests_total counter\n"
        for r in Route.allCases {
            for s in 0...Self.statuses.count {
                let v = requests[r.rawValue * 10 + s].load(ordering: .relaxed)
                if v == 0 { continue }
                let code = s < Self.statuses.count ? String(Self.statuses[s]) : "other"
                o += "homefeed_requests_total{route=\"\(r.label)\",status=\"\(code)\"} \(v)\n"
            }
        }
        o += "# HELP homefeed_request_seconds Handler time per request (parse to response body, socket time excluded).\n# TYPE homefeed_request_seconds histogram\n"
        var cumulative = 0
        for (i, le) in Self.buckets.enumerated() {
            cumulative += latency[i].load(ordering: .relaxed)
            o += "homefeed_request_seconds_bucket{le=\"\(le)\"} \(cumulative)\n"
        }
        cumulative += latency[Self.buckets.count].load(ordering: .relaxed)
        o += "homefeed_request_seconds_bucket{le=\"+Inf\"} \(cumulative)\n"
        o += "homefeed_request_seconds_sum \(Double(latencySumNanos.load(ordering: .relaxed)) / 1e9)\n"
        o += "homefeed_request_seconds_count \(cumulative)\n"
        o += "# HELP homefeed_responses_by_source_total Recommendation responses by the list that served them.\n# TYPE homefeed_responses_by_source_total counter\n"
        for f in Fallback.allCases {
            o += "homefeed_responses_by_source_total{source=\"\(f.label)\"} \(sources[f.rawValue].load(ordering: .relaxed))\n"
        }
        o += "# HELP homefeed_responses_topped_up_total Responses filled up from a fallback list after filtering.\n# TYPE homefeed_responses_topped_up_total counter\n"
        o += "homefeed_responses_topped_up_total \(toppedUp.load(ordering: .relaxed))\n"
        o += "# HELP homefeed_version_swaps_total Store versions picked up since start.\n# TYPE homefeed_version_swaps_total counter\n"
        o += "homefeed_version_swaps_total \(versionSwaps.load(ordering: .relaxed))\n"
        o += "# TYPE homefeed_version_load_failures_total counter\n"
        o += "homefeed_version_load_failures_total \(versionLoadFailures.load(ordering: .relaxed))\n"
        if let st = state {
            let age = TimeFormat.now() - st.createdAt
            o += "# HELP homefeed_served_version_info The served store version.\n# TYPE homefeed_served_version_info gauge\n"
            o += "homefeed_served_version_info{version=\"\(st.version.name)\"} 1\n"
            o += "# HELP homefeed_served_version_age_seconds Seconds since the served version was built.\n# TYPE homefeed_served_version_age_seconds gauge\n"
            o += "homefeed_served_version_age_seconds \(age)\n"
            o += "# TYPE homefeed_served_personalized_users gauge\nhomefeed_served_personalized_users \(st.version.metadata.counts.personalizedUsers)\n"
            o += "# TYPE homefeed_blocked_videos gauge\nhomefeed_blocked_videos \(st.blockedCount)\n"
            o += "# HELP homefeed_served_segment_lists Cold-start segment lists in the served version.\n# TYPE homefeed_served_segment_lists gauge\nhomefeed_served_segment_lists \(st.segmentLists.count)\n"
        }
        o += "# TYPE homefeed_ready gauge\nhomefeed_ready \(state == nil ? 0 : 1)\n"
        o += "# HELP homefeed_draining 1 from SIGTERM/SIGINT until the stop: /readyz answers 503, requests are still served.\n# TYPE homefeed_draining gauge\nhomefeed_draining \(draining ? 1 : 0)\n"
        o += "# TYPE homefeed_seen_memory_users gauge\nhomefeed_seen_memory_users \(seenUsers)\n"
        if let s = server {
            o += "# TYPE homefeed_http_open_connections gauge\nhomefeed_http_open_connections \(s.openConnections)\n"
            o += "# TYPE homefeed_http_accepted_total counter\nhomefeed_http_accepted_total \(s.accepted)\n"
            o += "# TYPE homefeed_http_rejected_over_limit_total counter\nhomefeed_http_rejected_over_limit_total \(s.rejectedOverLimit)\n"
            o += "# TYPE homefeed_http_bad_requests_total counter\nhomefeed_http_bad_requests_total \(s.badRequests)\n"
            o += "# TYPE homefeed_http_idle_closed_total counter\nhomefeed_http_idle_closed_total \(s.idleClosed)\n"
        }
        return o
    }
}
