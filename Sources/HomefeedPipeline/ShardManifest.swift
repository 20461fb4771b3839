import Foundation
import HomefeedCore
import HomefeedStore

/// Written beside each shard's SST (`users-I-of-N.sst.json`): what the shard job saw, so the ingest step can check
/// that all N shards are present and were computed from the same data.
struct ShardManifest: Codable {
    var shard: Int
    var shardCount: Int
    var counts: RunMetadata.Counts
    var entries: Int
    var sourceFiles: [RunMetadata.SourceFile]
    /// What every shard of one version must share with the ingest run: the data's now, the activity window and
    /// the configuration.
    var asOf: Int64
    var activeDays: Int
    var configDigest: String
    /// The MF model the shard's lists came from.
    var model: String
    /// The store format of the shard's keys (absent: written before format 2, i.e. 1).
    var storeFormat: Int? = RunMetadata.currentStoreFormat

    init(shard: ShardSpec, counts: RunMetadata.Counts, entries: Int, sourceFiles: [RunMetadata.SourceFile],
         asOf: Int64, activeDays: Int, configDigest: String, model: String) {
        self.shard = shard.index; shardCount = shard.count; self.counts = counts; self.entries = entries
        self.sourceFiles = sourceFiles; self.asOf = asOf; self.activeDays = activeDays; self.configDigest = configDigest
        self.model = model
    }

    func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try replaceFileSynced(path, enc.encode(self))
    }

    struct Collected {
        var files: [String] = []; var users = 0; var entries = 0; var activeUsers = 0; var mfUsers = 0; var count = 0
        var sources: [String: Int] = [:]
        var model = ""
    }

    /// Reads every manifest in `dir`; all shards 0..<N of one N must be present, from the same input files.
    static func collect(_ dir: String, expectedSources: [RunMetadata.SourceFile], asOf: Int64, activeDays: Int,
                        configDigest: String) throws -> Collected {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let manifests = try names.filter { $0.hasPrefix("users-") && $0.hasSuffix(".sst.json") }.sorted().map { name -> ShardManifest in
            guard let d = FileManager.default.contents(atPath: dir + "/" + name) else { throw HomefeedError("cannot read \(dir)/\(name)") }
            do { return try JSONDecoder().decode(ShardManifest.self, from: d) }
            catch { throw HomefeedError("\(dir)/\(name): unreadable shard manifest: \(error)") }
        }
        guard let n = manifests.first?.shardCount else { throw HomefeedError("no shard manifests (users-I-of-N.sst.json) in \(dir)") }
        let seen = Set(manifests.filter { $0.shardCount == n }.map(\.shard))
        guard manifests.allSatisfy({ $0.shardCount == n }), seen.count == n, manifests.count == n else {
            let missing = (0..<n).filter { !seen.contains($0) }
            throw HomefeedError("\(dir): incomplete shard set for N=\(n): missing \(missing.map(String.init).joined(separator: ", ")) (or mixed shard counts)")
        }
        var out = Collected()
        out.count = n
        out.model = manifests[0].model
        for m in manifests {
            guard (m.storeFormat ?? 1) == RunMetadata.currentStoreFormat else {
                throw HomefeedError("\(dir): shard \(m.shard)/\(n) has store format \(m.storeFormat ?? 1), this build writes format \(RunMetadata.currentStoreFormat) (its user keys hash differently: rerun the shard jobs)")
            }
            guard m.sourceFiles == expectedSources else {
                throw HomefeedError("\(dir): shard \(m.shard)/\(n) was computed from different input files than this run")
            }
            guard m.asOf == asOf else {
                throw HomefeedError("\(dir): shard \(m.shard)/\(n) was computed as of \(TimeFormat.iso8601(m.asOf)), this run is as of \(TimeFormat.iso8601(asOf)) (pass the same --now)")
            }
            guard m.activeDays == activeDays else {
                throw HomefeedError("\(dir): shard \(m.shard)/\(n) used --active-days \(m.activeDays), this run \(activeDays)")
            }
            guard m.configDigest == configDigest else {
                throw HomefeedError("\(dir): shard \(m.shard)/\(n) used another configuration (digest \(m.configDigest), this run \(configDigest))")
            }
            guard m.model == out.model else {
                throw HomefeedError("\(dir): shard \(m.shard)/\(n) used model \(m.model), shard 0 used \(out.model) (a train ran between the shard jobs: rerun them)")
            }
            let spec = try ShardSpec(index: m.shard, count: n)
            let sst = dir + "/" + spec.fileName
            if m.counts.personalizedUsers > 0 {
                guard FileManager.default.fileExists(atPath: sst) else { throw HomefeedError("missing shard file \(sst)") }
                out.files.append(sst)
            }
            out.users += m.counts.personalizedUsers
            out.entries += m.entries
            out.activeUsers += m.counts.activeUsers
            out.mfUsers += m.counts.mfUsers
            out.sources.merge(m.counts.sources, uniquingKeysWith: +)
        }
        return out
    }
}
