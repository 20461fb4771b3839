import Foundation
import HomefeedCore
import HomefeedData
import HomefeedModels

/// What a trained two-tower model is, recorded with the model (model.json).
public struct TwoTowerInfo: Codable, Sendable, Equatable {
    public var spec: TwoTowerSpec
    public var settings: HomefeedConfig.TwoTower
    public var examples = 0
    public var validationExamples = 0
    public var report: TwoTowerTrainReport?
}

/// Training examples: one per relevant (user, video) pair; the user side is the user's row with that video left
/// out of their history bags (no leakage of the label into the input), hard negatives are the user's dislikes.
struct TwoTowerExampleSet: TwoTowerExamples {
    let encoder: FeatureEncoder
    let users: [Int32]
    let videos: [Int32]
    var count: Int { users.count }
    var videoCount: Int { encoder.videoIDToken.count }
    func userRow(_ example: Int, into rows: inout FeatureRows) {
        encoder.userRow(Int(users[example]), excluding: videos[example], into: &rows)
    }
    func video(_ example: Int) -> Int { Int(videos[example]) }
    func videoRow(_ video: Int, into rows: inout FeatureRows) { encoder.videoRow(video, into: &rows) }
    func hardNegatives(_ example: Int, into out: inout [Int32]) { out.append(contentsOf: encoder.dislikes(of: Int(users[example]))) }
}

enum TwoTowerFit {
    /// Fits the two-tower model on every relevant pair of `data` (a seeded validation_fraction of them held out for
    /// early stopping).
    static func fit(_ data: Dataset, history: UserHistory, asOf: Int64, config: HomefeedConfig, quiet: Bool) -> (TwoTowerModel, TwoTowerInfo) {
        let c = config.twoTower
        let encoder = FeatureEncoder(data, history: history, asOf: asOf, config: config)
        // 1. Examples: the relevant pairs (each user's sequence holds each relevant video once), split by a stable
        //    hash of (user, video) so the same data always gives the same split.
        var train: ([Int32], [Int32]) = ([], []), valid: ([Int32], [Int32]) = ([], [])
        let cut = UInt64(c.validationFraction * Double(UInt64.max))
        let seed = UInt64(truncatingIfNeeded: c.seed)
        for u in 0..<data.users.count {
            for k in encoder.sequenceOffsets[u]..<encoder.sequenceOffsets[u + 1] {
                let v = encoder.sequenceVideo[k]
                let h = StableHash.mix64(seed ^ (UInt64(UInt32(bitPattern: Int32(u))) << 32 | UInt64(UInt32(bitPattern: v))))
                if h < cut { valid.0.append(Int32(u)); valid.1.append(v) } else { train.0.append(Int32(u)); train.1.append(v) }
            }
        }
        // A cap on the examples per epoch (a seeded sample) bounds the daily train on very large data.
        if c.maxExamples > 0 && train.0.count > c.maxExamples {
            var rng = SeededRandom(seed: seed)
            var idx = Array(0..<train.0.count)
            for i in 0..<c.maxExamples { idx.swapAt(i, i + rng.nextInt(idx.count - i)) }
            let keep = idx.prefix(c.maxExamples).sorted()
            train = (keep.map { train.0[$0] }, keep.map { train.1[$0] })
        }
        let examples = TwoTowerExampleSet(encoder: encoder, users: train.0, videos: train.1)
        let validation = TwoTowerExampleSet(encoder: encoder, users: valid.0, videos: valid.1)
        // 2. Train.
        var t = TwoTowerTrainConfig()
        t.epochs = c.epochs; t.batchSize = c.batchSize; t.learningRate = Float(c.learningRate)
        t.temperature = Float(c.temperature); t.randomNegatives = c.randomNegatives; t.patience = c.patience
        t.seed = seed; t.threads = effectiveThreads(c.threads)
        let spec = FeatureEncoder.spec(c)
        let progress = Progress("train two-tower", total: c.epochs * examples.count, unit: "examples", quiet: quiet)
        let (model, report) = TwoTowerTrainer.train(spec, examples: examples, validation: validation.count > 0 ? validation : nil,
                                                    config: t) { epoch, done, _ in
            progress.add(max(0, epoch * examples.count + done - progress.count))
        }
        progress.finish()
        var info = TwoTowerInfo(spec: spec, settings: c)
        info.examples = examples.count; info.validationExamples = validation.count; info.report = report
        return (model, info)
    }
}
