import Foundation
import HomefeedCore
import HomefeedStore
import Testing

@Suite("Cold-start segments")
struct SegmentTests {
    static let us = CountryCode("US")!, de = CountryCode("DE")!

    /// The code is in every `PS` key the batch writes and the daemon looks up: its spelling must never change.
    @Test func codeIsPinned() throws {
        let s = UserSegment(country: Self.us, language: "en", age: .from25to34, gender: .female)
        #expect(s.code == "US.en.25-34.f")
        #expect(s.country == Self.us && s.language == "en" && s.ageBucket == .from25to34 && s.gender == .female)
        #expect(s.description == "US.en.25-34.f")
        #expect(StoreKey.segment(s) == Array("PSUS.en.25-34.f".utf8))
        #expect(StoreKey.segment(s) == StoreKey.popular(.segment, "US.en.25-34.f"))
        #expect(AgeBucket.allCases.map(\.code) == ["u", "0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"])
        #expect(SegmentGender.allCases.map(\.code) == ["u", "f", "m", "o"])
        // Raw values are HomefeedData.Gender's (the batch converts by raw value) and the age buckets' order.
        #expect(SegmentGender.allCases.map(\.rawValue) == [0, 1, 2, 3])
        #expect(AgeBucket.allCases.map(\.rawValue) == Array(0...7))
        #expect(UserSegment(country: .unknown, language: "pt-BR", age: .unknown, gender: .unknown).code == "ZZ.pt-BR.u.u")
        #expect(UserSegment(country: Self.de, language: "de", age: .from65, gender: .male).code == "DE.de.65+.m")
        // Segment keys sort after every other popular key, before user keys.
        #expect(StoreKey.popular(.region, "ZZ").lexicographicallyPrecedes(StoreKey.segment(s)))
        #expect(StoreKey.segment(s).lexicographicallyPrecedes(StoreKey.user("")))
    }

    @Test func codeRoundTrips() throws {
        let languages = ["en", "pt-BR", "zh-Hant", "a.b", ".", "x", String(repeating: "q", count: 15), "Zoë"]
        for country in [Self.us, Self.de, CountryCode.unknown] {
            for language in languages {
                for age in AgeBucket.allCases {
                    for gender in SegmentGender.allCases {
                        let s = UserSegment(country: country, language: language, age: age, gender: gender)
                        #expect(s.isValid)
                        let back = try #require(UserSegment(code: s.code), "\(s.code)")
                        #expect(back == s)
                        #expect(back.code == s.code)
                    }
                }
            }
        }
        // The country's case is folded (the writer still refuses that spelling: not canonical).
        #expect(UserSegment(code: "us.en.u.f")?.code == "US.en.u.f")
    }

    @Test func malformedCodesDoNotParse() {
        for bad in ["", "US", "US.en", "US.en.25-34", "US.en.25-34.", "USA.en.25-34.f", "U.en.25-34.f", "U1.en.25-34.f",
                    "US..25-34.f", "US.en.25-35.f", "US.en.25-34.x", "US.en.25-34.F", "US.en.25-34.female", "US.en.U.f",
                    "US.en.25_34.f", "US en.25-34.f", "US.en.25-34.f.", "US." + String(repeating: "q", count: 16) + ".u.u",
                    "US.en.f", ".en.25-34.f"] {
            #expect(UserSegment(code: bad) == nil, "'\(bad)'")
        }
        #expect(!UserSegment(country: Self.us, language: "", age: .unknown, gender: .unknown).isValid)
        #expect(!UserSegment(country: Self.us, language: String(repeating: "q", count: 16), age: .unknown, gender: .unknown).isValid)
    }

    @Test func ageBucketEdges() {
        let cases: [(Int, AgeBucket)] = [
            (Int.min, .unknown), (-1, .unknown), (0, .unknown), (1, .under18), (17, .under18), (18, .from18to24),
            (24, .from18to24), (25, .from25to34), (34, .from25to34), (35, .from35to44), (44, .from35to44),
            (45, .from45to54), (54, .from45to54), (55, .from55to64), (64, .from55to64), (65, .from65), (130, .from65),
            (Int.max, .from65),
        ]
        for (age, bucket) in cases { #expect(AgeBucket(age: age) == bucket, "age \(age)") }
        for b in AgeBucket.allCases { #expect(AgeBucket(code: b.code) == b) }
        #expect(AgeBucket(code: "65") == nil)
        #expect(AgeBucket(code: "") == nil)
    }

    @Test func genderParsing() {
        let good: [(String, SegmentGender)] = [
            ("f", .female), ("F", .female), ("female", .female), ("FEMALE", .female), ("Female", .female),
            ("m", .male), ("M", .male), ("male", .male), ("MaLe", .male),
            ("o", .other), ("O", .other), ("other", .other), ("OTHER", .other),
            ("u", .unknown), ("U", .unknown), ("unknown", .unknown), ("Unknown", .unknown),
        ]
        for (s, g) in good {
            #expect(SegmentGender(parsing: s) == g, "'\(s)'")
            let viaBytes = Array(s.utf8).withUnsafeBytes { SegmentGender(parsing: $0) }
            #expect(viaBytes == g, "'\(s)' as bytes")
        }
        for bad in ["", " ", "x", "fem", "females", "ff", "f ", " f", "mal", "0", "1", "n", "&", "F\u{0}", "\u{46}emal"] {
            #expect(SegmentGender(parsing: bad) == nil, "'\(bad)'")
        }
        for g in SegmentGender.allCases {
            #expect(SegmentGender(code: g.code) == g)
            #expect(SegmentGender(parsing: g.code) == g)
        }
        #expect(SegmentGender(code: "F") == nil)   // codes are exact; parsing is lenient
    }

    @Test func codableAsCodeStrings() throws {
        let s = UserSegment(country: Self.us, language: "en", age: .from25to34, gender: .female)
        let json = try JSONEncoder().encode(s)
        #expect(String(decoding: json, as: UTF8.self) == #""US.en.25-34.f""#)
        #expect(try JSONDecoder().decode(UserSegment.self, from: json) == s)
        #expect(String(decoding: try JSONEncoder().encode([AgeBucket.from65]), as: UTF8.self) == #"["65+"]"#)
        #expect(String(decoding: try JSONEncoder().encode([SegmentGender.other]), as: UTF8.self) == #"["o"]"#)
        #expect(try JSONDecoder().decode([AgeBucket].self, from: Data(#"["u","18-24"]"#.utf8)) == [.unknown, .from18to24])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(UserSegment.self, from: Data(#""US.en.26-34.f""#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([AgeBucket].self, from: Data(#"["20-30"]"#.utf8)) }
    }

    /// The daemon's lookup form: equal exactly when the segments are.
    @Test func packedKeys() throws {
        let base = UserSegment(country: Self.us, language: "en", age: .from25to34, gender: .female)
        let k = try #require(base.key)
        #expect(UserSegment(code: "US.en.25-34.f")?.key == k)
        #expect(UserSegment.Key(country: Self.us, language: "en", age: .from25to34, gender: .female) == k)
        var variants = [base]
        variants.append(UserSegment(country: Self.de, language: "en", age: .from25to34, gender: .female))
        variants.append(UserSegment(country: Self.us, language: "de", age: .from25to34, gender: .female))
        variants.append(UserSegment(country: Self.us, language: "en\u{0}", age: .from25to34, gender: .female))
        variants.append(UserSegment(country: Self.us, language: "EN", age: .from25to34, gender: .female))
        variants.append(UserSegment(country: Self.us, language: "en", age: .from35to44, gender: .female))
        variants.append(UserSegment(country: Self.us, language: "en", age: .from25to34, gender: .male))
        variants.append(UserSegment(country: Self.us, language: "abcdefghijklmno", age: .unknown, gender: .unknown))
        variants.append(UserSegment(country: Self.us, language: "abcdefghijklmnp", age: .unknown, gender: .unknown))
        variants.append(UserSegment(country: Self.us, language: "abcdefgh", age: .unknown, gender: .unknown))
        let keys = variants.map(\.key)
        #expect(keys.allSatisfy { $0 != nil })
        #expect(Set(keys.compactMap { $0 }).count == variants.count)
        #expect(UserSegment(country: Self.us, language: "", age: .unknown, gender: .unknown).key == nil)
        #expect(UserSegment(country: Self.us, language: String(repeating: "q", count: 16), age: .unknown, gender: .unknown).key == nil)
    }

    static let segmentUS = UserSegment(country: us, language: "en", age: .from25to34, gender: .female)
    static let segmentDE = UserSegment(country: de, language: "de", age: .from65, gender: .male)
    static var popularWithSegments: [(scope: PopularScope, code: String, list: RecommendationList)] {
        Fixture.popular + [(.segment, segmentDE.code, Fixture.list(seed: 2001, count: 12, country: "DE", language: "de")),
                           (.segment, segmentUS.code, Fixture.list(seed: 2002, count: 9, country: "US", language: "en"))]
    }

    @Test func segmentListsAreWrittenAndRead() throws {
        try withTempStore { store, _ in
            let b = try VersionBuilder(store: store, createdAt: Fixture.createdAt)
            try b.writePopular(Self.popularWithSegments)
            #expect(b.popularListsWritten == 3)
            #expect(b.segmentListsWritten == 2)
            try b.writeVideos(Fixture.videos(6))
            var meta = Fixture.metadata()
            meta.counts.segmentLists = b.segmentListsWritten
            try b.finish(metadata: meta)
            let v = try StoreVersion(store: store, name: b.name)
            #expect(v.metadata.counts.segmentLists == 2)
            #expect(v.metadata.counts.popularLists == 3)
            // Every list is there, in key order (segments after global, language, region).
            let all = v.popularLists
            #expect(all.map { "\(Character(UnicodeScalar($0.scope.rawValue)))\($0.code)" }
                    == ["G", "Len", "RUS", "SDE.de.65+.m", "SUS.en.25-34.f"])
            for p in Self.popularWithSegments { #expect(v.popularList(p.scope, p.code) == p.list, "\(p.scope) \(p.code)") }
            #expect(v.segmentLists.map(\.segment) == [Self.segmentDE, Self.segmentUS])
            #expect(v.segmentList(Self.segmentUS) == Self.popularWithSegments.last!.list)
            #expect(v.segmentList(UserSegment(country: Self.us, language: "en", age: .from18to24, gender: .female)) == nil)
        }
    }

    /// Versions without the count (written before it existed) read it as 0.
    @Test func segmentCountDefaultsToZero() throws {
        var meta = Fixture.metadata()
        meta.counts.segmentLists = 4
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(meta)) as! [String: Any]
        var counts = json["counts"] as! [String: Any]
        #expect(counts["segmentLists"] as? Int == 4)
        counts.removeValue(forKey: "segmentLists")
        json["counts"] = counts
        let old = try JSONDecoder().decode(RunMetadata.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.counts.segmentLists == 0)
        #expect(old.counts.popularLists == 3)
    }

    @Test func writerRefusesBadSegmentCodesAndDuplicates() throws {
        try withTempStore { store, _ in
            let l = Fixture.list(seed: 1, count: 3)
            for bad in ["s7", "", "us.en.25-34.f", "US.en.25-34.F", "US.en.25-35.f", "US..u.u"] {
                let b = try VersionBuilder(store: store, createdAt: Fixture.createdAt)
                defer { b.abandon() }
                expectHomefeedError("segment list code '\(bad)'", "US.en.25-34.f") {
                    try b.writePopular(Fixture.popular + [(.segment, bad, l)])
                }
            }
            let b = try VersionBuilder(store: store, createdAt: Fixture.createdAt)
            defer { b.abandon() }
            expectHomefeedError("PSUS.en.u.u", "twice") {
                try b.writePopular([(.segment, "US.en.u.u", l), (.global, "", l), (.segment, "US.en.u.u", l)])
            }
            expectHomefeedError("PRUS", "twice") { try b.writePopular(Fixture.popular + [(.region, "US", l)]) }
            // Refused calls wrote nothing; the one good call may not be followed by another (they share one file).
            try b.writePopular(Self.popularWithSegments)
            expectHomefeedError("writePopular called twice", "one call") { try b.writePopular([(.segment, "US.en.u.u", l)]) }
        }
    }

    /// Segment lists do not count as personalized users or list length: the publish guard ignores them.
    @Test func publishGuardIgnoresSegmentLists() throws {
        try withTempStore { store, _ in
            let withSegments = try Fixture.build(store, popular: Self.popularWithSegments, createdAt: Fixture.createdAt)
            #expect(try store.publish(withSegments, force: false, guardMaxDrop: 0.5, keep: 5) == .published(pruned: []))
            let without = try Fixture.build(store, createdAt: Fixture.createdAt + 3600)
            #expect(try store.publish(without, force: false, guardMaxDrop: 0.5, keep: 5) == .published(pruned: []))
            let again = try Fixture.build(store, popular: Self.popularWithSegments, createdAt: Fixture.createdAt + 7200)
            #expect(try store.publish(again, force: false, guardMaxDrop: 0.5, keep: 5) == .published(pruned: []))
            #expect(try StoreVersion(store: store, name: again).segmentLists.count == 2)
        }
    }
}
