// Byte classification for the parser (RFC 9110/9112), as bit masks so no table lookup or lazy global init.

/// token characters: "!#$%&'*+-.^_`|~", digits and letters.
@inline(__always)
func isTokenChar(_ c: UInt8) -> Bool {
    if c < 64 { return (0x03ff_6cfa_0000_0000 as UInt64) >> UInt64(c) & 1 != 0 }
    if c < 128 { return (0x57ff_ffff_c7ff_fffe as UInt64) >> UInt64(c &- 64) & 1 != 0 }
    return false
}

/// Field-value bytes: visible ASCII, SP, HTAB and obs-text; no other control characters.
@inline(__always)
func isFieldValueChar(_ c: UInt8) -> Bool {
    (c >= 0x20 && c != 0x7f) || c == 0x09
}

/// Request-target bytes: anything visible (obs-text tolerated); no SP or control characters.
@inline(__always)
func isTargetChar(_ c: UInt8) -> Bool {
    c > 0x20 && c != 0x7f
}

@inline(__always)
func asciiLower(_ c: UInt8) -> UInt8 {
    c &- 65 < 26 ? c | 0x20 : c
}

/// ASCII case-insensitive equality of two byte strings.
func asciiCaseInsensitiveEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    for i in 0..<a.count where asciiLower(a[i]) != asciiLower(b[i]) { return false }
    return true
}

/// Compares `a` case-insensitively with a lowercase ASCII literal.
@inline(__always)
func equalsLowercase(_ a: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
    guard a.count == lower.utf8CodeUnitCount else { return false }
    let p = lower.utf8Start
    for i in 0..<a.count where asciiLower(a[i]) != p[i] { return false }
    return true
}

@inline(__always)
func isOWS(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }

/// Splits an already validated header block ("Name: value\r\n"...) into trimmed name/value views.
enum HeaderScanner {
    /// Calls `visit(name, value)` per line until it returns false.
    static func forEach(_ block: UnsafeRawBufferPointer,
                        _ visit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool) {
        var i = 0
        let n = block.count
        while i < n {
            var eol = i
            while eol < n && block[eol] != 0x0a { eol += 1 }
            var end = eol
            if end > i && block[end - 1] == 0x0d { end -= 1 }
            var colon = i
            while colon < end && block[colon] != UInt8(ascii: ":") { colon += 1 }
            if colon < end {
                var vs = colon + 1
                var ve = end
                while vs < ve && isOWS(block[vs]) { vs += 1 }
                while ve > vs && isOWS(block[ve - 1]) { ve -= 1 }
                let name = UnsafeRawBufferPointer(rebasing: block[i..<colon])
                let value = UnsafeRawBufferPointer(rebasing: block[vs..<ve])
                if !visit(name, value) { return }
            }
            i = eol + 1
        }
    }
}
