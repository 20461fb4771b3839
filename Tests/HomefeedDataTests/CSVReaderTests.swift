import HomefeedCore
import HomefeedData
import Testing

@Suite struct CSVReaderTests {
    /// A file exercising most of the syntax; the expected rows are checked at every chunk size from 1 to 16 bytes
    /// (so every row spans chunk boundaries at every offset) and at the default size.
    static let tricky = "\u{FEFF}id,text,n\r\n"
        + "1,plain,10\r\n"
        + "2,\"with, comma\",20\n"
        + "3,\"say \"\"hi\"\"\",30\n"
        + "\n"
        + "4,\"two\nlines\",40\n"
        + "5,\"\",\n"
        + "6,\"crlf\r\ninside\",60\r\n"
        + "\r\n"
        + "7,\"\"\"\",70"
    static let trickyRows = [
        Row(line: 1, fields: ["id", "text", "n"]),
        Row(line: 2, fields: ["1", "plain", "10"]),
        Row(line: 3, fields: ["2", "with, comma", "20"]),
        Row(line: 4, fields: ["3", "say \"hi\"", "30"]),
        Row(line: 6, fields: ["4", "two\nlines", "40"]),
        Row(line: 8, fields: ["5", "", ""]),
        Row(line: 9, fields: ["6", "crlf\r\ninside", "60"]),
        Row(line: 12, fields: ["7", "\"", "70"]),
    ]

    @Test func quotingCRLFBOMMultilineAtEveryChunkSize() throws {
        let dir = TempDir()
        let path = dir.write("t.csv", Self.tricky)
        #expect(try readRows(path) == Self.trickyRows)
        for chunk in 1...16 {
            #expect(try readRows(path, chunkSize: chunk) == Self.trickyRows, "chunk size \(chunk)")
        }
    }

    @Test func finalLineWithoutNewlineAndTrailingDelimiters() throws {
        let dir = TempDir()
        let a = dir.write("a.csv", "a,b,\nc,d")
        #expect(try readRows(a) == [Row(line: 1, fields: ["a", "b", ""]), Row(line: 2, fields: ["c", "d"])])
        let b = dir.write("b.csv", "x,\"q\"")
        #expect(try readRows(b, chunkSize: 3) == [Row(line: 1, fields: ["x", "q"])])
        let c = dir.write("c.csv", "x,")
        #expect(try readRows(c) == [Row(line: 1, fields: ["x", ""])])
        let empty = dir.write("e.csv", "")
        #expect(try readRows(empty).isEmpty)
        let bomOnly = dir.write("bom.csv", "\u{FEFF}")
        #expect(try readRows(bomOnly).isEmpty)
    }

    @Test func malformedQuotingIsReportedPerRowAndReaderResyncs() throws {
        let dir = TempDir()
        let path = dir.write("bad.csv", "1,ab\"c,3\n2,\"ok\"x,4\n3,fine,5\n4,\"open\n5,never,closed\n")
        for chunk in [4, 8 << 20] {
            let rows = try readRows(path, chunkSize: chunk)
            #expect(rows.count == 5, "chunk \(chunk): \(rows)")
            #expect(rows[0].line == 1 && rows[0].issue == .quoteInUnquotedField)
            #expect(rows[1].line == 2 && rows[1].issue == .textAfterClosingQuote)
            #expect(rows[2] == Row(line: 3, fields: ["3", "fine", "5"]))
            // The quote opened on line 4 never closes: line 4 is dropped, line 5 is read again as a row of its own.
            #expect(rows[3].line == 4 && rows[3].issue == .quoteRunsAcrossLines)
            #expect(rows[4] == Row(line: 5, fields: ["5", "never", "closed"]))
        }
        #expect(CSVIssue.unterminatedQuote.description == "unterminated quoted field")

        // A row longer than maxRowBytes (here a stray quote) is reported and skipped up to the next line break.
        let long = dir.write("long.csv", "1,2\n3,\"stray quote, 0123456789\n4,5\n6,7")
        for chunk in [1, 4, 64] {
            let r = try CSVReader(path: long, chunkSize: chunk, maxRowBytes: 16)
            var rows: [Row] = []
            try r.forEachRow { rows.append(Row(line: $0.line, fields: $0.strings, issue: $0.issue)) }
            #expect(rows == [Row(line: 1, fields: ["1", "2"]), Row(line: 2, fields: [], issue: .rowTooLong),
                             Row(line: 3, fields: ["4", "5"]), Row(line: 4, fields: ["6", "7"])], "chunk \(chunk)")
        }
    }

    /// One stray `"` must cost one row, not the rest of the file (it used to open a field that ran to EOF).
    @Test func aStrayQuoteCostsOneRowAtEveryChunkSize() throws {
        let dir = TempDir()
        var text = "user_id,video_id,event,watch_seconds,timestamp,device,query\n"
        for i in 1...300 {
            text += i == 150 ? "u4,v1,watch,\"10,1791490360,web,\n" : "u\(i),v\(i),watch,10,1791490360,web,\n"
        }
        text += "u999,v1,search,0,1791490360,web,\"a \"\"quoted\"\" query\"\n"   // a later quote that could close it
        let path = dir.write("i.csv", text)
        for chunk in [7, 64, 4096, 8 << 20] {
            let r = try CSVReader(path: path, chunkSize: chunk)
            let header = try #require(try r.readHeader())
            #expect(r.expectedFields == header.count)
            var good = 0
            var bad: [(Int, CSVIssue)] = []
            try r.forEachRow { row in
                if let issue = row.issue { bad.append((row.line, issue)) } else { good += 1 }
            }
            #expect(good == 300, "chunk \(chunk)")
            #expect(bad.count == 1 && bad.first?.0 == 151 && bad.first?.1 == .quoteRunsAcrossLines, "chunk \(chunk): \(bad)")
        }
        // A legitimate quoted field over two lines still parses as one row.
        let ok = dir.write("ok.csv", "a,b\n\"two\nlines\",x\n1,2\n")
        let r = try CSVReader(path: ok)
        _ = try r.readHeader()
        var rows: [String] = []
        try r.forEachRow { rows.append($0.string(0)) ; #expect($0.issue == nil) }
        #expect(rows == ["two\nlines", "1"])
    }

    @Test func otherDelimitersAndUnquotedMode() throws {
        let dir = TempDir()
        let tsv = dir.write("t.tsv", "1\t2\t\"a\tb\"\n3\t4\t5\n")
        #expect(try readRows(tsv, delimiter: 9) == [Row(line: 1, fields: ["1", "2", "a\tb"]),
                                                   Row(line: 2, fields: ["3", "4", "5"])])
        let pipe = dir.write("p.txt", "1|Say \"x\"|01-Jan-1995||\n")
        #expect(try readRows(pipe, delimiter: UInt8(ascii: "|"), quoting: false)
                == [Row(line: 1, fields: ["1", "Say \"x\"", "01-Jan-1995", "", ""])])
        #expect(throws: HomefeedError.self) { try CSVReader(path: pipe, delimiter: UInt8(ascii: "\"")) }
    }

    @Test func headerMappingByName() throws {
        let dir = TempDir()
        let path = dir.write("h.csv", "extra, b ,a,extra\n1,2,3,4\n")
        let r = try CSVReader(path: path)
        let h = try #require(try r.readHeader())
        #expect(h.names == ["extra", "b", "a", "extra"])
        #expect(h.index(of: "a") == 2)
        #expect(h.index(of: "b") == 1)
        #expect(h.index(of: "extra") == 0)
        #expect(h.index(of: "missing") == nil)
        #expect(try h.require("a", file: "h.csv") == 2)
        let err = #expect(throws: HomefeedError.self) { try h.require("c", file: "h.csv") }
        #expect(err?.message.contains("h.csv") == true && err?.message.contains("'c'") == true)
        var values: [String] = []
        try r.forEachRow { row in values = [row.string(2), row.string(1), row.string(99), row.string(-1)] }
        #expect(values == ["3", "2", "", ""])
    }

    @Test func missingFileError() {
        let err = #expect(throws: HomefeedError.self) { try CSVReader(path: "/nonexistent/dir/x.csv") }
        #expect(err?.message.contains("/nonexistent/dir/x.csv") == true)
    }

    @Test func garbageNeverTraps() throws {
        let dir = TempDir()
        var rng = SeededRandom(seed: 42)
        let alphabet: [UInt8] = Array("ab,\"\r\n\t|".utf8) + [0xEF, 0xBB, 0xBF, 0]
        for round in 0..<20 {
            let bytes = (0..<(200 + round * 13)).map { _ in alphabet[rng.nextInt(alphabet.count)] }
            let path = dir.write("g\(round).csv", bytes: bytes)
            let whole = try readRows(path)
            let chunked = try readRows(path, chunkSize: 1 + round % 7)
            #expect(whole == chunked, "round \(round)")
            var lastLine = 0
            for r in whole { #expect(r.line > lastLine); lastLine = r.line }
        }
    }

    @Test func writerRoundTrip() throws {
        let dir = TempDir()
        let path = dir.sub("w.csv")
        let w = try CSVWriter(path: path)
        w.row(["plain", "with, comma", "say \"hi\"", "two\nlines", "cr\rhere", ""])
        w.field(-42); w.field(Int64(1_732_300_000)); w.field(6000.0); w.field(123.5); w.emptyField(); w.endRow()
        w.emptyField(); w.endRow()   // a lone empty field must not read back as a blank line
        w.field("é,ü"); w.endRow()
        #expect(w.rows == 4)
        try w.close()
        #expect(try readRows(path) == [
            Row(line: 1, fields: ["plain", "with, comma", "say \"hi\"", "two\nlines", "cr\rhere", ""]),
            Row(line: 3, fields: ["-42", "1732300000", "6000", "123.5", ""]),
            Row(line: 4, fields: [""]),
            Row(line: 5, fields: ["é,ü"]),
        ])
        #expect(dir.read("w.csv").hasPrefix("plain,\"with, comma\",\"say \"\"hi\"\"\",\"two\nlines\""))
    }
}

@Suite struct ByteParseTests {
    func d(_ s: String) -> Double? { var s = s; return s.withUTF8 { ByteParse.double(UnsafeRawBufferPointer($0)) } }
    func i(_ s: String) -> Int64? { var s = s; return s.withUTF8 { ByteParse.int(UnsafeRawBufferPointer($0)) } }

    @Test func numbers() {
        #expect(d("123.5") == 123.5)
        #expect(d("0") == 0)
        #expect(d(" 7 ") == 7)
        #expect(d("-0.25") == -0.25)
        #expect(d(".5") == 0.5)
        #expect(d("1e3") == 1000)
        #expect(d("12345678901234567890") == 1.234567890123456789e19)
        #expect(d("") == nil)
        #expect(d("abc") == nil)
        #expect(d("inf") == nil)
        #expect(d("nan") == nil)
        #expect(d("1.2.3") == nil)
        #expect(d("0x10") == nil)
        #expect(i("42") == 42)
        #expect(i("-7") == -7)
        #expect(i("4.5") == nil)
        #expect(i("") == nil)
        #expect(i("1234567890123456789") == nil)
    }

    @Test func latin1() {
        let bytes: [UInt8] = [0x4D, 0x69, 0x73, 0xE9, 0x72, 0x61, 0x62, 0x6C, 0x65, 0x73]   // "Misérables" in Latin-1
        #expect(bytes.withUnsafeBytes { ByteParse.utf8OrLatin1($0) } == "Misérables")
        let utf8 = Array("Misérables".utf8)
        #expect(utf8.withUnsafeBytes { ByteParse.utf8OrLatin1($0) } == "Misérables")
    }
}

@Suite struct InternerTests {
    @Test func internAndLookUp() {
        var t = Interner()
        #expect(t.intern("a") == 0)
        #expect(t.intern("bb") == 1)
        #expect(t.intern("a") == 0)
        #expect(t.intern("") == 2)
        #expect(t.index(of: "") == 2)
        #expect(t.index(of: "c") == nil)
        #expect(t[1] == "bb")
        #expect(t.count == 3)
        // Growth, many lengths (hash/compare paths for 1-3, 4-7, 8, 9-32, >32 and ≥ 65535 bytes).
        var keys: [String] = []
        for k in 0..<5000 { keys.append(String(repeating: "x", count: k % 40) + "\(k)") }
        keys.append(String(repeating: "L", count: 70_000))
        for k in keys { _ = t.intern(k) }
        #expect(t.count == 3 + keys.count)
        for (n, k) in keys.enumerated() { #expect(t.index(of: k) == Int32(3 + n)) }
        #expect(t.index(of: String(repeating: "L", count: 69_999)) == nil)
        t.withLookup { l in
            var s = "4999"
            s = String(repeating: "x", count: 4999 % 40) + s
            #expect(s.withUTF8 { l.index(of: UnsafeRawBufferPointer($0)) } == Int32(3 + 4999))
        }
        // appendIfNew: one probe, nil for an existing key; copies stay independent (copy-on-write table).
        var a = Interner()
        let k1 = Array("key-1".utf8), k2 = Array("a-much-longer-key-2".utf8)
        #expect(k1.withUnsafeBytes { a.appendIfNew($0) } == 0)
        #expect(k1.withUnsafeBytes { a.appendIfNew($0) } == nil)
        let snapshot = a
        #expect(k2.withUnsafeBytes { a.appendIfNew($0) } == 1)
        #expect(snapshot.index(of: "a-much-longer-key-2") == nil && snapshot.count == 1)
        #expect(a.index(of: "a-much-longer-key-2") == 1)
        for k in 0..<300_000 { _ = Array("id\(k)".utf8).withUnsafeBytes { a.appendIfNew($0) } }   // a huge-page table
        #expect(a.count == 300_002 && a.index(of: "id299999") == 300_001 && a.index(of: "id300000") == nil)
        #expect(snapshot.count == 1 && snapshot.index(of: "key-1") == 0)

        var titles = Interner(unique: false)
        titles.append("same"); titles.append("same")
        #expect(titles.count == 2 && titles[1] == "same" && titles.index(of: "same") == nil)
        titles.withLookup { l in #expect(Array("same".utf8).withUnsafeBytes { l.index(of: $0) } == nil) }
    }
}
