import HomefeedCore
import Glibc

/// Maps byte strings (ids, tags, languages) to dense Int32 indices and back, without a String per entry:
/// all bytes live in one arena and an open-addressing table of indices finds them.
/// `unique: false` makes it a plain append-only string column (titles), with no table.
///
/// The table hash is a fast word-at-a-time hash private to this process (never persist it; use `StableHash` for
/// anything that is). A slot is two words: [upper 24 hash bits | min(length, 255) | entry index + 1] and either the
/// key itself (keys of ≤ 8 bytes, the common id case: such a lookup never touches the arena) or its arena start.
/// Linear probing, load factor ≤ 0.7. Large tables live in transparent huge pages (random probes into a table of
/// millions of ids otherwise pay a TLB miss each).
public struct Interner: Sendable {
    public private(set) var bytes: [UInt8] = []
    public private(set) var offsets: [Int] = [0]
    private var table: SlotTable
    private let unique: Bool

    public init(unique: Bool = true) {
        self.unique = unique
        table = unique ? SlotTable(slots: 16) : SlotTable.none
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
        let idx = appendBytes(key)
        if unique {
            if count * 10 > table.slots * 7 { grow() } else {
                let h = Interner.hash(key)
                makeTableUnique()
                var slot = Int(truncatingIfNeeded: h) & (table.slots - 1)
                while table.words[2 * slot] != 0 { slot = (slot + 1) & (table.slots - 1) }
                setSlot(slot, Int(idx), hash: h, key: key)
            }
        }
        return idx
    }

    @discardableResult
    public mutating func append(_ s: String) -> Int32 {
        var s = s
        return s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Adds `key` when it is new and returns its index; nil when it is already there (one hash and probe, for
    /// loading unique ids). With `unique: false` it always appends.
    public mutating func appendIfNew(_ key: UnsafeRawBufferPointer) -> Int32? {
        guard unique else { return appendBytes(key) }
        let h = Interner.hash(key)
        let mask = table.slots - 1
        let found = withLookup { l -> Int? in
            var slot = Int(truncatingIfNeeded: h) & mask
            let first = l.table[2 &* slot]
            if l.index(of: key, hash: h, first: first) != nil { return nil }
            while l.table[2 &* slot] != 0 { slot = (slot &+ 1) & mask }
            return slot
        }
        guard let slot = found else { return nil }
        let idx = appendBytes(key)
        if count * 10 > table.slots * 7 { grow() } else {
            makeTableUnique()
            setSlot(slot, Int(idx), hash: h, key: key)
        }
        return idx
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
        try withExtendedLifetime(table) {
            try offsets.withUnsafeBufferPointer { o in
                try bytes.withUnsafeBytes { a in
                    try body(Lookup(table: table.words, mask: table.slots - 1, offsets: o.baseAddress!,
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
        init(table: UnsafeMutablePointer<UInt64>, mask: Int, offsets: UnsafePointer<Int>, arena: UnsafeRawPointer?,
             enabled: Bool) {
            self.table = UnsafePointer(table); self.mask = mask
            self.offsets = offsets; self.arena = arena; self.enabled = enabled
        }

        /// Index of these bytes, or nil.
        @inlinable
        public func index(of key: UnsafeRawBufferPointer) -> Int32? {
            index(of: key, hash: Interner.hash(key))
        }

        /// The first table word probed for `hash`. Loading the first words of two lookups before probing either
        /// lets their cache misses overlap; pass the word to `index(of:hash:first:)`.
        @inlinable @inline(__always)
        public func firstWord(hash h: UInt64) -> UInt64 { table[2 &* (Int(truncatingIfNeeded: h) & mask)] }

        /// Index of `key` whose `Interner.hash` is `hash`, or nil.
        @inlinable @inline(__always)
        public func index(of key: UnsafeRawBufferPointer, hash h: UInt64) -> Int32? {
            index(of: key, hash: h, first: firstWord(hash: h))
        }

        /// Index of `key` given its hash and `firstWord(hash:)`, or nil.
        @inlinable @inline(__always)
        public func index(of key: UnsafeRawBufferPointer, hash h: UInt64, first: UInt64) -> Int32? {
            if !enabled { return nil }
            let n = key.count
            let want = Interner.tagBits(h, length: n)
            let inline = n <= 8 ? Interner.inlineWord(key) : 0
            var slot = Int(truncatingIfNeeded: h) & mask
            var e = first
            while true {
                if e == 0 { return nil }
                if e & 0xFFFF_FFFF_0000_0000 == want {
                    let w = table[2 &* slot &+ 1]
                    let i = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) &- 1
                    if n <= 8 {
                        if w == inline { return Int32(truncatingIfNeeded: i) }
                    } else if n < 255 || offsets[i + 1] - offsets[i] == n {
                        if Interner.equal(arena! + Int(truncatingIfNeeded: w), key.baseAddress!, n) {
                            return Int32(truncatingIfNeeded: i)
                        }
                    }
                }
                slot = (slot &+ 1) & mask
                e = table[2 &* slot]
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
    /// Process-local: never persist it (use `StableHash`).
    @inlinable @inline(__always)
    public static func hash(_ k: UnsafeRawBufferPointer) -> UInt64 {
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

    /// Word 0 of a slot without the index: upper 24 hash bits and min(length, 255).
    @inlinable @inline(__always)
    static func tagBits(_ h: UInt64, length n: Int) -> UInt64 {
        (h & 0xFFFF_FF00_0000_0000) | UInt64(truncatingIfNeeded: min(n, 255)) << 32
    }

    /// A key of ≤ 8 bytes as one word (injective for a given length).
    @inlinable @inline(__always)
    static func inlineWord(_ k: UnsafeRawBufferPointer) -> UInt64 {
        let n = k.count
        guard n > 0, let p = k.baseAddress else { return 0 }
        if n == 8 { return p.loadUnaligned(as: UInt64.self) }
        if n >= 4 {
            let lo = UInt64(p.loadUnaligned(as: UInt32.self))
            let hi = UInt64(p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)) >> UInt64(8 * (8 - n))
            return lo | hi << 32
        }
        var w: UInt64 = 0
        for i in 0..<n { w |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << UInt64(8 * i) }
        return w
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

    private mutating func appendBytes(_ key: UnsafeRawBufferPointer) -> Int32 {
        precondition(count < Int(Int32.max) - 1, "Interner is full")
        let idx = Int32(count)
        bytes.append(contentsOf: key)
        offsets.append(bytes.count)
        return idx
    }

    private mutating func makeTableUnique() {
        if !isKnownUniquelyReferenced(&table) { table = table.copy() }
    }

    private func setSlot(_ slot: Int, _ idx: Int, hash h: UInt64, key: UnsafeRawBufferPointer) {
        table.words[2 * slot] = Interner.tagBits(h, length: key.count) | UInt64(UInt32(idx) + 1)
        table.words[2 * slot + 1] = key.count <= 8 ? Interner.inlineWord(key) : UInt64(offsets[idx])
    }

    /// Doubles the table and re-inserts every entry (including one just appended).
    private mutating func grow() {
        let t = SlotTable(slots: table.slots * 2)
        let mask = t.slots - 1
        bytes.withUnsafeBytes { arena in
            for i in 0..<count {
                let s = offsets[i], e = offsets[i + 1]
                let key = UnsafeRawBufferPointer(rebasing: arena[s..<e])
                let h = Interner.hash(key)
                var slot = Int(truncatingIfNeeded: h) & mask
                while t.words[2 * slot] != 0 { slot = (slot + 1) & mask }
                t.words[2 * slot] = Interner.tagBits(h, length: key.count) | UInt64(UInt32(i) + 1)
                t.words[2 * slot + 1] = key.count <= 8 ? Interner.inlineWord(key) : UInt64(s)
            }
        }
        table = t
    }
}

/// The slot words of an `Interner` (2 × slots, zero = empty). Shared copy-on-write between Interner copies; only
/// mutated while uniquely referenced, hence `@unchecked Sendable`. Tables of ≥ 4 MiB are mmap'ed on a 2 MiB
/// boundary with MADV_HUGEPAGE (the kernel zero-fills them lazily).
final class SlotTable: @unchecked Sendable {
    let words: UnsafeMutablePointer<UInt64>
    let slots: Int
    private let mapping: UnsafeMutableRawPointer?
    private let mappingSize: Int

    /// The table of a non-unique Interner: one empty slot, never written.
    static let none = SlotTable(slots: 1)

    init(slots: Int) {
        self.slots = slots
        let bytes = slots * 16
        let huge = 2 << 20
        if bytes >= 4 << 20 {
            let size = bytes + huge
            if let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
               p != MAP_FAILED {
                let aligned = (Int(bitPattern: p) + huge - 1) & ~(huge - 1)
                let start = UnsafeMutableRawPointer(bitPattern: aligned)!
                _ = madvise(start, bytes, MADV_HUGEPAGE)
                words = start.bindMemory(to: UInt64.self, capacity: 2 * slots)
                mapping = p; mappingSize = size
                return
            }
        }
        words = .allocate(capacity: 2 * slots)
        words.initialize(repeating: 0, count: 2 * slots)
        mapping = nil; mappingSize = 0
    }

    func copy() -> SlotTable {
        let t = SlotTable(slots: slots)
        t.words.update(from: words, count: 2 * slots)
        return t
    }

    deinit {
        if let mapping { munmap(mapping, mappingSize) } else { words.deallocate() }
    }
}
