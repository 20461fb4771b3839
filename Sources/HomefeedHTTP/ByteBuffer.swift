import Glibc

/// A growable byte buffer on manually managed memory, for per-connection input and per-worker output.
///
/// Non-copyable so ownership of the allocation is explicit (no accidental double free) and no
/// copy-on-write checks sit in the hot path. Growth is geometric; `count` bytes from `base` are valid.
struct ByteBuffer: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity: Int
    var count: Int = 0

    init(capacity: Int = 0) {
        self.capacity = max(0, capacity)
        self.base = self.capacity > 0 ? malloc(self.capacity) : nil
        if base == nil { self.capacity = 0 }
    }

    deinit { free(base) }

    var freeSpace: Int { capacity - count }
    /// Writable region after the valid bytes; nil when nothing is allocated.
    var tail: UnsafeMutableRawPointer? { base.map { $0 + count } }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Makes room for `extra` more bytes. Returns false only if the allocator fails.
    @discardableResult
    mutating func reserve(_ extra: Int) -> Bool {
        let needed = count + extra
        if needed <= capacity { return true }
        var newCapacity = max(capacity, 1024)
        while newCapacity < needed { newCapacity &*= 2 }
        guard let grown = realloc(base, newCapacity) else { return false }
        base = grown
        capacity = newCapacity
        return true
    }

    /// Drops the allocation (idle connections should not pin large buffers).
    mutating func release() {
        free(base)
        base = nil
        capacity = 0
        count = 0
    }

    /// Discards the first `n` bytes, moving the rest to the front.
    mutating func consumeFront(_ n: Int) {
        guard n > 0, let base else { return }
        if n >= count { count = 0; return }
        memmove(base, base + n, count - n)
        count -= n
    }

    mutating func append(_ src: UnsafeRawPointer, _ n: Int) {
        guard n > 0, reserve(n), let base else { return }
        memcpy(base + count, src, n)
        count += n
    }

    mutating func append(_ src: UnsafeRawBufferPointer) {
        if let start = src.baseAddress { append(start, src.count) }
    }

    mutating func append(_ s: StaticString) {
        // StaticString literals used here are ASCII, so utf8Start is valid.
        append(UnsafeRawPointer(s.utf8Start), s.utf8CodeUnitCount)
    }

    mutating func append(byte: UInt8) {
        guard reserve(1), let base else { return }
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    mutating func append(string s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends a non-negative decimal integer without going through String.
    mutating func append(decimal value: Int) {
        var v = UInt(max(0, value))
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for any UInt64
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[23 - n] = UInt8(truncatingIfNeeded: v % 10) &+ 48
                v /= 10
                n += 1
            } while v > 0
            append(UnsafeRawBufferPointer(rebasing: d[(24 - n)...]))
        }
    }
}
