/// URL percent-decoding of a path segment or query value (`+` is a space in query values). Nil when malformed.
enum PercentDecoding {
    static func decode(_ b: UnsafeRawBufferPointer, plusIsSpace: Bool, into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < b.count, let h = hexValue(b[i + 1]), let l = hexValue(b[i + 2]) else { return false }
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(plusIsSpace && c == UInt8(ascii: "+") ? UInt8(ascii: " ") : c)
                i += 1
            }
        }
        return true
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }

    /// Whether decoding would change anything (most ids need none, so the raw bytes can be used as they are).
    static func needsDecoding(_ b: UnsafeRawBufferPointer, plusIsSpace: Bool) -> Bool {
        b.contains { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }
    }
}
