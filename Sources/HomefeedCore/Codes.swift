/// An ISO 3166-1 alpha-2 country packed into 16 bits ("US" = 0x5553). `unknown` is "ZZ".
public struct CountryCode: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: UInt16
    public init(raw: UInt16) { self.raw = raw }
    public static let unknown = CountryCode(raw: 0x5A5A)

    /// Two ASCII letters, case folded to upper; nil otherwise.
    @inlinable
    public init?(_ b: UnsafeRawBufferPointer) {
        guard b.count == 2 else { return nil }
        let a = b[0] & 0xDF, c = b[1] & 0xDF
        guard (65...90).contains(a), (65...90).contains(c) else { return nil }
        raw = UInt16(a) << 8 | UInt16(c)
    }

    public init?(_ s: String) {
        var s = s
        guard let v = s.withUTF8({ CountryCode(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = v
    }

    public var description: String {
        String(decoding: [UInt8(raw >> 8), UInt8(raw & 0xFF)], as: UTF8.self)
    }
    public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
}
