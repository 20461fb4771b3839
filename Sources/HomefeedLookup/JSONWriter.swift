import HomefeedStore

/// Writes a JSON response into one buffer sized up front, with raw stores and memcpy: building a 20-item list
/// through `Array.append` cost ~90 instructions per call plus exclusivity checks (measured with callgrind),
/// more than the RocksDB lookup itself.
struct JSONWriter {
    private(set) var p: UnsafeMutablePointer<UInt8>
    let end: UnsafeMutablePointer<UInt8>

    /// Runs `body` with a writer over a scratch buffer of `capacity` bytes (on the stack when it fits) and appends
    /// the bytes written to `out`, whose capacity the server keeps from request to request: no allocation in
    /// steady state (a fresh array per response cost a malloc, a free and page faults — 3 % of a request).
    /// `body` must not write more than `capacity` (callers compute a bound; writes past it are dropped).
    static func append(to out: inout [UInt8], capacity: Int, _ body: (inout JSONWriter) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buf in
            var w = JSONWriter(p: buf.baseAddress!, end: buf.baseAddress! + capacity)
            body(&w)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[..<(w.p - buf.baseAddress!)]))
        }
    }

    @inline(__always) mutating func write(_ s: StaticString) {
        write(UnsafeRawPointer(s.utf8Start), s.utf8CodeUnitCount)
    }

    /// Copies n bytes. Short copies (every literal and almost every id) are two overlapping loads and stores
    /// inline: a libc `memmove` call per field was 10–13 % of a request (perf, homefeed-bench lookup).
    @inline(__always) mutating func write(_ src: UnsafeRawPointer, _ n: Int) {
        guard end - p >= n else { return }
        let dst = UnsafeMutableRawPointer(p)
        switch n {
        case 16...32:
            let a = src.loadUnaligned(as: SIMD16<UInt8>.self), b = src.loadUnaligned(fromByteOffset: n - 16, as: SIMD16<UInt8>.self)
            dst.storeBytes(of: a, as: SIMD16<UInt8>.self)
            dst.storeBytes(of: b, toByteOffset: n - 16, as: SIMD16<UInt8>.self)
        case 8..<16:
            let a = src.loadUnaligned(as: UInt64.self), b = src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            dst.storeBytes(of: a, as: UInt64.self)
            dst.storeBytes(of: b, toByteOffset: n - 8, as: UInt64.self)
        case 4..<8:
            let a = src.loadUnaligned(as: UInt32.self), b = src.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
            dst.storeBytes(of: a, as: UInt32.self)
            dst.storeBytes(of: b, toByteOffset: n - 4, as: UInt32.self)
        case 0..<4:
            for i in 0..<n { p[i] = src.load(fromByteOffset: i, as: UInt8.self) }
        default:
            p.update(from: src.assumingMemoryBound(to: UInt8.self), count: n)
        }
        p += n
    }

    @inline(__always) mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0.baseAddress!, $0.count) }
    }

    @inline(__always) mutating func write(byte: UInt8) {
        guard p < end else { return }
        p.pointee = byte; p += 1
    }

    /// A JSON string body (no quotes): copied as is when nothing needs escaping (ids almost never do), else
    /// escaped by `JSONText` (the one escaping rule of the project's JSON); at most 6 output bytes per input byte.
    mutating func writeEscaped(_ bytes: UnsafeRawBufferPointer) {
        if !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            if let base = bytes.baseAddress { write(base, bytes.count) }
            return
        }
        var escaped: [UInt8] = []
        JSONText.appendEscaped(bytes, to: &escaped)
        write(escaped)
    }

    /// "00" … "99": two digits per table load when printing numbers.
    /// (A literal, not an array: no lazy-global check or reference counting on the hot path.)
    private static let digitPairs: StaticString =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// A score as a JSON number with at most 6 decimals, trailing zeros dropped (≤ 21 bytes).
    mutating func writeScore(_ f: Float) {
        var x = Double(f)
        guard x.isFinite, abs(x) < 1e12, end - p >= 21 else { write(byte: UInt8(ascii: "0")); return }
        if x < 0 { write(byte: UInt8(ascii: "-")); x = -x }
        let scaled = UInt64(x * 1e6 + 0.5)   // round half up without a libm call
        var whole = scaled / 1_000_000
        let frac = Int(scaled % 1_000_000)
        if whole < 10 {
            p.pointee = UInt8(48 + whole); p += 1
        } else {
            var digits = 1
            var t = whole
            while t >= 10 { t /= 10; digits += 1 }
            var k = digits - 1
            while k >= 0 { p[k] = UInt8(48 + whole % 10); whole /= 10; k -= 1 }
            p += digits
        }
        guard frac != 0 else { return }
        // Six decimals as three digit pairs, then drop trailing zeros.
        let pairs = Self.digitPairs.utf8Start
        p[0] = UInt8(ascii: ".")
        let hi = frac / 10000, mid = frac / 100 % 100, lo = frac % 100
        p[1] = pairs[2 * hi]; p[2] = pairs[2 * hi + 1]
        p[3] = pairs[2 * mid]; p[4] = pairs[2 * mid + 1]
        p[5] = pairs[2 * lo]; p[6] = pairs[2 * lo + 1]
        var len = 7
        while p[len - 1] == UInt8(ascii: "0") { len -= 1 }
        p += len
    }
}
