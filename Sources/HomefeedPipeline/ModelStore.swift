import Foundation
import HomefeedCore
import HomefeedModels
import HomefeedStore

/// What a trained MF model is, as recorded in its model.json.
public struct MFModelInfo: Codable, Sendable, Equatable {
    public var name = ""
    public var createdAt: Int64 = 0
    /// The training data's "now" (newest interaction unless --now).
    public var asOf: Int64 = 0
    public var dataDirectory = ""
    /// The MF settings the model was fitted with (after tuning, when it ran).
    public var mf = HomefeedConfig.MF()
    public var tuning: TuningReport?
    public var users = 0, videos = 0, pairs = 0
    /// The item-to-item model saved beside the factors (item_item.f32), when `[item_item] videos` > 0.
    public var itemItem: ItemItemInfo?
    /// The two-tower model saved beside the factors (two_tower.f32), when `[two_tower] enabled`.
    public var twoTower: TwoTowerInfo?
    /// The ranking stage's learned ranker (`[rank] ranker = "learned"`), fitted on held-out interactions.
    public var ranker: LinearRanker?
    public var rankerFit: RankerFitInfo?
    /// FNV-1a 64 (hex) of each binary file, so a damaged file of the right size is refused at load, not served.
    public var checksums: [String: String]?
    public var stages: [RunMetadata.Stage] = []
    public init() {}
}

/// The item-to-item model's record in model.json: its settings (as tuned), the head (model video rows, in the
/// order of item_item.f32's rows and columns) and the absolute λ solved with.
public struct ItemItemInfo: Codable, Sendable, Equatable {
    public var settings: HomefeedConfig.ItemItem
    public var head: [Int32]
    public var lambda: Double
}

/// A trained model in memory: factors with the ids of their rows.
public struct MFModel: Sendable {
    public var info: MFModelInfo
    public var userIDs: [String]
    public var videoIDs: [String]
    public var users: Matrix
    public var videos: Matrix
    public var itemItem: ItemItemModel?
    public var twoTower: TwoTowerModel?

    /// Sets the item-to-item model and its record in model.json together (nil clears both).
    mutating func setItemItem(_ m: ItemItemModel?, settings: HomefeedConfig.ItemItem) {
        itemItem = m
        info.itemItem = m.map { ItemItemInfo(settings: settings, head: $0.videos, lambda: Double($0.lambda)) }
    }
}

/// Trained models inside a store directory, next to the versions that used them:
///
///     STORE/models/model-000003-20261123T180000Z/
///         model.json      MFModelInfo (settings, tuning, counts, stage times; the two-tower spec and training
///                         report; the learned ranker's weights; FNV-1a 64 of each binary file, checked at load)
///         users.f32       MF user factors, little-endian float32, row-major (users × factors)
///         videos.f32      MF video factors, same layout (the raw format of topk_reference.py)
///         user_ids.txt    one id per line, in row order
///         video_ids.txt
///         item_item.f32   the item-to-item weights B, float32, head × head, row-major (head order in model.json)
///         two_tower.f32   the two-tower model's parameters, float32, in TwoTowerModel.parameters order
///
/// A model is written into models/.tmp-NAME and renamed into place when complete, so a reader never sees half of
/// one; `train` holds models/LOCK (not the store's LOCK: the hourly refresh goes on while the daily train runs).
/// The newest complete model is the one `run` uses; the version records its name (a rollback serves lists made
/// with the model recorded there, and pruning keeps the models of kept versions).
public struct ModelStore: Sendable {
    public let store: VersionedStore
    public var dir: String { store.root + "/models" }

    public init(store: VersionedStore) { self.store = store }

    static let prefix = "model-"
    /// `model-NNNNNN-TIME`, or `mf-NNNNNN-TIME` (stores from before the two-tower model: still listed, used and
    /// pruned; they sort before every `model-` name, so a new model is always the latest).
    public static func isModelName(_ s: String) -> Bool {
        for p in [prefix, "mf-"] where s.hasPrefix(p) {
            return s.count >= p.count + 7 && s.dropFirst(p.count).prefix(6).allSatisfy(\.isNumber) && !s.contains("/")
        }
        return false
    }

    /// Complete models, oldest first.
    public func models() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter(Self.isModelName).sorted()
    }

    public func latest() -> String? { models().last }

    /// Takes the training lock (busy → exit 75, like the store lock) and removes what a crashed train left.
    public func lock() throws -> StoreLock {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let lock = try StoreLock(path: dir + "/LOCK")
        for n in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where n.hasPrefix(".tmp-") { try? fm.removeItem(atPath: dir + "/" + n) }
        return lock
    }

    /// Writes the model and returns its name (hold `lock()`).
    @discardableResult
    public func save(_ model: inout MFModel, createdAt: Int64) throws -> String {
        let seq = (models().last.flatMap { Int($0.drop { $0 != "-" }.dropFirst().prefix(6)) } ?? 0) + 1
        let s = String(seq)
        let name = Self.prefix + String(repeating: "0", count: max(0, 6 - s.count)) + s + "-" + TimeFormat.compact(createdAt)
        model.info.name = name
        model.info.createdAt = createdAt
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = dir + "/.tmp-" + name
        try? fm.removeItem(atPath: tmp)
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        var sums: [String: String] = [:]
        func write(_ file: String, _ values: [Float]) throws {
            try values.withUnsafeBytes { b in
                sums[file] = hex(StableHash.fnv1a64(b))
                try writeFileSynced(tmp + "/" + file, b)
            }
        }
        try write("users.f32", model.users.values)
        try write("videos.f32", model.videos.values)
        try writeFileSynced(tmp + "/user_ids.txt", Array(model.userIDs.joined(separator: "\n").utf8))
        try writeFileSynced(tmp + "/video_ids.txt", Array(model.videoIDs.joined(separator: "\n").utf8))
        if let ii = model.itemItem { try write("item_item.f32", ii.weights) }
        if let tt = model.twoTower { try write("two_tower.f32", tt.parameters) }
        model.info.checksums = sums
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFileSynced(tmp + "/model.json", Array(try enc.encode(model.info)))   // last: marks the model complete
        try fsyncDirectory(tmp)
        guard rename(tmp, dir + "/" + name) == 0 else {
            throw HomefeedError("cannot move model \(tmp) into \(dir): \(String(cString: strerror(errno)))")
        }
        try fsyncDirectory(dir)
        return name
    }

    public func info(_ name: String) throws -> MFModelInfo {
        let p = dir + "/" + name + "/model.json"
        guard let d = FileManager.default.contents(atPath: p) else { throw HomefeedError("model \(name): missing \(p)") }
        do { return try JSONDecoder().decode(MFModelInfo.self, from: d) }
        catch { throw HomefeedError("model \(name): unreadable model.json: \(error)") }
    }

    public func load(_ name: String) throws -> MFModel {
        let base = dir + "/" + name
        let info = try info(name)
        let f = info.mf.factors
        func ids(_ file: String, _ count: Int) throws -> [String] {
            guard let d = FileManager.default.contents(atPath: base + "/" + file) else { throw HomefeedError("model \(name): missing \(file)") }
            let list = count == 0 ? [] : String(decoding: d, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard list.count == count else { throw HomefeedError("model \(name): \(file) has \(list.count) ids, model.json says \(count)") }
            return list
        }
        func verify(_ file: String, _ d: Data) throws {
            guard let expected = info.checksums?[file] else { return }   // models saved before checksums
            let actual = d.withUnsafeBytes { hex(StableHash.fnv1a64($0)) }
            guard actual == expected else {
                throw HomefeedError("model \(name): \(file) is damaged (checksum \(actual), model.json records \(expected))")
            }
        }
        func matrix(_ file: String, _ rows: Int) throws -> Matrix {
            guard let d = FileManager.default.contents(atPath: base + "/" + file) else { throw HomefeedError("model \(name): missing \(file)") }
            guard d.count == rows * f * 4 else {
                throw HomefeedError("model \(name): \(file) has \(d.count) bytes, expected \(rows) × \(f) float32 = \(rows * f * 4)")
            }
            try verify(file, d)
            var values = [Float](repeating: 0, count: rows * f)
            values.withUnsafeMutableBytes { _ = d.copyBytes(to: $0) }
            return Matrix(rows: rows, cols: f, values: values)
        }
        var itemItem: ItemItemModel?
        if let ii = info.itemItem {
            let n = ii.head.count
            guard let d = FileManager.default.contents(atPath: base + "/item_item.f32"), d.count == n * n * 4 else {
                throw HomefeedError("model \(name): missing item_item.f32, or not \(n) × \(n) float32 as model.json's head says")
            }
            guard ii.head.allSatisfy({ $0 >= 0 && Int($0) < info.videos }) else {
                throw HomefeedError("model \(name): item_item head names a video row outside 0..<\(info.videos)")
            }
            try verify("item_item.f32", d)
            var values = [Float](repeating: 0, count: n * n)
            values.withUnsafeMutableBytes { _ = d.copyBytes(to: $0) }
            itemItem = ItemItemModel(videos: ii.head, weights: values, lambda: Float(ii.lambda))
        }
        var twoTower: TwoTowerModel?
        if let tt = info.twoTower {
            guard let d = FileManager.default.contents(atPath: base + "/two_tower.f32"), d.count % 4 == 0 else {
                throw HomefeedError("model \(name): missing or truncated two_tower.f32")
            }
            try verify("two_tower.f32", d)
            var values = [Float](repeating: 0, count: d.count / 4)
            values.withUnsafeMutableBytes { _ = d.copyBytes(to: $0) }
            do { twoTower = try TwoTowerModel(tt.spec, parameters: values) }
            catch { throw HomefeedError("model \(name): two_tower.f32: \(error)") }
        }
        return MFModel(info: info, userIDs: try ids("user_ids.txt", info.users), videoIDs: try ids("video_ids.txt", info.videos),
                       users: try matrix("users.f32", info.users), videos: try matrix("videos.f32", info.videos),
                       itemItem: itemItem, twoTower: twoTower)
    }

    /// Deletes the oldest models beyond `keep`, never one in `protected` (used by a kept version). Returns them.
    @discardableResult
    public func prune(keep: Int, protected: Set<String>) throws -> [String] {
        var deleted: [String] = []
        for m in models().dropLast(max(keep, 1)) where !protected.contains(m) {
            try FileManager.default.removeItem(atPath: dir + "/" + m)
            deleted.append(m)
        }
        return deleted
    }

    /// Models referenced by the versions on disk.
    public func inUse() -> Set<String> {
        Set(store.versions().flatMap { ((try? store.metadata(of: $0).models) ?? [:]).values })
    }
}
