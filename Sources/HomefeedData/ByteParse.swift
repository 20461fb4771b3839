import Glibc

/// Number and text helpers that work on raw field bytes (no String per value).
public enum ByteParse {
    /// The bytes without leading and trailing spaces and tabs.
    @inlinable
    public static func trim(_ b: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var s = 0, e = b.count
        while s < e && (b[s] == 32 || b[s] == 9) { s += 1 }
        while e > s && (b[e - 1] == 32 || b[e - 1] == 9) { e -= 1 }
        if s == 0 && e == b.count { return b }
        return UnsafeRawBufferPointer(rebasing: b[s..<e])
    }

    /// A decimal integer (optional sign, surrounding spaces allowed, at most 18 digits); nil otherwise.
    @inlinable
    public static func int(_ raw: UnsafeRawBufferPointer) -> Int64? {
        let b = trim(raw)
        let n = b.count
        var i = 0, neg = false
        if n > 0 && (b[0] == 45 || b[0] == 43) { neg = b[0] == 45; i = 1 }
        if i >= n || n - i > 18 { return nil }
        var v: Int64 = 0
        while i < n {
            let d = b[i] &- 48
            if d > 9 { return nil }
            v = v &* 10 &+ Int64(d); i += 1
        }
        return neg ? -v : v
    }

    /// A finite decimal number (`12`, `-3.5`, `.5`, `1e3`; surrounding spaces allowed); nil otherwise.
    /// The common `digits[.digits]` form is parsed inline, anything else falls back to `strtod`.
    @inlinable
    public static func double(_ raw: UnsafeRawBufferPointer) -> Double? {
        let b = trim(raw)
        let n = b.count
        if n == 0 { return nil }
        var i = 0, neg = false
        if b[0] == 45 || b[0] == 43 { neg = b[0] == 45; i = 1 }
        var mant: UInt64 = 0
        var digits = 0, fracDigits = 0
        while i < n, b[i] &- 48 <= 9 { mant = mant &* 10 &+ UInt64(b[i] &- 48); digits += 1; i += 1 }
        if i < n && b[i] == 46 {
            i += 1
            while i < n, b[i] &- 48 <= 9 {
                mant = mant &* 10 &+ UInt64(b[i] &- 48); digits += 1; fracDigits += 1; i += 1
            }
        }
        if i == n && digits > 0 && digits <= 15 && fracDigits <= 15 {
            var v = Double(mant)
            if fracDigits > 0 { v /= pow10[fracDigits] }
            return neg ? -v : v
        }
        return slowDouble(b)
    }

    @usableFromInline
    static let pow10: [Double] = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15]

    @usableFromInline
    static func slowDouble(_ b: UnsafeRawBufferPointer) -> Double? {
        if b.count == 0 || b.count > 200 { return nil }
        // Only plain decimal syntax: no hex floats, inf or nan, which strtod would accept.
        for c in b {
            switch c {
            case 48...57, 43, 45, 46, 69, 101: continue
            default: return nil
            }
        }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: b.count + 1) { tmp -> Double? in
            for k in 0..<b.count { tmp[k] = CChar(bitPattern: b[k]) }
            tmp[b.count] = 0
            var endp: UnsafeMutablePointer<CChar>?
            let v = strtod(tmp.baseAddress!, &endp)
            guard let endp, endp == tmp.baseAddress! + b.count, v.isFinite else { return nil }
            return v
        }
    }

    /// Whether the bytes equal the ASCII `lower` case-insensitively (`lower` must be lower case letters/digits).
    @inlinable
    public static func equalsLower(_ b: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        let n = lower.utf8CodeUnitCount
        if b.count != n { return false }
        let l = lower.utf8Start
        for k in 0..<n {
            let c = b[k], t = l[k]
            if c != t && !(t >= 97 && t <= 122 && c | 0x20 == t) { return false }
        }
        return true
    }

    /// Whether the bytes start with the ASCII `lower` case-insensitively.
    @inlinable
    public static func hasPrefixLower(_ b: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        let n = lower.utf8CodeUnitCount
        if b.count < n { return false }
        return equalsLower(UnsafeRawBufferPointer(rebasing: b[0..<n]), lower)
    }

    /// Calls `body` for each `separator`-separated part, trimmed of spaces, skipping empty parts.
    @inlinable
    public static func forEachPart(_ b: UnsafeRawBufferPointer, separator: UInt8,
                                   _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var s = 0
        let n = b.count
        while s <= n {
            var e = s
            while e < n && b[e] != separator { e += 1 }
            let part = trim(UnsafeRawBufferPointer(rebasing: b[s..<e]))
            if part.count > 0 { try body(part) }
            s = e + 1
        }
    }

    /// Whether the bytes are valid UTF-8.
    public static func isValidUTF8(_ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            var need = 0
            var minCode: UInt32 = 0
            var code: UInt32 = 0
            if c & 0xE0 == 0xC0 { need = 1; code = UInt32(c & 0x1F); minCode = 0x80 }
            else if c & 0xF0 == 0xE0 { need = 2; code = UInt32(c & 0x0F); minCode = 0x800 }
            else if c & 0xF8 == 0xF0 { need = 3; code = UInt32(c & 0x07); minCode = 0x10000 }
            else { return false }
            if i + need >= n { return false }
            for k in 1...need {
                let d = b[i + k]
                if d & 0xC0 != 0x80 { return false }
                code = code << 6 | UInt32(d & 0x3F)
            }
            if code < minCode || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF) { return false }
            i += need + 1
        }
        return true
    }

    /// Text as UTF-8: valid UTF-8 is kept, anything else is decoded as Latin-1 (ISO 8859-1).
    public static func utf8OrLatin1(_ b: UnsafeRawBufferPointer) -> String {
        if isValidUTF8(b) { return String(decoding: b, as: UTF8.self) }
        var s = String()
        s.unicodeScalars.reserveCapacity(b.count)
        for c in b { s.unicodeScalars.append(Unicode.Scalar(c)) }
        return s
    }
}
