import Glibc
import HomefeedCore

/// A growable byte buffer that CSV rows are formatted into by hand (no String building in the hot loop).
final class RowBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }
    deinit { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    func reset() { count = 0 }

    @inline(__always) func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }
    private func grow(_ need: Int) {
        var c = capacity * 2
        while c < need { c *= 2 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        nb.update(from: base, count: count)
        base.deallocate()
        base = nb; capacity = c
    }

    @inline(__always) func byte(_ b: UInt8) {
        reserve(1)
        base[count] = b; count += 1
    }
    @inline(__always) func comma() { byte(UInt8(ascii: ",")) }
    @inline(__always) func newline() { byte(UInt8(ascii: "\n")) }

    @inline(__always) func append(_ p: UnsafeRawBufferPointer) {
        reserve(p.count)
        if p.count > 0 { (base + count).update(from: p.baseAddress!.assumingMemoryBound(to: UInt8.self), count: p.count) }
        count += p.count
    }
    @inline(__always) func append(_ a: [UInt8]) { a.withUnsafeBytes { append($0) } }
    func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Decimal integer.
    @inline(__always) func int(_ v: Int64) {
        reserve(21)
        var x = v
        if x < 0 { base[count] = UInt8(ascii: "-"); count += 1; x = -x }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 scratch bytes
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { t in
            var u = UInt64(x)
            repeat {
                t[n] = UInt8(truncatingIfNeeded: u % 10) &+ 48
                u /= 10; n += 1
            } while u > 0
            for i in 0..<n { base[count + i] = t[n - 1 - i] }
        }
        count += n
    }
    @inline(__always) func int(_ v: Int) { int(Int64(v)) }

    /// An id: a one-letter prefix and a number (`u123`).
    @inline(__always) func id(_ prefix: UInt8, _ n: Int) {
        byte(prefix); int(Int64(n))
    }

    /// A CSV field, quoted per RFC 4180 when it holds a comma, quote or line break.
    func field(_ p: UnsafeRawBufferPointer) {
        var needs = false
        for b in p where b == UInt8(ascii: ",") || b == UInt8(ascii: "\"") || b == 10 || b == 13 { needs = true; break }
        if !needs { append(p); return }
        reserve(p.count * 2 + 2)
        byte(UInt8(ascii: "\""))
        for b in p {
            if b == UInt8(ascii: "\"") { byte(b) }
            byte(b)
        }
        byte(UInt8(ascii: "\""))
    }
    func field(_ s: String) {
        var s = s
        s.withUTF8 { field(UnsafeRawBufferPointer($0)) }
    }
}

/// A file written with whole-buffer `write` calls, created as `<path>.tmp` and renamed into place on `close`.
final class OutputFile {
    let path: String
    private let tmp: String
    private var fd: Int32
    private(set) var bytesWritten = 0

    init(path: String) throws {
        self.path = path
        tmp = path + ".tmp"
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw HomefeedError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
    }
    deinit {
        if fd >= 0 { Glibc.close(fd); unlink(tmp) }
    }

    func write(_ p: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < p.count {
            let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw HomefeedError("cannot write \(tmp): \(String(cString: strerror(errno)))")
            }
            off += n
        }
        bytesWritten += p.count
    }

    /// Writes the buffer and empties it.
    func drain(_ b: RowBuffer) throws {
        try write(b.bytes)
        b.reset()
    }

    /// Closes and renames into place.
    func finish() throws {
        let rc = Glibc.close(fd)
        fd = -1
        if rc != 0 { unlink(tmp); throw HomefeedError("cannot close \(tmp): \(String(cString: strerror(errno)))") }
        if rename(tmp, path) != 0 {
            let msg = String(cString: strerror(errno))
            unlink(tmp)
            throw HomefeedError("cannot rename \(tmp) to \(path): \(msg)")
        }
    }
}
