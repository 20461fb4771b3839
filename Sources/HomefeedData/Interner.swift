import HomefeedCore
import Glibc

/// Maps byte strings (ids, tags, languages) to dense Int32 indices and back, without a String per entry:
/// all bytes live in one arena and an open-addressing table of indices finds them.
/// `unique: false` makes it a plain append-only string column (titles), with no table.
///
/// The table hash is a fast word-at-a-time hash private to this process (it is never persisted; use `StableHash`
/// for anything that is). A slot is two words: upper 32 hash bits | entry index + 1, and arena start | length, so a
/// lookup touches one table cache line and the arena (most mismatches never reach the arena). Load factor ≤ 0.7.
public struct Interner: Sendable {
    public private(set) var bytes: [UInt8] = []
    public private(set) var offsets: [Int] = [0]
    private var table: [UInt64] = []         // 2 words per slot (see above); word 0 == 0: empty; power-of-two slots
    private let unique: Bool

    public init(unique: Bool = true) {
        self.unique = unique
        if unique { table = [UInt64](repeating: 0, count: 2 * 16) }
    }

    public var count: Int { offsets.count - 1 }

    /// Index of these bytes, adding them when new.
    @inlinable
    public mutating func intern(_ key: UnsafeRawBufferPointer) -> Int32 {
        if let i = index(of: key) { return i }
        return append(key)
    }

    public mutating func intern(_ s: String) -> Int32 {
        var s = s
        return s.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    /// Adds a new entry even when unique is true and the key exists (callers check `index(of:)` first).
    @discardableResult
    public mutating func append(_ key: UnsafeRawBufferPointer) -> Int32 {
        precondition(count < Int(Int32.max), "Interner is full")
        let idx = Int32(count)
        bytes.append(contentsOf: key)
        offsets.append(bytes.count)
        if unique {
            if count * 10 > (table.count / 2) * 7 { grow() } else { insert(idx, hash: Interner.hash(key)) }
        }
        return idx
    }

    @discardableResult
    public mutating func append(_ s: String) -> Int32 {
        var s = s
        return s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Index of these bytes, or nil.
    public func index(of key: UnsafeRawBufferPointer) -> Int32? {
        guard unique else { return nil }
        return withLookup { $0.index(of: key) }
    }

    public func index(of s: String) -> Int32? {
        var s = s
        return s.withUTF8 { index(of: UnsafeRawBufferPointer($0)) }
    }

    /// Calls `body` with a read-only view for many fast lookups (no copy or reference counting per lookup).
    /// The view is valid only inside `body`. For `unique: false` it finds nothing.
    public func withLookup<R>(_ body: (Lookup) throws -> R) rethrows -> R {
        try table.withUnsafeBufferPointer { t in
            try offsets.withUnsafeBufferPointer { o in
                try bytes.withUnsafeBytes { a in
                    try body(Lookup(table: t.baseAddress, mask: t.count / 2 - 1, offsets: o.baseAddress!,
                                    arena: a.baseAddress, enabled: unique))
                }
            }
        }
    }

    /// A borrowed read-only view of an `Interner` (see `withLookup`).
    public struct Lookup {
        @usableFromInline let table: UnsafePointer<UInt64>
        @usableFromInline let mask: Int
        @usableFromInline let offsets: UnsafePointer<Int>
        @usableFromInline let arena: UnsafeRawPointer?
        @usableFromInline let enabled: Bool

        @usableFromInline
        init(table: UnsafePointer<UInt64>?, mask: Int, offsets: UnsafePointer<Int>, arena: UnsafeRawPointer?,
             enabled: Bool) {
            // A non-unique interner has an empty table: point at a static empty slot instead.
            self.table = table ?? Lookup.emptyTable
            self.mask = table == nil ? 0 : mask
            self.offsets = offsets; self.arena = arena; self.enabled = enabled && table != nil
        }

        nonisolated(unsafe) static let emptyTable: UnsafePointer<UInt64> = {
            let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
            p.initialize(to: 0)
            return UnsafePointer(p)
        }()

        /// Index of these bytes, or nil.
        @inlinable
        public func index(of key: UnsafeRawBufferPointer) -> Int32? {
            if !enabled { return nil }
            let h = Interner.hash(key)
            let tag = h & 0xFFFF_FFFF_0000_0000
            var slot = Int(truncatingIfNeeded: h) & mask
            let n = key.count
            while true {
                let e = table[2 &* slot]
                if e == 0 { return nil }
                if e & 0xFFFF_FFFF_0000_0000 == tag {
                    let w = table[2 &* slot &+ 1]
                    let start = Int(truncatingIfNeeded: w >> 16)
                    var len = Int(truncatingIfNeeded: w & 0xFFFF)
                    if len == 0xFFFF {
                        let i = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1
                        len = offsets[i + 1] - offsets[i]
                    }
                    if len == n && (n == 0 || Interner.equal(arena! + start, key.baseAddress!, n)) {
                        return Int32(truncatingIfNeeded: (e & 0xFFFF_FFFF) - 1)
                    }
                }
                slot = (slot &+ 1) & mask
            }
        }
    }

    public subscript(i: Int) -> String {
        String(decoding: bytes[offsets[i]..<offsets[i + 1]], as: UTF8.self)
    }

    public subscript(i: Int32) -> String { self[Int(i)] }

    /// The bytes of entry i, valid inside `body`.
    public func withBytes<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[offsets[i]..<offsets[i + 1]])) }
    }

    // MARK: - Hashing and comparing

    /// A fast hash of short byte strings (wyhash-style multiply-fold over 8-byte words, SplitMix finish).
    @inlinable @inline(__always)
    static func hash(_ k: UnsafeRawBufferPointer) -> UInt64 {
        let n = k.count
        guard n > 0, let p = k.baseAddress else { return 0x2d35_8dcc_aa6c_78a5 }
        var h: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(truncatingIfNeeded: n)
        if n >= 8 {
            var i = 0
            while i + 8 < n {
                h = fold(h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self), 0xa076_1d64_78bd_642f)
                i += 8
            }
            h = fold(h ^ p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), 0xe703_7ed1_a0b4_28db)
        } else if n >= 4 {
            let a = UInt64(p.loadUnaligned(as: UInt32.self))
            let b = UInt64(p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
            h = fold(h ^ (a << 32 | b), 0xe703_7ed1_a0b4_28db)
        } else {
            let a = UInt64(p.load(as: UInt8.self)), b = UInt64(p.load(fromByteOffset: n >> 1, as: UInt8.self))
            let c = UInt64(p.load(fromByteOffset: n - 1, as: UInt8.self))
            h = fold(h ^ (a << 16 | b << 8 | c), 0xe703_7ed1_a0b4_28db)
        }
        return StableHash.mix64(h)
    }

    @inlinable @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let r = a.multipliedFullWidth(by: b)
        return r.high ^ r.low
    }

    /// Byte equality of two n-byte ranges (n > 0), word at a time.
    @inlinable @inline(__always)
    static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        if n >= 8 {
            if n > 32 { return memcmp(a, b, n) == 0 }
            var i = 0
            while i + 8 < n {
                if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                    return false
                }
                i += 8
            }
            return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
                == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        }
        if n >= 4 {
            return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
                && a.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
                == b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
        }
        for i in 0..<n where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
            return false
        }
        return true
    }

    // MARK: - Table maintenance

    @inline(__always)
    private static func slotWords(_ idx: Int, hash h: UInt64, start: Int, length: Int) -> (UInt64, UInt64) {
        ((h & 0xFFFF_FFFF_0000_0000) | UInt64(UInt32(idx) + 1), UInt64(start) << 16 | UInt64(min(length, 0xFFFF)))
    }

    private mutating func insert(_ idx: Int32, hash h: UInt64) {
        let mask = table.count / 2 - 1
        var slot = Int(truncatingIfNeeded: h) & mask
        while table[2 * slot] != 0 { slot = (slot + 1) & mask }
        let i = Int(idx)
        let (w0, w1) = Interner.slotWords(i, hash: h, start: offsets[i], length: offsets[i + 1] - offsets[i])
        table[2 * slot] = w0; table[2 * slot + 1] = w1
    }

    private mutating func grow() {
        let slots = table.count  // doubles the slot count
        var t = [UInt64](repeating: 0, count: 2 * slots)
        let mask = slots - 1
        bytes.withUnsafeBytes { arena in
            t.withUnsafeMutableBufferPointer { tp in
                for i in 0..<count {
                    let s = offsets[i], e = offsets[i + 1]
                    let h = Interner.hash(UnsafeRawBufferPointer(rebasing: arena[s..<e]))
                    var slot = Int(truncatingIfNeeded: h) & mask
                    while tp[2 * slot] != 0 { slot = (slot + 1) & mask }
                    let (w0, w1) = Interner.slotWords(i, hash: h, start: s, length: e - s)
                    tp[2 * slot] = w0; tp[2 * slot + 1] = w1
                }
            }
        }
        table = t
    }
}
