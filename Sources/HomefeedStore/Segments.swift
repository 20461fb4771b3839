import HomefeedCore

/// A cold-start segment: the users nobody knows yet, grouped by what a sign-up form tells (country × language ×
/// age bucket × gender). The batch publishes one list per segment under `StoreKey.segment(_:)`
/// (`PS` + `code`); the daemon serves it to unknown users whose request names all four attributes.
///
/// The code is the stable, human-readable key text, part of the store format:
///
///     COUNTRY "." LANGUAGE "." AGE "." GENDER        e.g.  US.en.25-34.f    BR.pt-BR.u.u    DE.de.65+.m
///
/// - COUNTRY: ISO 3166-1 alpha-2, upper case (`ZZ` = unknown), as `CountryCode.description`;
/// - LANGUAGE: the language tag exactly as in the data and the `PL` lists (1 to 15 bytes, case kept);
/// - AGE: `AgeBucket.code`: `u` (unknown), `0-17`, `18-24`, `25-34`, `35-44`, `45-54`, `55-64`, `65+`;
/// - GENDER: `SegmentGender.code`: `f`, `m`, `o`, `u` (unknown).
///
/// Age and gender codes contain no `.`, so the code is split at its first and its last two dots and a language
/// tag may contain any byte. `init?(code:)` reads what `code` writes; the writer refuses any other spelling.
public struct UserSegment: Sendable, Hashable, CustomStringConvertible {
    public var country: CountryCode
    public var language: String
    public var ageBucket: AgeBucket
    public var gender: SegmentGender

    /// Longest language tag a segment (and a list value, and the daemon's `lang`) carries.
    public static let maxLanguageBytes = 15

    public init(country: CountryCode, language: String, age: AgeBucket, gender: SegmentGender) {
        self.country = country; self.language = language; ageBucket = age; self.gender = gender
    }

    /// `US.en.25-34.f`: the text after `PS` in the store key.
    public var code: String { "\(country).\(language).\(ageBucket.code).\(gender.code)" }

    public var description: String { code }

    /// Whether the segment can be stored: a language of 1 to `maxLanguageBytes` bytes.
    public var isValid: Bool { (1...Self.maxLanguageBytes).contains(language.utf8.count) }

    /// Parses a code written by `code` (the country's case is folded); nil for anything else.
    public init?(code: String) {
        let b = Array(code.utf8)
        guard b.count >= 8, b[2] == UInt8(ascii: "."),
              let last = b.lastIndex(of: UInt8(ascii: ".")), last > 3,
              let middle = b[..<last].lastIndex(of: UInt8(ascii: ".")), middle > 3,
              let country = b.withUnsafeBytes({ CountryCode(UnsafeRawBufferPointer(rebasing: $0[0..<2])) }),
              let age = AgeBucket(code: String(decoding: b[(middle + 1)..<last], as: UTF8.self)),
              let gender = SegmentGender(code: String(decoding: b[(last + 1)...], as: UTF8.self))
        else { return nil }
        let language = String(decoding: b[3..<middle], as: UTF8.self)
        self.init(country: country, language: language, age: age, gender: gender)
        guard isValid, Array(language.utf8) == Array(b[3..<middle]) else { return nil }
    }

    /// The fixed-size lookup form (nil when the segment is not `isValid`).
    public var key: Key? { Key(country: country, language: language, age: ageBucket, gender: gender) }

    /// A segment packed into 20 bytes of plain integers, for hashing without touching a String's storage: the
    /// daemon builds one per cold-start request from the query (no allocation) and looks it up in a dictionary.
    public struct Key: Hashable, Sendable {
        /// Language bytes 0–7 and 8–14 (little-endian, zero-padded); the top byte of `language1` is the length.
        @usableFromInline let language0: UInt64
        @usableFromInline let language1: UInt64
        /// country << 16 | age << 8 | gender.
        @usableFromInline let attributes: UInt32

        /// nil when `language` is empty or longer than `UserSegment.maxLanguageBytes` bytes.
        @inlinable
        public init?(country: CountryCode, language: String, age: AgeBucket, gender: SegmentGender) {
            var l0: UInt64 = 0, l1: UInt64 = 0, n = 0
            for c in language.utf8 {
                if n >= UserSegment.maxLanguageBytes { return nil }
                if n < 8 { l0 |= UInt64(c) << (8 * UInt64(n)) } else { l1 |= UInt64(c) << (8 * UInt64(n - 8)) }
                n += 1
            }
            if n == 0 { return nil }
            language0 = l0
            language1 = l1 | UInt64(n) << 56
            attributes = UInt32(country.raw) << 16 | UInt32(age.rawValue) << 8 | UInt32(gender.rawValue)
        }
    }
}

extension UserSegment: Codable {
    /// Encoded as its code (`"US.en.25-34.f"`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = UserSegment(code: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a segment code (COUNTRY.LANGUAGE.AGE.GENDER, e.g. US.en.25-34.f): '\(s)'")
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(code)
    }
}

/// The fixed age buckets of cold-start segments. The bounds are part of the store format (segment codes).
public enum AgeBucket: UInt8, Sendable, Hashable, CaseIterable {
    case unknown = 0
    case under18 = 1
    case from18to24 = 2
    case from25to34 = 3
    case from35to44 = 4
    case from45to54 = 5
    case from55to64 = 6
    case from65 = 7

    /// The bucket of an age in whole years: 0 (or less) is unknown, as in the data (users.csv `age`, empty = 0).
    @inlinable
    public init(age: Int) {
        switch age {
        case ...0: self = .unknown
        case 1...17: self = .under18
        case 18...24: self = .from18to24
        case 25...34: self = .from25to34
        case 35...44: self = .from35to44
        case 45...54: self = .from45to54
        case 55...64: self = .from55to64
        default: self = .from65
        }
    }

    /// `u`, `0-17`, `18-24`, `25-34`, `35-44`, `45-54`, `55-64`, `65+`.
    public var code: String {
        switch self {
        case .unknown: "u"; case .under18: "0-17"; case .from18to24: "18-24"; case .from25to34: "25-34"
        case .from35to44: "35-44"; case .from45to54: "45-54"; case .from55to64: "55-64"; case .from65: "65+"
        }
    }

    /// The bucket with this `code` (exactly), or nil.
    public init?(code: String) {
        guard let b = AgeBucket.allCases.first(where: { $0.code == code }) else { return nil }
        self = b
    }
}

extension AgeBucket: Codable {
    /// Encoded as its code (`"25-34"`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = AgeBucket(code: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an age bucket: '\(s)'")
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(code)
    }
}

/// Gender as the data records it. Raw values are those of `HomefeedData.Gender` (0 unknown, 1 female,
/// 2 male, 3 other), so the batch converts with `SegmentGender(rawValue: g.rawValue)!` (not named `Gender`: the
/// pipeline imports HomefeedData too).
public enum SegmentGender: UInt8, Sendable, Hashable, CaseIterable {
    case unknown = 0, female = 1, male = 2, other = 3

    /// `u`, `f`, `m`, `o`: the segment code's last part.
    public var code: String {
        switch self { case .unknown: "u"; case .female: "f"; case .male: "m"; case .other: "o" }
    }

    /// The gender with this `code` (exactly: lower case, one letter), or nil.
    public init?(code: String) {
        guard let g = SegmentGender.allCases.first(where: { $0.code == code }) else { return nil }
        self = g
    }

    /// Parses `f`/`female`, `m`/`male`, `o`/`other`, `u`/`unknown`, in any case; nil otherwise (also for an
    /// empty value). Byte-level, no allocation: the daemon parses its `gender` parameter with it.
    @inlinable
    public init?(parsing b: UnsafeRawBufferPointer) {
        @inline(__always) func lowerEquals(_ s: StaticString) -> Bool {
            guard b.count == s.utf8CodeUnitCount else { return false }
            for i in 0..<b.count where b[i] | 0x20 != s.utf8Start[i] { return false }
            return true
        }
        if lowerEquals("f") || lowerEquals("female") { self = .female }
        else if lowerEquals("m") || lowerEquals("male") { self = .male }
        else if lowerEquals("o") || lowerEquals("other") { self = .other }
        else if lowerEquals("u") || lowerEquals("unknown") { self = .unknown }
        else { return nil }
    }

    public init?(parsing s: String) {
        var s = s
        guard let g = s.withUTF8({ SegmentGender(parsing: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = g
    }
}

extension SegmentGender: Codable {
    /// Encoded as its code (`"f"`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let v = SegmentGender(parsing: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a gender: '\(s)'")
        }
        self = v
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(code)
    }
}

extension StoreKey {
    /// `PS` + the segment's code (`PSUS.en.25-34.f`): where the segment's list lives.
    public static func segment(_ s: UserSegment) -> [UInt8] { popular(.segment, s.code) }
}
