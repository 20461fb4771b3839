import Synchronization

/// Progress of a long stage on stderr: `stage: done/total (pct) rate/s ETA`, at most every `interval` seconds.
/// Thread-safe: workers call `add` concurrently.
public final class Progress: Sendable {
    public let stage: String
    public let total: Int
    public let unit: String
    private let done = Atomic<Int>(0)
    private let lastPrint: Mutex<Double>
    private let start: Double
    private let interval: Double
    private let quiet: Bool

    public init(_ stage: String, total: Int, unit: String = "", interval: Double = 2, quiet: Bool = false) {
        self.stage = stage; self.total = total; self.unit = unit; self.interval = interval; self.quiet = quiet
        start = TimeFormat.monotonic()
        lastPrint = Mutex(start)
    }

    public func add(_ n: Int) {
        let now = done.add(n, ordering: .relaxed).newValue
        if quiet || (total > 0 && now >= total) { return }   // the closing line comes from finish()
        let t = TimeFormat.monotonic()
        let due = lastPrint.withLock { last -> Bool in
            if t - last < interval { return false }
            last = t; return true
        }
        if due { Log.info(line(done: now, at: t)) }
    }

    public var count: Int { done.load(ordering: .relaxed) }
    public var elapsed: Double { TimeFormat.monotonic() - start }

    /// Prints the closing line of the stage (with `note` after it: why it ended short of its total, say) and
    /// returns its seconds.
    @discardableResult
    public func finish(note: String = "") -> Double {
        let t = TimeFormat.monotonic()
        if !quiet { Log.info(line(done: count, at: t, final: true) + (note.isEmpty ? "" : "; " + note)) }
        return t - start
    }

    private func line(done: Int, at t: Double, final: Bool = false) -> String {
        let secs = max(t - start, 1e-9)
        let rate = Double(done) / secs
        var s = "\(stage): \(done)"
        if total > 0 { s += "/\(total) (\(Int(Double(done) * 100 / Double(total)))%)" }
        s += unit.isEmpty ? "" : " \(unit)"
        s += ", \(Format.count(rate))/s"
        if final { s += ", \(Format.seconds(secs))" }
        else if total > 0 && rate > 0 { s += ", ETA \(Format.seconds(Double(total - done) / rate))" }
        return s
    }
}

/// Human-readable numbers for logs and reports.
public enum Format {
    public static func count(_ v: Double) -> String {
        if v >= 1e9 { return fixed(v / 1e9, 2) + "G" }
        if v >= 1e6 { return fixed(v / 1e6, 2) + "M" }
        if v >= 1e4 { return fixed(v / 1e3, 1) + "k" }
        return fixed(v, v < 10 ? 2 : 0)
    }
    public static func seconds(_ s: Double) -> String {
        if s < 1 { return fixed(s * 1000, 1) + " ms" }
        if s < 120 { return fixed(s, 2) + " s" }
        return "\(Int(s) / 60) min \(Int(s) % 60) s"
    }
    public static func bytes(_ b: Int) -> String {
        let v = Double(b)
        if b >= 1 << 30 { return fixed(v / Double(1 << 30), 2) + " GiB" }
        if b >= 1 << 20 { return fixed(v / Double(1 << 20), 1) + " MiB" }
        if b >= 1 << 10 { return fixed(v / Double(1 << 10), 1) + " KiB" }
        return "\(b) B"
    }
    /// Fixed-point without Foundation's String(format:).
    public static func fixed(_ v: Double, _ digits: Int) -> String {
        if !v.isFinite { return "\(v)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (abs(v) * scale).rounded()
        let whole = Int(r / scale)
        var s = (v < 0 && r != 0 ? "-" : "") + "\(whole)"
        if digits > 0 {
            var frac = "\(Int(r) - whole * Int(scale))"
            while frac.count < digits { frac = "0" + frac }
            s += "." + frac
        }
        return s
    }
}
