import Foundation
import HomefeedCore

// Training of the two-tower model (TwoTower.swift): sampled softmax with in-batch and random negatives, the logQ
// correction, masked accidental hits and per-user hard negatives; backprop by hand; Adam (lazy for embedding
// rows); early stopping on a validation loss. Multi-core over fixed chunks of a batch, so a run's result depends
// on the seed only, never on the thread count.
//
// Loss of one batch of B examples (row i: user u_i, positive video v_i, weight w_i), with R videos drawn uniformly
// (with replacement) for the whole batch and row i's own hard negatives H_i (the user's dislikes):
//
//     candidates of row i:  c ∈ {v_1 … v_B} ∪ {r_1 … r_R} ∪ H_i          (one column per draw, duplicates allowed)
//     logit_ic = (e_u_i · e_c) / τ − log Q_c     for in-batch and random columns
//     logit_ih = (e_u_i · e_h) / τ − κ           for a hard negative (κ = config.hardNegativeCorrection, 0 = raw)
//     logit_ic = −∞  when video(c) = v_i and c is not row i's own column (an accidental hit)
//     CE_i = log Σ_c exp(logit_ic) − logit_ii,         L = (1/B) Σ_i w_i CE_i
//
// Q_c is the expected number of times video c is drawn into the batch's shared candidates (the sampling-bias
// correction of Yi et al. 2019 for the mixture of both samplers, as TensorFlow's sampled softmax uses the log
// expected count): B·p_c + R/V, where p_c is c's frequency among the examples' positives (computed once from
// `video(_:)`) and V the catalog size. With R = 0 it is the in-batch correction log p_c (+ a constant); for a video
// never seen as a positive only the uniform term R/V remains. `logQCorrection = false` drops it.
//
// Gradient of L with respect to the dot s_ic = e_u_i · e_c (p_ic = softmax_c(logit_i)):
//     ∂L/∂s_ic = (w_i / (B τ)) (p_ic − [c is row i's own column]),     masked columns: 0
//     ∂L/∂e_u_i = Σ_c ∂L/∂s_ic e_c,     ∂L/∂e_c = Σ_i ∂L/∂s_ic e_u_i
// then through each tower (TwoTowerKernels.backward) down to the embedding rows its entries touched.
//
// Threads: a batch's rows (and its distinct videos) go in fixed chunks of 32, one task each; each chunk keeps its
// own dense gradient, summed in chunk order; embedding rows are numbered in first-touch order and each row's
// contributions added in entry order. So a run depends on the seed only, never on the thread count.
// Memory: θ and Adam's m and v (12 bytes per parameter), a copy of θ for the best epoch when validating,
// 4 bytes per embedding row and per video (slot maps), 8 bytes per example (the shuffled order); per batch about
// 6.5 KB per row of each tower at Σdim 192, hidden 128 (activations and their gradients 2.8 KB, plus a 32-row
// chunk's own dense gradient, 115 KB) and 32 bytes per pooled entry, plus the B × (B + R) logits: ~10 MB at
// B = 512, R = 256. The examples themselves stay with the caller.

/// Training data, provided by the pipeline. Example i = one positive (user side, video). The user side of an
/// example is built by the caller (its history leaves the example's own video out, so there is no leakage).
/// Called from worker threads (rows of different examples concurrently): implementations must be thread-safe
/// (immutable data is).
public protocol TwoTowerExamples: Sendable {
    var count: Int { get }
    /// Videos are 0..<videoCount (random negatives are drawn from all of them).
    var videoCount: Int { get }
    /// Appends exactly one row (the user side of the example).
    func userRow(_ example: Int, into rows: inout FeatureRows)
    /// The positive video, 0..<videoCount.
    func video(_ example: Int) -> Int
    /// Appends exactly one row (the video's features).
    func videoRow(_ video: Int, into rows: inout FeatureRows)
    /// Explicit negatives (dislikes) of this example's user, videos 0..<videoCount; may append nothing.
    func hardNegatives(_ example: Int, into out: inout [Int32])
    /// The example's weight w_i in the loss (default 1).
    func weight(_ example: Int) -> Float
}

extension TwoTowerExamples {
    public func weight(_ example: Int) -> Float { 1 }
}

/// No examples (an absent validation set, spelled as a type).
public struct NoTwoTowerExamples: TwoTowerExamples {
    public init() {}
    public var count: Int { 0 }
    public var videoCount: Int { 0 }
    public func userRow(_ example: Int, into rows: inout FeatureRows) { rows.endRow() }
    public func video(_ example: Int) -> Int { 0 }
    public func videoRow(_ video: Int, into rows: inout FeatureRows) { rows.endRow() }
    public func hardNegatives(_ example: Int, into out: inout [Int32]) {}
}

public struct TwoTowerTrainConfig: Codable, Sendable, Equatable {
    /// Passes over the examples (fewer when early stopping ends the run).
    public var epochs = 10
    /// Examples per batch (= in-batch negatives per row + 1); the last batch of an epoch may be smaller.
    public var batchSize = 512
    /// Adam's step size, for dense weights and embedding rows alike.
    public var learningRate: Float = 0.002
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// τ of the loss; the trained model scores with it.
    public var temperature: Float = 0.05
    /// R: videos drawn uniformly per batch, shared by all its rows.
    public var randomNegatives = 256
    /// Subtract log Q (the expected draws of the candidate, see the top of this file) from sampled candidates' logits.
    public var logQCorrection = true
    /// κ subtracted from a hard negative's logit (0: raw logit).
    public var hardNegativeCorrection: Float = 0
    /// L2 weight λ: λ·θ is added to the gradient of W1, W2 (not biases) and of the embedding rows a batch touches.
    public var l2: Float = 0
    /// Stop after this many epochs without a better validation loss (≤ 0: never stop early). The best epoch's
    /// weights are returned either way.
    public var patience = 2
    public var seed: UInt64 = 42
    /// Worker threads (≤ 0: all cores). The result does not depend on it.
    public var threads = 0
    public init() {}
}

public struct TwoTowerTrainReport: Codable, Sendable, Equatable {
    public struct Epoch: Codable, Sendable, Equatable {
        /// Mean of w_i·CE_i over the epoch's examples, each taken before its batch's update.
        public var trainLoss: Double
        /// The same loss on the validation examples after the epoch (natural order, fixed random negatives).
        public var validationLoss: Double?
        /// Training plus validation time of the epoch.
        public var seconds: Double
    }
    public var epochs: [Epoch] = []
    /// Index into `epochs` of the returned weights: the lowest validation loss, or the last epoch without
    /// validation; −1 when no epoch ran (the initial weights are returned).
    public var bestEpoch = -1
    public var stoppedEarly = false
    public var examples = 0
    public var validationExamples = 0
    public var parameters = 0
    /// Wall time of the whole call.
    public var seconds = 0.0
    /// Training examples processed per second of training (validation excluded).
    public var examplesPerSecond = 0.0
    public init() {}
}

public enum TwoTowerTrainer {
    /// Trains a model of `spec` (initialized from `config.seed`) on `examples`; with `validation`, keeps the
    /// weights of the epoch with the lowest validation loss and stops after `config.patience` epochs without
    /// improvement. `progress(epoch, examplesDone, examplesTotal)` is called on the calling thread after every batch.
    public static func train<E: TwoTowerExamples, V: TwoTowerExamples>(
        _ spec: TwoTowerSpec, examples: E, validation: V?, config: TwoTowerTrainConfig,
        progress: ((_ epoch: Int, _ done: Int, _ total: Int) -> Void)? = nil
    ) -> (model: TwoTowerModel, report: TwoTowerTrainReport) {
        run(spec, examples: examples, validation: validation, config: config, progress: progress)
    }

    /// `validation: nil` written as a literal.
    public static func train<E: TwoTowerExamples>(
        _ spec: TwoTowerSpec, examples: E, validation: NoTwoTowerExamples?, config: TwoTowerTrainConfig,
        progress: ((_ epoch: Int, _ done: Int, _ total: Int) -> Void)? = nil
    ) -> (model: TwoTowerModel, report: TwoTowerTrainReport) {
        run(spec, examples: examples, validation: validation, config: config, progress: progress)
    }

    /// Without validation: every epoch runs and the last one's weights are returned.
    public static func train<E: TwoTowerExamples>(
        _ spec: TwoTowerSpec, examples: E, config: TwoTowerTrainConfig,
        progress: ((_ epoch: Int, _ done: Int, _ total: Int) -> Void)? = nil
    ) -> (model: TwoTowerModel, report: TwoTowerTrainReport) {
        run(spec, examples: examples, validation: NoTwoTowerExamples?.none, config: config, progress: progress)
    }

    static func run<E: TwoTowerExamples, V: TwoTowerExamples>(
        _ spec: TwoTowerSpec, examples: E, validation: V?, config: TwoTowerTrainConfig,
        progress: ((_ epoch: Int, _ done: Int, _ total: Int) -> Void)?
    ) -> (model: TwoTowerModel, report: TwoTowerTrainReport) {
        precondition(config.batchSize >= 1 && config.epochs >= 0 && config.randomNegatives >= 0,
                     "TwoTowerTrainConfig: batchSize \(config.batchSize), epochs \(config.epochs), randomNegatives \(config.randomNegatives)")
        precondition(config.temperature > 0 && config.temperature.isFinite, "TwoTowerTrainConfig: temperature \(config.temperature)")
        let clock = ContinuousClock(), started = clock.now
        var spec = spec
        spec.temperature = config.temperature
        var model = TwoTowerModel(spec, seed: config.seed)
        var report = TwoTowerTrainReport()
        let n = examples.count
        let validation = validation.flatMap { $0.count > 0 ? $0 : nil }
        report.examples = n; report.validationExamples = validation?.count ?? 0; report.parameters = spec.parameterCount
        let engine = TwoTowerEngine(spec, threads: effectiveThreads(config.threads), hardCorrection: config.hardNegativeCorrection)
        var optimizer = TwoTowerAdam(model, config: config)
        let trainSampler = TwoTowerSampler(examples, config: config)
        let validationSampler = validation.map { TwoTowerSampler($0, config: config) }
        var rng = SeededRandom(seed: StableHash.mix64(config.seed ^ 0x7477_6f74_6f77_6572))
        var order = Array(0..<n)
        var best = Double.infinity, bestParameters = model.parameters, sinceBest = 0
        var trainSeconds = 0.0, trained = 0
        var batch = TwoTowerBatch()
        for epoch in 0..<(n == 0 ? 0 : config.epochs) {
            let epochStart = clock.now
            // Fisher–Yates with the run's generator.
            for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(i + 1)) }
            var lossSum = 0.0
            var start = 0
            while start < n {
                let end = min(n, start + config.batchSize)
                trainSampler.build(&batch, rows: order[start..<end], rng: &rng)
                lossSum += model.parameters.withUnsafeBufferPointer { p in
                    engine.forwardBackward(batch, examples, base(p), gradients: true)
                }
                optimizer.step(&model.parameters, engine)
                engine.clearSparse()
                start = end
                progress?(epoch, end, n)
            }
            trained += n
            trainSeconds += seconds(clock.now - epochStart)
            var entry = TwoTowerTrainReport.Epoch(trainLoss: lossSum / Double(n), validationLoss: nil, seconds: 0)
            if let validation, let sampler = validationSampler {
                let v = evaluate(model, engine, validation, sampler, config: config)
                entry.validationLoss = v
                if v < best {
                    best = v; bestParameters = model.parameters; report.bestEpoch = epoch; sinceBest = 0
                } else {
                    sinceBest += 1
                }
            } else {
                report.bestEpoch = epoch
            }
            entry.seconds = seconds(clock.now - epochStart)
            report.epochs.append(entry)
            if validation != nil && config.patience > 0 && sinceBest >= config.patience && epoch + 1 < config.epochs {
                report.stoppedEarly = true
                break
            }
        }
        if validation != nil && report.bestEpoch >= 0 { model.parameters = bestParameters }
        report.seconds = seconds(clock.now - started)
        report.examplesPerSecond = trainSeconds > 0 ? Double(trained) / trainSeconds : 0
        return (model, report)
    }

    /// Mean of w_i·CE_i over `set` for `model`: batches of `config.batchSize` in natural order, random negatives
    /// from a generator seeded the same way every call (deterministic, comparable across epochs).
    public static func validationLoss<V: TwoTowerExamples>(_ model: TwoTowerModel, _ set: V, config: TwoTowerTrainConfig) -> Double {
        if set.count == 0 { return 0 }
        var spec = model.description
        spec.temperature = config.temperature
        let engine = TwoTowerEngine(spec, threads: effectiveThreads(config.threads), hardCorrection: config.hardNegativeCorrection)
        return evaluate(model, engine, set, TwoTowerSampler(set, config: config), config: config)
    }

    static func evaluate<V: TwoTowerExamples>(_ model: TwoTowerModel, _ engine: TwoTowerEngine, _ set: V,
                                              _ sampler: TwoTowerSampler<V>, config: TwoTowerTrainConfig) -> Double {
        var rng = SeededRandom(seed: StableHash.mix64(config.seed ^ 0x7661_6c69_6461_7465))
        var batch = TwoTowerBatch()
        var sum = 0.0
        var start = 0
        let n = set.count
        while start < n {
            let end = min(n, start + config.batchSize)
            sampler.build(&batch, rows: start..<end, rng: &rng)
            sum += model.parameters.withUnsafeBufferPointer { engine.forwardBackward(batch, set, base($0), gradients: false) }
            start = end
        }
        return sum / Double(n)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

// MARK: - Batches

/// One batch: its rows, the distinct videos it needs embedded (slots), the candidate columns and hard negatives
/// as slots, and each column's log Q.
struct TwoTowerBatch: Sendable {
    var examples: [Int] = []
    var weights: [Float] = []
    /// Slot → video: every distinct video of the batch, in first-use order (positives, random, hard).
    var videos: [Int32] = []
    /// Row → its positive's slot (= columns[row]).
    var positive: [Int32] = []
    /// Column → slot: the B in-batch positives, then the R random videos.
    var columns: [Int32] = []
    var logQ: [Float] = []
    /// Row i's hard negatives: hard[hardOffsets[i]..<hardOffsets[i+1]] (slots).
    var hardOffsets: [Int] = [0]
    var hard: [Int32] = []

    var rows: Int { examples.count }
}

/// Builds batches over one example set: positives' frequencies (for log Q) and the video → slot map.
final class TwoTowerSampler<E: TwoTowerExamples> {
    let source: E
    let counts: [Int32]
    let total: Int
    let randomNegatives: Int
    let logQ: Bool
    private var slotOf: [Int32]
    private var scratch: [Int32] = []

    init(_ source: E, config: TwoTowerTrainConfig) {
        self.source = source
        let v = source.videoCount
        var counts = [Int32](repeating: 0, count: v)
        for i in 0..<source.count {
            let video = source.video(i)
            precondition(video >= 0 && video < v, "TwoTowerExamples: example \(i) has video \(video) outside 0..<\(v)")
            counts[video] += 1
        }
        self.counts = counts
        total = source.count
        randomNegatives = v > 0 ? config.randomNegatives : 0
        logQ = config.logQCorrection
        slotOf = [Int32](repeating: -1, count: v)
    }

    /// The batch of `rows` (example numbers) with R fresh random videos from `rng`.
    func build<C: Collection>(_ batch: inout TwoTowerBatch, rows: C, rng: inout SeededRandom) where C.Element == Int {
        var random: [Int] = []
        random.reserveCapacity(randomNegatives)
        for _ in 0..<randomNegatives { random.append(rng.nextInt(source.videoCount)) }
        build(&batch, rows: rows, random: random)
    }

    /// The batch of `rows` with the given random videos.
    func build<C: Collection>(_ batch: inout TwoTowerBatch, rows: C, random: [Int]) where C.Element == Int {
        let v = source.videoCount
        batch.examples.removeAll(keepingCapacity: true); batch.examples.append(contentsOf: rows)
        batch.weights.removeAll(keepingCapacity: true)
        batch.videos.removeAll(keepingCapacity: true); batch.positive.removeAll(keepingCapacity: true)
        batch.columns.removeAll(keepingCapacity: true); batch.logQ.removeAll(keepingCapacity: true)
        batch.hardOffsets.removeAll(keepingCapacity: true); batch.hardOffsets.append(0)
        batch.hard.removeAll(keepingCapacity: true)
        func slot(_ video: Int) -> Int32 {
            precondition(video >= 0 && video < v, "TwoTowerExamples: video \(video) outside 0..<\(v)")
            if slotOf[video] < 0 { slotOf[video] = Int32(batch.videos.count); batch.videos.append(Int32(video)) }
            return slotOf[video]
        }
        for e in batch.examples {
            let s = slot(source.video(e))
            batch.positive.append(s); batch.columns.append(s)
            batch.weights.append(source.weight(e))
        }
        for r in random { batch.columns.append(slot(r)) }
        for e in batch.examples {
            scratch.removeAll(keepingCapacity: true)
            source.hardNegatives(e, into: &scratch)
            for h in scratch { batch.hard.append(slot(Int(h))) }
            batch.hardOffsets.append(batch.hard.count)
        }
        // log Q_c = log(B·p_c + R/V), p_c = count_c / N.
        let b = Double(batch.rows), uniform = Double(random.count) / Double(max(v, 1)), n = Double(max(total, 1))
        for c in batch.columns {
            let video = Int(batch.videos[Int(c)])
            batch.logQ.append(logQ ? Float(Foundation.log(b * Double(counts[video]) / n + uniform)) : 0)
        }
        for video in batch.videos { slotOf[Int(video)] = -1 }
    }
}

// MARK: - Forward, loss, backward of a batch

/// A growable raw buffer (contents are scratch: not kept when it grows).
final class TTBuffer<T>: @unchecked Sendable {
    private(set) var p: UnsafeMutablePointer<T>
    private(set) var capacity = 0
    init() { p = .allocate(capacity: 1) }
    deinit { p.deallocate() }
    func ensure(_ n: Int) -> UnsafeMutablePointer<T> {
        if n > capacity {
            p.deallocate()
            capacity = max(n, capacity * 3 / 2)
            p = .allocate(capacity: capacity)
        }
        return p
    }
}

/// One fixed chunk of rows of one tower within a batch: its input rows, activations and dense gradient. Used by
/// one worker at a time (each chunk is one task of a parallel loop).
final class TwoTowerChunk: @unchecked Sendable {
    var rows: FeatureRows
    let scratch: TowerScratch
    let grad: UnsafeMutablePointer<Float>
    let gradCount: Int
    var count = 0
    /// After backward: one entry per pooled (field, token, weight) of the chunk's rows, in order.
    var touches: [TouchEntry] = []

    init(_ layout: TowerLayout, rows capacity: Int) {
        rows = FeatureRows(fields: layout.spec.fields.count)
        scratch = TowerScratch(layout, rows: capacity)
        gradCount = layout.dense.count
        grad = .allocate(capacity: max(gradCount, 1))
        grad.initialize(repeating: 0, count: max(gradCount, 1))
    }
    deinit { grad.deallocate() }
}

/// One pooled entry's contribution to its embedding row (parameter offset, width): w and the ∂L/∂x_f slice
/// (in its chunk's scratch); `slot` once the batch's touched rows are numbered.
struct TouchEntry: @unchecked Sendable {
    var slot: Int32
    let row: Int32
    let dim: Int32
    let weight: Float
    let offset: Int
    let gx: UnsafePointer<Float>
}

/// The embedding rows one batch touched in one tower and their gradients, in first-touch order (rows of the
/// batch in order, entries in order: independent of threads).
struct TouchedRows {
    /// Per embedding row of the tower (Σ buckets): its slot, −1 when untouched.
    var slotOf: [Int32]
    var rows: [Int32] = []
    /// Parameter offset, width and gradient start of each touched row.
    var offset: [Int] = []
    var dim: [Int] = []
    var start: [Int] = []
    var grad: [Float] = []

    init(rows: Int) { slotOf = [Int32](repeating: -1, count: rows) }

    mutating func clear() {
        for r in rows { slotOf[Int(r)] = -1 }
        rows.removeAll(keepingCapacity: true); offset.removeAll(keepingCapacity: true)
        dim.removeAll(keepingCapacity: true); start.removeAll(keepingCapacity: true)
        grad.removeAll(keepingCapacity: true)
    }
}

/// Scratch of the sampled-softmax loss (sized per batch).
final class TwoTowerLossScratch: @unchecked Sendable {
    let ec = TTBuffer<Float>(), ect = TTBuffer<Float>(), s = TTBuffer<Float>(), gec = TTBuffer<Float>(), hardLogit = TTBuffer<Float>()
    let rowLoss = TTBuffer<Double>()
}

enum TwoTowerLoss {
    /// Chunk of rows (and of columns) per task: fixed, so the result is the same for any thread count.
    static let chunk = 32

    /// Σ_i w_i CE_i of the batch (module top) from the user embeddings `eu` (B × d) and the slots' video embeddings
    /// `ev` (slots × d). With `geu`/`gev` given, writes ∂L/∂e_u (B × d) and ∂L/∂e_v (slots × d) of
    /// L = (1/B) Σ_i w_i CE_i. Rows in fixed chunks in parallel; every sum runs in a fixed order.
    static func run(eu: UnsafePointer<Float>, ev: UnsafePointer<Float>, d: Int, batch: TwoTowerBatch, temperature: Float,
                    hardCorrection: Float, geu: UnsafeMutablePointer<Float>?, gev: UnsafeMutablePointer<Float>?,
                    scratch ws: TwoTowerLossScratch, threads: Int) -> Double {
        let b = batch.rows, c = batch.columns.count, nh = batch.hard.count, slots = batch.videos.count
        if b == 0 { return 0 }
        let gradients = geu != nil && gev != nil
        let ec = TTMutable(ws.ec.ensure(c * d)), ect = TTMutable(ws.ect.ensure(c * d)), s = TTMutable(ws.s.ensure(b * c))
        let hl = TTMutable(ws.hardLogit.ensure(max(nh, 1))), rl = TTMutable(ws.rowLoss.ensure(b))
        // EC[j] = EV[slot of column j]: the candidate rows, contiguous; ECᵀ (d × C) for the logits.
        batch.columns.withUnsafeBufferPointer { cols in
            for j in 0..<c {
                let src = ev + Int(cols[j]) * d
                (ec.p + j * d).update(from: src, count: d)
                for k in 0..<d { ect.p[k * c + j] = src[k] }
            }
        }
        let invTau = 1 / temperature, gScale = 1 / Float(b)
        let EU = SendablePointer(eu), EV = SendablePointer(ev), GEU = geu.map { TTMutable($0) }
        let chunks = (b + chunk - 1) / chunk
        parallelFor(chunks, threads: threads, chunk: 1) { _, range in
            batch.columns.withUnsafeBufferPointer { cols in
                batch.logQ.withUnsafeBufferPointer { logQ in
                    batch.hard.withUnsafeBufferPointer { hard in
                        for t in range {
                            let r0 = t * chunk, r1 = min(b, r0 + chunk)
                            // S[i][j] = e_u_i · e_c_j
                            TwoTowerKernels.mm(EU.p + r0 * d, ai: d, ak: 1, UnsafePointer(ect.p), ldb: c, s.p + r0 * c, ldc: c,
                                               m: r1 - r0, n: c, kCount: d, accumulate: false)
                            for i in r0..<r1 {
                                rl.p[i] = row(i, s.p + i * c, c, cols: base(cols), logQ: base(logQ), hard: base(hard),
                                              hardRange: batch.hardOffsets[i]..<batch.hardOffsets[i + 1], hl: hl.p,
                                              eu: EU.p + i * d, ev: EV.p, d: d, positive: batch.positive[i],
                                              weight: batch.weights[i], invTau: invTau, hardCorrection: hardCorrection,
                                              coefficient: gradients ? batch.weights[i] * invTau * gScale : nil)
                            }
                            guard let g = GEU else { continue }
                            // ∂L/∂e_u_i = Σ_j D[i][j] e_c_j + Σ_(h ∈ H_i) D_ih e_h
                            TwoTowerKernels.mm(UnsafePointer(s.p + r0 * c), ai: c, ak: 1, UnsafePointer(ec.p), ldb: d,
                                               g.p + r0 * d, ldc: d, m: r1 - r0, n: d, kCount: c, accumulate: false)
                            for i in r0..<r1 {
                                for h in batch.hardOffsets[i]..<batch.hardOffsets[i + 1] {
                                    TwoTowerKernels.axpy(hl.p[h], EV.p + Int(hard[h]) * d, g.p + i * d, d)
                                }
                            }
                        }
                    }
                }
            }
        }
        if let gev, gradients {
            // ∂L/∂e_c_j = Σ_i D[i][j] e_u_i, columns in fixed chunks (each column summed over rows in order).
            let gec = TTMutable(ws.gec.ensure(c * d))
            parallelFor((c + chunk - 1) / chunk, threads: threads, chunk: 1) { _, range in
                for t in range {
                    let j0 = t * chunk, j1 = min(c, j0 + chunk)
                    TwoTowerKernels.mm(UnsafePointer(s.p + j0), ai: 1, ak: c, EU.p, ldb: d, gec.p + j0 * d, ldc: d,
                                       m: j1 - j0, n: d, kCount: b, accumulate: false)
                }
            }
            // Slots: columns in order, then hard negatives in row order.
            gev.update(repeating: 0, count: slots * d)
            for j in 0..<c { TwoTowerKernels.addTo(gev + Int(batch.columns[j]) * d, UnsafePointer(gec.p + j * d), d) }
            for i in 0..<b {
                for h in batch.hardOffsets[i]..<batch.hardOffsets[i + 1] {
                    TwoTowerKernels.axpy(hl.p[h], eu + i * d, gev + Int(batch.hard[h]) * d, d)
                }
            }
        }
        var sum = 0.0
        for i in 0..<b { sum += rl.p[i] }
        return sum
    }

    /// Row i: on entry srow holds s_ij = e_u_i · e_c_j; returns w_i CE_i. With `coefficient` = w_i / (B τ), leaves
    /// ∂L/∂s_ij in srow and ∂L/∂s_ih in hl[h] for its hard negatives:
    ///     logit_j = s_ij / τ − log Q_j  (−∞ for an accidental hit),   logit_h = e_u_i·e_h / τ − κ  (−∞ likewise)
    ///     m = max logit,  Z = Σ exp(logit − m),  CE_i = m + log Z − logit_i
    ///     ∂L/∂s_ij = coefficient · (exp(logit_j − m) / Z − [j = i])
    @inline(__always)
    static func row(_ i: Int, _ srow: UnsafeMutablePointer<Float>, _ c: Int, cols: UnsafePointer<Int32>, logQ: UnsafePointer<Float>,
                    hard: UnsafePointer<Int32>, hardRange: Range<Int>, hl: UnsafeMutablePointer<Float>,
                    eu: UnsafePointer<Float>, ev: UnsafePointer<Float>, d: Int, positive: Int32, weight: Float,
                    invTau: Float, hardCorrection: Float, coefficient: Float?) -> Double {
        var m = -Float.infinity
        for j in 0..<c {
            let l = (j != i && cols[j] == positive) ? -Float.infinity : srow[j] * invTau - logQ[j]
            srow[j] = l
            m = max(m, l)
        }
        for h in hardRange {
            let slot = hard[h]
            let l = slot == positive ? -Float.infinity : TwoTowerKernels.dot(eu, ev + Int(slot) * d, d) * invTau - hardCorrection
            hl[h] = l
            m = max(m, l)
        }
        let own = srow[i]
        let mv = TwoTowerKernels.V8(repeating: m)
        var zv = TwoTowerKernels.V8()
        var j = 0
        while j + 8 <= c {
            let x = TwoTowerKernels.exp(TwoTowerKernels.load(srow + j) - mv)
            TwoTowerKernels.store(x, srow + j)
            zv += x
            j += 8
        }
        var z = zv.sum()
        while j < c { let x = TwoTowerKernels.exp(.init(repeating: srow[j] - m))[0]; srow[j] = x; z += x; j += 1 }
        for h in hardRange { let x = TwoTowerKernels.exp(.init(repeating: hl[h] - m))[0]; hl[h] = x; z += x }
        let ce = Double(m) + Foundation.log(Double(z)) - Double(own)
        if let coefficient {
            let scale = coefficient / z
            for j in 0..<c { srow[j] *= scale }
            srow[i] -= coefficient
            for h in hardRange { hl[h] *= scale }
        }
        return Double(weight) * ce
    }
}

/// Forward and backward of whole batches through both towers and the loss, with every buffer kept across batches.
final class TwoTowerEngine {
    let spec: TwoTowerSpec
    let user: TowerLayout, video: TowerLayout
    let userFields: [PoolField], videoFields: [PoolField]
    let d: Int
    let threads: Int
    /// κ of the module top.
    let hardCorrection: Float
    /// Rows per task (fixed: the result does not depend on the thread count).
    static let chunkRows = 32
    private(set) var userChunks: [TwoTowerChunk] = [], videoChunks: [TwoTowerChunk] = []
    let eu = TTBuffer<Float>(), ev = TTBuffer<Float>(), geu = TTBuffer<Float>(), gev = TTBuffer<Float>()
    let lossScratch = TwoTowerLossScratch()
    /// After a backward pass: ∂L/∂(dense weights) of each tower (W1, b1, W2, b2 as laid out) and the touched rows.
    var userDense: [Float], videoDense: [Float]
    var userTouched: TouchedRows, videoTouched: TouchedRows

    init(_ spec: TwoTowerSpec, threads: Int, hardCorrection: Float = 0) {
        self.spec = spec
        self.hardCorrection = hardCorrection
        user = TowerLayout(spec.user, at: 0); video = TowerLayout(spec.video, at: spec.user.parameterCount)
        userFields = user.poolFields; videoFields = video.poolFields
        d = spec.user.output
        self.threads = max(1, threads)
        userDense = [Float](repeating: 0, count: user.dense.count)
        videoDense = [Float](repeating: 0, count: video.dense.count)
        userTouched = TouchedRows(rows: user.totalRows); videoTouched = TouchedRows(rows: video.totalRows)
    }

    /// Σ_i w_i CE_i of `batch` under the parameters `p`; with `gradients`, also ∂L/∂θ of L = (1/B) Σ_i w_i CE_i
    /// into userDense/videoDense and userTouched/videoTouched (call `clearSparse` before the next batch).
    func forwardBackward<E: TwoTowerExamples>(_ batch: TwoTowerBatch, _ source: E, _ p: UnsafePointer<Float>,
                                              gradients: Bool) -> Double {
        let b = batch.rows, slots = batch.videos.count, d = self.d, cr = Self.chunkRows
        if b == 0 { return 0 }
        let uc = (b + cr - 1) / cr, vc = (slots + cr - 1) / cr
        while userChunks.count < uc { userChunks.append(TwoTowerChunk(user, rows: cr)) }
        while videoChunks.count < vc { videoChunks.append(TwoTowerChunk(video, rows: cr)) }
        let EU = TTMutable(eu.ensure(b * d)), EV = TTMutable(ev.ensure(slots * d)), P = SendablePointer(p)
        let userChunks = self.userChunks, videoChunks = self.videoChunks
        let ul = user, vl = video, uf = userFields, vf = videoFields

        // Both towers forward: user chunks then video chunks, one task each.
        parallelFor(uc + vc, threads: threads, chunk: 1) { _, range in
            for t in range {
                let isUser = t < uc
                let chunk = isUser ? userChunks[t] : videoChunks[t - uc]
                let r0 = (isUser ? t : t - uc) * cr, r1 = min(isUser ? b : slots, r0 + cr)
                chunk.rows.removeAll()
                for r in r0..<r1 {
                    if isUser { source.userRow(batch.examples[r], into: &chunk.rows) } else { source.videoRow(Int(batch.videos[r]), into: &chunk.rows) }
                    precondition(chunk.rows.count == r - r0 + 1,
                                 "TwoTowerExamples.\(isUser ? "userRow" : "videoRow") must append exactly one row")
                }
                chunk.count = r1 - r0
                TwoTowerKernels.forward(isUser ? ul : vl, isUser ? uf : vf, P.p, chunk.rows, 0..<(r1 - r0), chunk.scratch,
                                        e: (isUser ? EU.p : EV.p) + r0 * d)
            }
        }

        let GEU = gradients ? geu.ensure(b * d) : nil, GEV = gradients ? gev.ensure(max(slots, 1) * d) : nil
        let loss = TwoTowerLoss.run(eu: UnsafePointer(EU.p), ev: UnsafePointer(EV.p), d: d, batch: batch,
                                    temperature: spec.temperature, hardCorrection: hardCorrection, geu: GEU, gev: GEV,
                                    scratch: lossScratch, threads: threads)
        guard gradients, let GEU, let GEV else { return loss }

        // Both towers backward, each chunk into its own dense gradient.
        let gu = TTMutable(GEU), gv = TTMutable(GEV)
        parallelFor(uc + vc, threads: threads, chunk: 1) { _, range in
            for t in range {
                let isUser = t < uc
                let chunk = isUser ? userChunks[t] : videoChunks[t - uc]
                let r0 = (isUser ? t : t - uc) * cr
                chunk.grad.update(repeating: 0, count: chunk.gradCount)
                TwoTowerKernels.backward(isUser ? ul : vl, P.p, m: chunk.count, chunk.scratch,
                                         e: UnsafePointer((isUser ? EU.p : EV.p) + r0 * d),
                                         ge: UnsafePointer((isUser ? gu.p : gv.p) + r0 * d), grad: chunk.grad)
                // The embedding rows' contributions: w · ∂L/∂x_f per entry (TwoTowerKernels.poolBackward).
                chunk.touches.removeAll(keepingCapacity: true)
                TwoTowerKernels.poolBackward(isUser ? uf : vf, chunk.rows, 0..<chunk.count, UnsafePointer(chunk.scratch.gx),
                                             inDim: (isUser ? ul : vl).inDim) { row, offset, w, g, dim in
                    chunk.touches.append(TouchEntry(slot: -1, row: Int32(row), dim: Int32(dim), weight: w, offset: offset, gx: g))
                }
            }
        }
        reduce(Array(userChunks[0..<uc]), into: &userDense)
        reduce(Array(videoChunks[0..<vc]), into: &videoDense)
        gatherTouched(Array(userChunks[0..<uc]), &userTouched)
        gatherTouched(Array(videoChunks[0..<vc]), &videoTouched)
        return loss
    }

    /// dense[k] = Σ_chunks chunk.grad[k], chunks in order (parallel over blocks of k).
    func reduce(_ chunks: [TwoTowerChunk], into dense: inout [Float]) {
        let n = dense.count
        dense.withUnsafeMutableBufferPointer { out in
            let o = TTMutable(out.baseAddress!)
            parallelFor(n, threads: threads, chunk: 4096) { _, range in
                for k in range {
                    var s: Float = 0
                    for c in chunks { s += c.grad[k] }
                    o.p[k] = s
                }
            }
        }
    }

    /// The touched embedding rows' gradients from the chunks' entries (w, ∂L/∂x_f): rows take slots in first-touch
    /// order (chunks, rows and entries in order; a tight serial pass), then every entry adds w · ∂L/∂x_f into its
    /// row's slot. The adds run in parallel over fixed ranges of slots, each worker reading every entry and taking
    /// those of its slots: a slot's adds always run in entry order, whatever the thread count.
    func gatherTouched(_ chunks: [TwoTowerChunk], _ t: inout TouchedRows) {
        var size = 0
        t.slotOf.withUnsafeMutableBufferPointer { slotOf in
            for c in chunks {
                c.touches.withUnsafeMutableBufferPointer { tb in
                    for k in tb.indices {
                        let row = Int(tb[k].row)
                        var slot = slotOf[row]
                        if slot < 0 {
                            slot = Int32(t.rows.count)
                            slotOf[row] = slot
                            t.rows.append(Int32(row)); t.offset.append(tb[k].offset); t.dim.append(Int(tb[k].dim)); t.start.append(size)
                            size += Int(tb[k].dim)
                        }
                        tb[k].slot = slot
                    }
                }
            }
        }
        t.grad.append(contentsOf: repeatElement(0, count: size))
        let slots = t.rows.count, workers = max(1, min(threads, slots / 256))
        t.grad.withUnsafeMutableBufferPointer { gb in
            let g = TTMutable(gb.baseAddress ?? UnsafeMutablePointer(bitPattern: 16)!)
            t.start.withUnsafeBufferPointer { sb in
                let st = SendablePointer(base(sb))
                parallelFor(workers, threads: workers, chunk: 1) { _, range in
                    for w in range {
                        let lo = Int32(w * slots / workers), hi = Int32((w + 1) * slots / workers)
                        for c in chunks {
                            c.touches.withUnsafeBufferPointer { tb in
                                for e in tb where e.slot >= lo && e.slot < hi {
                                    TwoTowerKernels.axpy(e.weight, e.gx, g.p + st.p[Int(e.slot)], Int(e.dim))
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func clearSparse() { userTouched.clear(); videoTouched.clear() }

    /// The whole gradient as one dense vector in parameter order (tests; small models only).
    func fullGradient() -> [Float] {
        var g = [Float](repeating: 0, count: spec.parameterCount)
        for (k, v) in userDense.enumerated() { g[user.dense.lowerBound + k] = v }
        for (k, v) in videoDense.enumerated() { g[video.dense.lowerBound + k] = v }
        for t in [userTouched, videoTouched] {
            for s in t.rows.indices { for j in 0..<t.dim[s] { g[t.offset[s] + j] += t.grad[t.start[s] + j] } }
        }
        return g
    }
}

// MARK: - Adam

/// Adam (Kingma & Ba 2015) with bias correction, step t counted in batches:
///     m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²,   θ ← θ − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε)
/// Dense weights every step; an embedding row only in the steps whose batch touched it ("lazy" Adam: its moments
/// and weights stay as they were otherwise, with the global t in the corrections). L2 adds λθ to g (W1, W2 and
/// touched embedding rows).
struct TwoTowerAdam {
    var m: [Float], v: [Float]
    var t = 0
    let config: TwoTowerTrainConfig
    let user: TowerLayout, video: TowerLayout

    init(_ model: TwoTowerModel, config: TwoTowerTrainConfig) {
        m = [Float](repeating: 0, count: model.parameters.count); v = m
        self.config = config
        user = model.userLayout; video = model.videoLayout
    }

    mutating func step(_ theta: inout [Float], _ engine: TwoTowerEngine) {
        t += 1
        let h = TwoTowerAdam.Hyper(
            b1: config.beta1, b2: config.beta2, lr: config.learningRate, eps: config.epsilon, l2: config.l2,
            c1: Float(1 / (1 - Foundation.pow(Double(config.beta1), Double(t)))),
            c2: Float(1 / (1 - Foundation.pow(Double(config.beta2), Double(t)))))
        let threads = engine.threads
        theta.withUnsafeMutableBufferPointer { tb in
            m.withUnsafeMutableBufferPointer { mb in
                v.withUnsafeMutableBufferPointer { vb in
                    let th = TTMutable(tb.baseAddress!), mp = TTMutable(mb.baseAddress!), vp = TTMutable(vb.baseAddress!)
                    for (layout, dense) in [(user, engine.userDense), (video, engine.videoDense)] {
                        dense.withUnsafeBufferPointer { gb in
                            let g = base(gb)
                            // W1 and W2 decay, b1 and b2 do not.
                            for (range, decay) in [(layout.w1..<layout.b1, true), (layout.b1..<layout.w2, false),
                                                   (layout.w2..<layout.b2, true), (layout.b2..<layout.dense.upperBound, false)] {
                                let k = range.lowerBound
                                TwoTowerAdam.update(th.p + k, mp.p + k, vp.p + k, g + (k - layout.w1), range.count, h, decay: decay)
                            }
                        }
                    }
                    for touched in [engine.userTouched, engine.videoTouched] {
                        touched.grad.withUnsafeBufferPointer { gb in
                            let g = SendablePointer(base(gb))
                            touched.offset.withUnsafeBufferPointer { ob in
                                touched.start.withUnsafeBufferPointer { sb in
                                    touched.dim.withUnsafeBufferPointer { db in
                                        let o = SendablePointer(base(ob)), s = SendablePointer(base(sb)), dm = SendablePointer(base(db))
                                        parallelFor(touched.rows.count, threads: threads, chunk: 512) { _, range in
                                            // Rows are scattered over big tables: read every cache line of a group of
                                            // rows first (independent loads, many misses in flight), then update them.
                                            var r = range.lowerBound
                                            while r < range.upperBound {
                                                let end = min(range.upperBound, r + 8)
                                                var touch: Float = 0
                                                for q in r..<end {
                                                    let off = o.p[q], n = dm.p[q]
                                                    var j = 0
                                                    while j < n { touch += th.p[off + j] + mp.p[off + j] + vp.p[off + j]; j += 16 }
                                                    touch += th.p[off + n - 1] + mp.p[off + n - 1] + vp.p[off + n - 1]
                                                }
                                                TwoTowerKernels.keep(touch)
                                                for q in r..<end {
                                                    let off = o.p[q]
                                                    TwoTowerAdam.update(th.p + off, mp.p + off, vp.p + off, g.p + s.p[q], dm.p[q], h, decay: true)
                                                }
                                                r = end
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    struct Hyper: Sendable {
        let b1, b2, lr, eps, l2: Float
        /// 1 / (1 − β1ᵗ), 1 / (1 − β2ᵗ)
        let c1, c2: Float
    }

    /// n consecutive weights θ with moments m, v and gradient g (λθ added when `decay`):
    ///     m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²,   θ ← θ − lr (m c1) / (√(v c2) + ε)
    @inline(__always)
    static func update(_ th: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                       _ g: UnsafePointer<Float>, _ n: Int, _ h: Hyper, decay: Bool) {
        typealias V8 = SIMD8<Float>
        let l2 = decay ? h.l2 : 0
        let b1 = V8(repeating: h.b1), a1 = V8(repeating: 1 - h.b1), b2 = V8(repeating: h.b2), a2 = V8(repeating: 1 - h.b2)
        let lr = V8(repeating: h.lr), eps = V8(repeating: h.eps), c1 = V8(repeating: h.c1), c2 = V8(repeating: h.c2)
        let l2v = V8(repeating: l2)
        var i = 0
        while i + 8 <= n {
            let t = TwoTowerKernels.load(th + i)
            let gi = l2v * t + TwoTowerKernels.load(g + i)
            let mi = b1 * TwoTowerKernels.load(m + i) + a1 * gi
            let vi = b2 * TwoTowerKernels.load(v + i) + a2 * (gi * gi)
            TwoTowerKernels.store(mi, m + i); TwoTowerKernels.store(vi, v + i)
            TwoTowerKernels.store(t - lr * (mi * c1) / ((vi * c2).squareRoot() + eps), th + i)
            i += 8
        }
        while i < n {
            let gi = l2 * th[i] + g[i]
            let mi = h.b1 * m[i] + (1 - h.b1) * gi, vi = h.b2 * v[i] + (1 - h.b2) * (gi * gi)
            m[i] = mi; v[i] = vi
            th[i] = th[i] - h.lr * (mi * h.c1) / ((vi * h.c2).squareRoot() + h.eps)
            i += 1
        }
    }
}

