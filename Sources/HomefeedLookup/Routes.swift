import Foundation
import HomefeedCore
import HomefeedHTTP
import HomefeedStore

/// Routing and the small endpoints. The recommendation endpoint is in Recommend.swift.
extension LookupService {
    public func handle(_ request: borrowing HTTPRequest, _ response: inout HTTPResponse) {
        let t0 = TimeFormat.monotonic()
        let route = dispatch(request, &response)
        // While draining, kept-alive clients (a load balancer's pooled connections among them) are asked to
        // reconnect, so their next request goes to a replica that is still in rotation.
        if isDraining { response.closeConnection = true }
        metrics.record(route: route, status: response.status, seconds: TimeFormat.monotonic() - t0)
    }

    private func dispatch(_ request: borrowing HTTPRequest, _ response: inout HTTPResponse) -> LookupMetrics.Route {
        let path = request.path
        let method = request.method
        let usersPrefix: StaticString = "/v1/users/"
        if path.count > usersPrefix.utf8CodeUnitCount,
           memcmp(path.baseAddress!, usersPrefix.utf8Start, usersPrefix.utf8CodeUnitCount) == 0 {
            // /v1/users/{id}/recommendations | /v1/users/{id}/seen
            let rest = UnsafeRawBufferPointer(rebasing: path[usersPrefix.utf8CodeUnitCount...])
            guard let slash = rest.firstIndex(of: UInt8(ascii: "/")), slash > 0 else {
                response.setError(404, "no such route: \(request.pathString)"); return .other
            }
            let rawID = UnsafeRawBufferPointer(rebasing: rest[..<slash])
            let action = UnsafeRawBufferPointer(rebasing: rest[(slash + 1)...])
            if equals(action, "recommendations") {
                guard method == .get || method == .head else {
                    response.setError(405, "use GET for /v1/users/{id}/recommendations"); return .recommendations
                }
                let query = request.query
                withUserID(rawID, &response) { id, resp in recommend(userID: id, query: query, &resp) }
                return .recommendations
            }
            if equals(action, "seen") {
                guard method == .post else {
                    response.setError(405, "use POST for /v1/users/{id}/seen"); return .seen
                }
                let body = request.body
                withUserID(rawID, &response) { id, resp in recordSeen(userID: id, body: body, &resp) }
                return .seen
            }
            response.setError(404, "no such route: \(request.pathString)")
            return .other
        }
        // The read-only endpoints: GET and HEAD only.
        let route: LookupMetrics.Route? = request.pathIs("/healthz") ? .healthz : request.pathIs("/readyz") ? .readyz
            : request.pathIs("/metrics") ? .metrics : request.pathIs("/v1/version") ? .version : nil
        guard let route else {
            response.setError(404, "no such route: \(request.pathString)")
            return .other
        }
        guard method == .get || method == .head else {
            response.setError(405, "use GET for \(request.pathString)")
            return .other
        }
        switch route {
        case .healthz:
            response.body.append(contentsOf: #"{"status":"ok"}"#.utf8)
        case .readyz:
            if isDraining {
                response.setError(503, "draining: homefeed-lookupd is shutting down, send traffic to another replica")
            } else if let s = current {
                response.body.append(contentsOf: #"{"status":"ready","version":"#.utf8)
                response.body.append(contentsOf: JSONText.escaped(s.version.name))
                response.body.append(UInt8(ascii: "}"))
            } else {
                response.setError(503, "no store version is open yet")
            }
        case .metrics:
            response.contentType = "text/plain; version=0.0.4"
            let stats = serverStats.withLock { $0 }?()
            response.body.append(contentsOf: metrics.render(state: current, server: stats, seenUsers: seen.userCount,
                                                                draining: isDraining).utf8)
        default:  // .version
            guard let s = current else { response.setError(503, "no store version is open yet"); return .version }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            enc.keyEncodingStrategy = .convertToSnakeCase   // as the recommendation responses
            response.body.append(contentsOf: (try? enc.encode(s.version.metadata)) ?? Data())
        }
        return route
    }

    /// Hands the percent-decoded user id to `body`, or answers 400.
    private func withUserID(_ raw: UnsafeRawBufferPointer, _ response: inout HTTPResponse,
                            _ body: (UnsafeRawBufferPointer, inout HTTPResponse) -> Void) {
        if !PercentDecoding.needsDecoding(raw, plusIsSpace: false) {
            guard raw.count <= 256 else { response.setError(400, "user id longer than 256 bytes"); return }
            body(raw, &response)
            return
        }
        var decoded: [UInt8] = []
        guard PercentDecoding.decode(raw, plusIsSpace: false, into: &decoded), !decoded.isEmpty, decoded.count <= 256 else {
            response.setError(400, "malformed user id in path"); return
        }
        decoded.withUnsafeBytes { body($0, &response) }
    }

    /// POST /v1/users/{id}/seen with `["v1","v2"]` or `{"video_ids":["v1","v2"]}`.
    private func recordSeen(userID: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer, _ response: inout HTTPResponse) {
        let parsed = try? JSONSerialization.jsonObject(with: Data(body), options: [])
        let list = (parsed as? [Any]) ?? ((parsed as? [String: Any])?["video_ids"] as? [Any])
        guard let list, let ids = list as? [String] else {
            response.setError(400, #"body must be a JSON list of video ids, e.g. ["v1","v2"], or {"video_ids":[...]}"#)
            return
        }
        guard ids.count <= 10_000, ids.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
            response.setError(400, "at most 10000 video ids of 1 to 256 bytes each")
            return
        }
        let user = String(decoding: userID, as: UTF8.self)
        seen.record(user: user, videos: ids)
        response.body.append(contentsOf: #"{"user_id":"#.utf8)
        response.body.append(contentsOf: JSONText.escaped(user))
        response.body.append(contentsOf: ",\"recorded\":\(ids.count)}".utf8)
    }
}
