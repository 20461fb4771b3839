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
    /// The feature recipe the model was trained with (FeatureEncoder.version); a model of another recipe must be
    /// trained again.
    public var featureVersion = 0
}

/// Training examples: one per relevant (user, video) pair; the user side is the user as they were just before it
/// (history bags of the older entries only: no leakage of the label, and the refresh's question — what comes
/// next), without the id in a seeded tenth of the examples; hard negatives are the user's dislikes.
struct TwoTowerExampleSet: TwoTowerExamples {
    let encoder: FeatureEncoder
    let users: [Int32]
    /// Position of the positive in the user's sequence (0 = newest).
    let positions: [Int32]
    var count: Int { users.count }
    var videoCount: Int { encoder.videoIDToken.count }
    func userRow(_ example: Int, into rows: inout FeatureRows) {
        let u = Int(users[example]), p = Int(positions[example])
        let withID = StableHash.mix64(UInt64(UInt32(bitPattern: Int32(u))) << 32 | UInt64(p)) % 10 != 0
        encoder.userRow(u, before: p, withID: withID, others: encoder.config.trainingHistory == "others", into: &rows)
    }
    func video(_ example: Int) -> Int { Int(encoder.sequenceVideo[encoder.sequenceOffsets[Int(users[example])] + Int(positions[example])]) }
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
        //    hash of the (user id, video id) tokens so the same data always gives the same split. At most
        //    max_examples training examples (and a twentieth of that for validation): a seeded sample by the same
        //    hash bounds the daily train on very large data.
        let total = encoder.sequenceVideo.count
        let validShare = c.validationFraction
        let keepShare = c.maxExamples > 0 ? min(1, Double(c.maxExamples) / (Double(total) * (1 - validShare))) : 1
        var train: ([Int32], [Int32]) = ([], []), valid: ([Int32], [Int32]) = ([], [])
        let seed = UInt64(truncatingIfNeeded: c.seed)
        for u in 0..<data.users.count {
            let userToken = encoder.userToken[encoder.userOffsets[u]]   // the id token: first of the user's static entries
            let start = encoder.sequenceOffsets[u]
            for k in start..<encoder.sequenceOffsets[u + 1] {
                let v = encoder.videoIDToken[Int(encoder.sequenceVideo[k])]
                let h = Double(StableHash.mix64(seed ^ (UInt64(userToken) << 32 | UInt64(v))) >> 11) / Double(1 << 53)
                if h < validShare * keepShare { valid.0.append(Int32(u)); valid.1.append(Int32(k - start)) }
                else if h >= validShare && h < validShare + (1 - validShare) * keepShare { train.0.append(Int32(u)); train.1.append(Int32(k - start)) }
            }
        }
        let examples = TwoTowerExampleSet(encoder: encoder, users: train.0, positions: train.1)
        let validation = TwoTowerExampleSet(encoder: encoder, users: valid.0, positions: valid.1)
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
        progress.finish(note: report.stoppedEarly
            ? "stopped early after epoch \(report.epochs.count) of \(c.epochs) (validation loss no longer falling), kept epoch \(report.bestEpoch + 1)"
            : "kept epoch \(report.bestEpoch + 1) of \(report.epochs.count)")
        var info = TwoTowerInfo(spec: spec, settings: c)
        info.examples = examples.count; info.validationExamples = validation.count; info.report = report
        info.featureVersion = FeatureEncoder.version
        return (model, info)
    }
}
