import HomefeedCore
import Glibc

/// A buffered RFC 4180 writer: fields are quoted only when they hold the delimiter, a quote or a line break
/// (a lone empty field on a row is written as `""` so the row does not read back as a blank line).
/// Rows end in `\n`. The file is written to `path.tmp` and renamed to `path` by `close()`, so a failed run never
/// leaves a half-written file under the final name.
public final class CSVWriter {
    public let path: String
    public let delimiter: UInt8
    /// Rows written so far.
    public private(set) var rows = 0

    private let tmpPath: String
    private var fd: Int32
    private var buf: UnsafeMutablePointer<UInt8>
    private let cap: Int
    private var used = 0
    private var fieldsInRow = 0
    private var lastFieldWasEmpty = false
    private var failure: String?

    public init(path: String, delimiter: UInt8 = UInt8(ascii: ","), bufferSize: Int = 1 << 20) throws {
        self.path = path
        self.delimiter = delimiter
        tmpPath = path + ".tmp"
        fd = open(tmpPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw HomefeedError("cannot create \(tmpPath): \(String(cString: strerror(errno)))") }
        cap = max(bufferSize, 64)
        buf = .allocate(capacity: cap)
    }

    deinit {
        if fd >= 0 { Glibc.close(fd); unlink(tmpPath) }
        buf.deallocate()
    }

    // MARK: - Fields

    /// Appends a field of raw bytes, quoting it when needed.
    public func field(_ b: UnsafeRawBufferPointer) {
        separate()
        lastFieldWasEmpty = b.count == 0
        var needsQuotes = false
        for c in b where c == delimiter || c == 34 || c == 10 || c == 13 { needsQuotes = true; break }
        if !needsQuotes { put(b); return }
        put(34)
        var s = 0
        for i in 0..<b.count where b[i] == 34 {
            put(UnsafeRawBufferPointer(rebasing: b[s...i]))   // through the quote, then one more quote
            put(34)
            s = i + 1
        }
        put(UnsafeRawBufferPointer(rebasing: b[s...]))
        put(34)
    }

    public func field(_ s: String) {
        var s = s
        s.withUTF8 { field(UnsafeRawBufferPointer($0)) }
    }

    public func field(_ v: Int) { field(Int64(v)) }

    public func field(_ v: Int64) {
        separate()
        lastFieldWasEmpty = false
        if used + 21 > cap { flush() }
        var x = v.magnitude
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes of scratch for the digits
        let n = withUnsafeMutableBytes(of: &tmp) { t -> Int in
            var i = 24
            repeat { i -= 1; t[i] = UInt8(48 + x % 10); x /= 10 } while x > 0
            if v < 0 { i -= 1; t[i] = 45 }
            (buf + used).update(from: t.baseAddress!.assumingMemoryBound(to: UInt8.self) + i, count: 24 - i)
            return 24 - i
        }
        used += n
    }

    /// Integral values as integers (`6000`), others in Swift's shortest round-trip form (`123.5`).
    public func field(_ v: Double) {
        if v.isFinite && v == v.rounded() && abs(v) < 1e15 { field(Int64(v)) } else { field(v.description) }
    }

    /// An empty field.
    public func emptyField() {
        separate()
        lastFieldWasEmpty = true
    }

    /// Ends the current row.
    public func endRow() {
        if fieldsInRow == 1 && lastFieldWasEmpty { put(34); put(34) }
        put(10)
        fieldsInRow = 0
        lastFieldWasEmpty = false
        rows += 1
    }

    /// Writes a whole row of strings.
    public func row(_ fields: [String]) {
        for f in fields { field(f) }
        endRow()
    }

    /// Flushes, closes and renames the file into place; throws on any write error.
    public func close() throws {
        flush()
        guard fd >= 0 else { if let failure { throw HomefeedError(failure) }; return }
        let rc = Glibc.close(fd)
        fd = -1
        if failure == nil && rc != 0 { failure = "cannot write \(path): \(String(cString: strerror(errno)))" }
        if let failure { unlink(tmpPath); throw HomefeedError(failure) }
        if rename(tmpPath, path) != 0 {
            let msg = String(cString: strerror(errno))
            unlink(tmpPath)
            throw HomefeedError("cannot rename \(tmpPath) to \(path): \(msg)")
        }
    }

    // MARK: - Buffer

    @inline(__always)
    private func separate() {
        if fieldsInRow > 0 { put(delimiter) }
        fieldsInRow += 1
    }

    @inline(__always)
    private func put(_ c: UInt8) {
        if used == cap { flush() }
        buf[used] = c
        used += 1
    }

    private func put(_ b: UnsafeRawBufferPointer) {
        guard let base = b.baseAddress, b.count > 0 else { return }
        if used + b.count > cap {
            flush()
            if b.count > cap { writeAll(base, b.count); return }
        }
        (UnsafeMutableRawPointer(buf) + used).copyMemory(from: base, byteCount: b.count)
        used += b.count
    }

    private func flush() {
        if used > 0 { writeAll(UnsafeRawPointer(buf), used) }
        used = 0
    }

    private func writeAll(_ p: UnsafeRawPointer, _ n: Int) {
        guard failure == nil, fd >= 0 else { return }
        var off = 0
        while off < n {
            let w = write(fd, p + off, n - off)
            if w > 0 { off += w; continue }
            if w < 0 && errno == EINTR { continue }
            failure = "cannot write \(path): \(String(cString: strerror(errno)))"
            return
        }
    }
}
