import Glibc

/// Times are Unix seconds (Int64) everywhere inside Homefeed.
public enum TimeFormat {
    /// Parses integer Unix seconds or ISO 8601 UTC (`2024-11-22T18:26:40Z`, optional fraction, `Z` or `+00:00`,
    /// a space instead of `T`, date only). Byte-level; returns nil when malformed.
    @inlinable
    public static func parse(_ b: UnsafeRawBufferPointer) -> Int64? {
        let n = b.count
        if n == 0 { return nil }
        // Integer seconds (optionally negative).
        if n < 5 || b[4] != UInt8(ascii: "-") {
            var i = 0, neg = false
            if b[0] == UInt8(ascii: "-") { neg = true; i = 1 }
            if i >= n || n - i > 18 { return nil }
            var v: Int64 = 0
            while i < n {
                let d = b[i] &- 48
                if d > 9 { return nil }
                v = v * 10 + Int64(d); i += 1
            }
            return neg ? -v : v
        }
        @inline(__always) func digits(_ at: Int, _ count: Int) -> Int? {
            if at + count > n { return nil }
            var v = 0
            for k in at..<(at + count) {
                let d = b[k] &- 48
                if d > 9 { return nil }
                v = v * 10 + Int(d)
            }
            return v
        }
        guard let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2),
              b[7] == UInt8(ascii: "-"), (1...12).contains(month), (1...31).contains(day) else { return nil }
        var hour = 0, minute = 0, second = 0
        var i = 10
        if n > 10 {
            guard b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: " "),
                  let h = digits(11, 2), n > 13, b[13] == UInt8(ascii: ":"), let m = digits(14, 2) else { return nil }
            hour = h; minute = m; i = 16
            if i < n && b[i] == UInt8(ascii: ":") {
                guard let s = digits(17, 2) else { return nil }
                second = s; i = 19
            }
            if i < n && b[i] == UInt8(ascii: ".") {
                i += 1
                while i < n, b[i] &- 48 <= 9 { i += 1 }
            }
            if i < n {
                if b[i] == UInt8(ascii: "Z") { i += 1 }
                else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                    guard let oh = digits(i + 1, 2) else { return nil }
                    var om = 0
                    var j = i + 3
                    if j < n && b[j] == UInt8(ascii: ":") { j += 1 }
                    if let mm = digits(j, 2) { om = mm; j += 2 }
                    let off = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
                    second -= off
                    i = j
                }
            }
            if i != n || hour > 23 || minute > 59 || second > 60 + 14 * 3600 { return nil }
        }
        return Int64(daysFromCivil(year, month, day)) * 86400 + Int64(hour * 3600 + minute * 60 + second)
    }

    public static func parse(_ s: String) -> Int64? {
        var s = s
        return s.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    @inlinable
    public static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// (year, month, day) of days since 1970-01-01.
    public static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// `2024-11-22T18:26:40Z`.
    public static func iso8601(_ t: Int64) -> String {
        let days = Int(t >= 0 ? t / 86400 : (t - 86399) / 86400)
        let secs = Int(t - Int64(days) * 86400)
        let (y, m, d) = civilFromDays(days)
        func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(p2(m))-\(p2(d))T\(p2(secs / 3600)):\(p2(secs / 60 % 60)):\(p2(secs % 60))Z"
    }

    /// Compact form for version names: `20241122T182640Z`.
    public static func compact(_ t: Int64) -> String {
        String(iso8601(t).filter { $0 != "-" && $0 != ":" })
    }

    /// Wall clock now, Unix seconds.
    public static func now() -> Int64 { Int64(nowSeconds()) }

    /// Wall clock now with sub-second precision.
    public static func nowSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Monotonic seconds, for durations and rates.
    public static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
