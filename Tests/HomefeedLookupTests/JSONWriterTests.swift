import Testing
@testable import HomefeedLookup
@testable import HomefeedStore
import HomefeedCore

/// The response writer's inline copies (one path per length class) and its append into a reused buffer.
@Suite struct JSONWriterTests {
    @Test func copiesEveryLengthExactlyAndAppendsAfterExistingBytes() {
        let source: [UInt8] = (0..<80).map { UInt8(33 + $0) }
        for n in 0...source.count {
            var out: [UInt8] = [7, 7]
            source.withUnsafeBytes { src in
                JSONWriter.append(to: &out, capacity: n + 1) { w in
                    w.write(src.baseAddress!, n)
                    w.write(byte: 9)
                }
            }
            #expect(out == [7, 7] + source[..<n] + [9], "length \(n)")
        }
    }

    @Test func writesPastTheCapacityAreDropped() {
        var out: [UInt8] = []
        JSONWriter.append(to: &out, capacity: 5) { w in
            w.write("abc")
            w.write("defgh")   // would end at 8 > 5: dropped whole
            w.write("de")
        }
        #expect(String(decoding: out, as: UTF8.self) == "abcde")
    }

    @Test func scoresPrintWithSixDecimalsAtMost() {
        var out: [UInt8] = []
        JSONWriter.append(to: &out, capacity: 200) { w in
            for f: Float in [0, 1, 0.5, 12.25, -3.125, 1234567, .nan] { w.writeScore(f); w.write(byte: 32) }
        }
        #expect(String(decoding: out, as: UTF8.self) == "0 1 0.5 12.25 -3.125 1234567 0 ")
    }
}

/// The packed per-video records: ids inline up to 18 quoted bytes and out of line beyond, every filter fact.
@Suite struct FilterTableTests {
    @Test func recordsKeepEveryIdAndFilterFact() throws {
        let us = try #require(CountryCode("US")), de = try #require(CountryCode("DE")), fr = try #require(CountryCode("FR"))
        let ids = ["a", String(repeating: "x", count: 16), String(repeating: "y", count: 17), String(repeating: "z", count: 300),
                   "q\"uote", "allow", "block", "old"]
        var videos = VideoTable()
        for (i, id) in ids.enumerated() {
            let availability: UInt8 = id == "allow" ? 1 : id == "block" ? 2 : 0
            let countries = availability == 0 ? [] : [us, de]
            videos.append(VideoRecord(id: id, availability: availability, countries: countries,
                                      publishedAt: id == "old" ? 100 : 1000 + Int64(i), language: "en"))
        }
        let blocked = ids.map { $0 == "a" }
        let t = FilterTable(videos: videos, blocked: blocked)
        for v in ids.indices {
            var out: [UInt8] = []
            JSONWriter.append(to: &out, capacity: 700) { t.writeJSONID(v, to: &$0) }
            #expect(out == JSONText.escaped(ids[v]), "video \(v)")
            var id = ids[v]
            #expect(id.withUTF8 { t.index(ofID: UnsafeRawBufferPointer($0)) } == UInt32(v))
        }
        #expect(t.maxIDBytes == 302)
        func passing(_ region: CountryCode, _ minPublished: Int64 = 0) -> [String] {
            ids.indices.filter { t.passes($0, region: region, minPublished: minPublished) }.map { ids[$0] }
        }
        let plain = Array(ids[1...4])
        #expect(passing(us) == plain + ["allow", "old"])          // "a" is blocked; "block" is blocked in US
        #expect(passing(fr) == plain + ["block", "old"])          // "allow" lists US and DE only
        #expect(passing(.unknown) == plain + ["block", "old"])    // no region: allow-listed videos stay out
        #expect(passing(fr, 500) == plain + ["block"])            // "old" was published at 100
        #expect(!t.passes(ids.count, region: us, minPublished: 0))  // an index past the table
    }
}
