import Foundation
import HomefeedCore
import HomefeedStore
import Testing

@Suite("List and video codecs")
struct CodecTests {
    private func roundTrip(_ l: RecommendationList) throws -> RecommendationList {
        let bytes = ListCodec.encode(l)
        return try bytes.withUnsafeBytes { try ListCodec.decode($0) }
    }

    @Test func emptyList() throws {
        let l = RecommendationList()
        let bytes = ListCodec.encode(l)
        // Header only: version 1, flags 0, count 0, country "ZZ" (little-endian raw 0x5A5A), no language.
        #expect(bytes == [1, 0, 0, 0, 0x5A, 0x5A, 0])
        let back = try roundTrip(l)
        #expect(back == l)
        #expect(back.count == 0 && back.country == .unknown && back.language == "")
    }

    @Test func oneEntryByteLayout() throws {
        let l = RecommendationList(videos: [0x0102_0304], scores: [1.5], sources: [.twoTower],
                                   country: CountryCode("US")!, language: "en")
        let bytes = ListCodec.encode(l)
        let oneAndHalf = Array(withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian) { Array($0) })
        #expect(bytes == [1, 0, 1, 0, 0x53, 0x55, 2, 0x65, 0x6E, 4, 3, 2, 1] + oneAndHalf + [4])
        #expect(try roundTrip(l) == l)
    }

    @Test func hundredEntriesWithCountryAndLanguage() throws {
        let l = Fixture.list(seed: 7, count: 100, country: "BR", language: "pt-BR")
        let bytes = ListCodec.encode(l)
        #expect(bytes.count == 7 + 5 + 100 * 9)
        let back = try roundTrip(l)
        #expect(back == l)
        #expect(back.country.description == "BR")
        #expect(back.language == "pt-BR")
        // The zero-copy view reads the same columns.
        try bytes.withUnsafeBytes { b in
            let v = try ListView(b)
            #expect(v.count == 100)
            #expect(v.country == CountryCode("BR")!)
            #expect(v.language == "pt-BR")
            for i in 0..<100 {
                #expect(v.video(i) == l.videos[i])
                #expect(v.score(i) == l.scores[i])
                #expect(v.source(i) == l.sources[i])
            }
        }
    }

    @Test func everySourceAndSpecialScoresSurvive() throws {
        let sources = CandidateSource.allCases
        let scores: [Float] = [0, -0.0, 1e-30, -3.25, .greatestFiniteMagnitude, .infinity, -.infinity]
        let l = RecommendationList(videos: (0..<UInt32(sources.count)).map { $0 &* 1_000_003 &+ 0xFFF0_0000 },
                                   scores: Array(scores.prefix(sources.count)), sources: sources)
        let back = try roundTrip(l)
        #expect(back.sources == sources)
        #expect(back.videos == l.videos)
        #expect(back.scores.map(\.bitPattern) == l.scores.map(\.bitPattern))
    }

    @Test func languageIsCappedAt15Bytes() throws {
        var l = Fixture.list(seed: 3, count: 2)
        l.language = "abcdefghijklmnopqrstuvwxyz"
        #expect(try roundTrip(l).language == "abcdefghijklmno")
    }

    @Test func viewRejectsWrongFormatVersion() throws {
        var bytes = ListCodec.encode(Fixture.list(seed: 1, count: 3))
        bytes[0] = 2
        bytes.withUnsafeBytes { b in
            expectHomefeedError("format version 2", "reads 1") { try ListView(b) }
        }
    }

    @Test func viewRejectsTruncatedAndPaddedValues() throws {
        let bytes = ListCodec.encode(Fixture.list(seed: 1, count: 3, language: "en"))
        for cut in [1, 9, bytes.count - 7] {
            Array(bytes.dropLast(cut)).withUnsafeBytes { b in
                expectHomefeedError("corrupt list value", "3 entries") { try ListView(b) }
            }
        }
        for short in 0..<7 {
            Array(bytes.prefix(short)).withUnsafeBytes { b in
                expectHomefeedError("too short") { try ListView(b) }
            }
        }
        (bytes + [0]).withUnsafeBytes { b in
            expectHomefeedError("corrupt list value") { try ListView(b) }
        }
    }

    @Test func videoRecordRoundTrip() throws {
        let records = [
            VideoRecord(id: "plain-1", availability: 0, countries: [], publishedAt: 1_700_000_000, language: "en"),
            VideoRecord(id: "allow", availability: 1, countries: [CountryCode("US")!, CountryCode("CA")!, CountryCode("MX")!],
                        publishedAt: -86_400, language: "es"),
            VideoRecord(id: "block", availability: 2, countries: [CountryCode("DE")!], publishedAt: Int64.max, language: ""),
            VideoRecord(id: "vidéo-🎬-東京 \"q\"", availability: 0, countries: [], publishedAt: 0, language: "ja"),
            VideoRecord(id: "", availability: 1, countries: (0..<300).map { CountryCode(raw: UInt16(0x4141 + $0)) },
                        publishedAt: 42, language: "zh-Hant"),
        ]
        var buf: [UInt8] = []
        for r in records {
            r.encode(into: &buf)
            let back = try buf.withUnsafeBytes { try VideoRecord.decode($0) }
            #expect(back == r)
        }
    }

    @Test func videoRecordRejectsBadBytes() throws {
        var buf: [UInt8] = []
        VideoRecord(id: "abc", availability: 1, countries: [CountryCode("US")!], publishedAt: 5, language: "en")
            .encode(into: &buf)
        var wrong = buf
        wrong[0] = 9
        wrong.withUnsafeBytes { b in expectHomefeedError("format 9") { try VideoRecord.decode(b) } }
        for cut in 1..<buf.count {
            Array(buf.dropLast(cut)).withUnsafeBytes { b in
                expectHomefeedError("corrupt video record") { try VideoRecord.decode(b) }
            }
        }
    }

    @Test func jsonTextEscaping() throws {
        let s = "a\"b\\c\nd\re\tf\u{01}g\u{1F}h\u{08}é🎬/"
        let escaped = JSONText.escaped(s)
        #expect(String(decoding: escaped, as: UTF8.self) == #""a\"b\\c\nd\re\tf\u0001g\u001fh\u0008é🎬/""#)
        #expect(JSONText.escaped("") == Array("\"\"".utf8))
        #expect(JSONText.escaped("plain") == Array("\"plain\"".utf8))
        // Every control character comes out as valid JSON that decodes to the original string.
        let all = String(decoding: (0..<0x80).map { UInt8($0) }, as: UTF8.self) + "ü東🎬"
        let json = Data(JSONText.escaped(all))
        let back = try JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]) as? String
        #expect(back == all)
        var appended: [UInt8] = [UInt8(ascii: "[")]
        JSONText.appendEscaped("x\ny".utf8, to: &appended)
        #expect(appended == Array("[x\\ny".utf8))
    }
}
