import HomefeedCore
import Glibc

/// What is wrong with a malformed row (RFC 4180 quoting errors).
public enum CSVIssue: Sendable, Equatable, CustomStringConvertible {
    /// A quoted field still open at the end of the file.
    case unterminatedQuote
    /// A `"` inside a field that did not start with one (`ab"c`).
    case quoteInUnquotedField
    /// Text between a closing quote and the next delimiter or line end (`"ab"c`).
    case textAfterClosingQuote
    /// A row longer than the reader's `maxRowBytes` (usually a stray quote swallowing the file); the reader skips
    /// to the next line break.
    case rowTooLong
    /// A quoted field that runs over line breaks into what should be the following rows — the row it makes does not
    /// parse, or has the wrong number of fields (a stray quote). Only the row's first line is dropped: the reader
    /// resumes on the next line, so one stray `"` never swallows the rest of the file.
    case quoteRunsAcrossLines

    public var description: String {
        switch self {
        case .unterminatedQuote: "unterminated quoted field"
        case .quoteInUnquotedField: "quote inside an unquoted field"
        case .textAfterClosingQuote: "text after a closing quote"
        case .rowTooLong: "row too long (unbalanced quote?)"
        case .quoteRunsAcrossLines: "a quoted field runs over the following lines (stray quote?)"
        }
    }
}

/// One row of a `CSVReader`, valid only inside the callback that receives it (it points into the reader's buffer).
/// Field `i` is its unquoted bytes; an index out of range gives an empty field (so optional columns are cheap).
public struct CSVRow {
    /// 1-based line number of the row's first line.
    public let line: Int
    /// Number of fields (for a malformed row, those parsed before the error).
    public let count: Int
    /// Non-nil when the row's quoting is malformed; the row should be skipped.
    public let issue: CSVIssue?
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let scratch: UnsafeRawPointer
    @usableFromInline let starts: UnsafePointer<Int>
    @usableFromInline let ends: UnsafePointer<Int>

    @usableFromInline
    init(line: Int, count: Int, issue: CSVIssue?, base: UnsafeRawPointer, scratch: UnsafeRawPointer,
         starts: UnsafePointer<Int>, ends: UnsafePointer<Int>) {
        self.line = line; self.count = count; self.issue = issue
        self.base = base; self.scratch = scratch; self.starts = starts; self.ends = ends
    }

    /// The bytes of field `i` (empty when `i` is out of range).
    @inlinable
    public subscript(i: Int) -> UnsafeRawBufferPointer {
        guard i >= 0 && i < count else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let s = starts[i], e = ends[i]
        if s >= 0 { return UnsafeRawBufferPointer(start: base + s, count: e - s) }
        // Unescaped quoted field, in the scratch buffer at offset ~s.
        return UnsafeRawBufferPointer(start: scratch + (~s), count: e - (~s))
    }

    /// Field `i` as a String (allocates; for headers, messages and small files).
    public func string(_ i: Int) -> String { String(decoding: self[i], as: UTF8.self) }

    /// All fields as Strings.
    public var strings: [String] { (0..<count).map { string($0) } }
}

/// Column names of a header row, matched by name (surrounding spaces ignored, first occurrence wins).
public struct CSVHeader: Sendable, Equatable {
    public let names: [String]
    public init(names: [String]) { self.names = names }
    public var count: Int { names.count }

    /// Index of the column named `name`, or nil.
    public func index(of name: String) -> Int? { names.firstIndex(of: name) }

    /// Index of a required column; the error names the file and the columns that are there.
    public func require(_ name: String, file: String) throws -> Int {
        guard let i = index(of: name) else {
            throw HomefeedError("\(file): missing required column '\(name)' (header: \(names.joined(separator: ", ")))")
        }
        return i
    }
}

/// A fast byte-level RFC 4180 reader that streams a file in large chunks.
///
/// Handles quoted fields with `""` escapes and embedded delimiters/line breaks, `\n` and `\r\n` line ends, a UTF-8
/// BOM, a last line without a line break, and rows spanning chunk boundaries. Blank lines are skipped. Malformed
/// quoting is reported per row (`CSVRow.issue`) and the reader resynchronizes at the next line break; it never traps
/// on any input. Fields are handed out zero-copy as `UnsafeRawBufferPointer`s into the read buffer (quoted fields
/// with `""` are unescaped into a scratch buffer).
public final class CSVReader {
    public let path: String
    public let delimiter: UInt8
    public let quoting: Bool
    /// Longest row kept in memory; a longer one is reported as `.rowTooLong` and skipped.
    public let maxRowBytes: Int
    /// Fields a row must have (set by `readHeader`; 0 = any). A row spanning several lines whose field count
    /// differs is taken for a stray quote: see `CSVIssue.quoteRunsAcrossLines`.
    public var expectedFields = 0
    /// Bytes read from the file so far.
    public private(set) var bytesRead = 0

    private var fd: Int32
    private var buf: UnsafeMutableRawPointer
    private var cap: Int
    private var pos = 0              // start of the unparsed data
    private var end = 0              // end of valid data
    private var eof = false
    private var started = false
    private var line = 1             // line number of the row at `pos`

    // Current row.
    private var starts: UnsafeMutablePointer<Int>
    private var ends: UnsafeMutablePointer<Int>
    private var fieldCap = 64
    private var nfields = 0
    private var scratch: UnsafeMutableRawPointer
    private var scratchCap = 4096
    private var scratchUsed = 0
    private var rowIssue: CSVIssue?
    private let classes: UnsafeMutablePointer<UInt8>   // 1 for bytes that end an unquoted run

    /// Opens `path`. `delimiter` is `,` by default (tab and `|` for MovieLens); `quoting: false` treats `"` as an
    /// ordinary byte (MovieLens `u.*` files). `chunkSize` is the read size (tests use tiny ones).
    public init(path: String, delimiter: UInt8 = UInt8(ascii: ","), quoting: Bool = true,
                chunkSize: Int = 8 << 20, maxRowBytes: Int = 1 << 20) throws {
        if delimiter == 10 || delimiter == 13 || (quoting && delimiter == 34) {
            throw HomefeedError("CSV delimiter cannot be a line break or the quote character")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw HomefeedError("cannot open \(path): \(String(cString: strerror(errno)))") }
        self.fd = fd
        self.path = path
        self.delimiter = delimiter
        self.quoting = quoting
        self.maxRowBytes = max(maxRowBytes, 1)
        cap = max(chunkSize, 1)
        buf = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
        starts = .allocate(capacity: fieldCap)
        ends = .allocate(capacity: fieldCap)
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchCap, alignment: 16)
        classes = .allocate(capacity: 256)
        classes.initialize(repeating: 0, count: 256)
        classes[Int(delimiter)] = 1
        classes[10] = 1
        if quoting { classes[34] = 1 }
    }

    deinit {
        if fd >= 0 { close(fd) }
        buf.deallocate(); starts.deallocate(); ends.deallocate(); scratch.deallocate(); classes.deallocate()
    }

    /// Size of the file in bytes (0 when unknown).
    public var fileSize: Int {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Reads the first row as the header; nil for an empty file. Throws on a malformed header.
    public func readHeader() throws -> CSVHeader? {
        var header: CSVHeader?
        var issue: CSVIssue?
        var issueLine = 0
        _ = try nextRow { row in
            if let i = row.issue { issue = i; issueLine = row.line; return }
            header = CSVHeader(names: (0..<row.count).map { i in
                var s = Substring(row.string(i))
                while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
                while let l = s.last, l == " " || l == "\t" { s.removeLast() }
                return String(s)
            })
        }
        if let issue { throw HomefeedError("\(path):\(issueLine): bad header row: \(issue)") }
        expectedFields = header?.count ?? 0
        return header
    }

    /// Calls `body` for every remaining row, in file order.
    @inlinable
    public func forEachRow(_ body: (CSVRow) throws -> Void) throws {
        while try nextRow(body) {}
    }

    /// Parses the next row and calls `body` with it; false at the end of the file.
    @usableFromInline
    func nextRow(_ body: (CSVRow) throws -> Void) throws -> Bool {
        if !started {
            started = true
            while end - pos < 3 && !eof { try refill() }
            if end - pos >= 3 && buf.load(fromByteOffset: pos, as: UInt8.self) == 0xEF
                && buf.load(fromByteOffset: pos + 1, as: UInt8.self) == 0xBB
                && buf.load(fromByteOffset: pos + 2, as: UInt8.self) == 0xBF {
                pos += 3
            }
        }
        while true {
            let r = parseRow()
            if r == Self.needMore {
                if end - pos >= maxRowBytes {
                    let rowLine = line
                    try skipLongRow()
                    let row = CSVRow(line: rowLine, count: 0, issue: .rowTooLong, base: UnsafeRawPointer(buf),
                                     scratch: UnsafeRawPointer(scratch), starts: starts, ends: ends)
                    try body(row)
                    return true
                }
                try refill()
                continue
            }
            if r == Self.atEOF { return false }
            // A row: [pos, r). Blank lines are skipped.
            let newlines = lineAdvance
            if newlines > 1 && (rowIssue != nil || (expectedFields > 0 && nfields != expectedFields)) {
                // A quote opened on this line ran over the following lines: drop this line only, resume on the next.
                let p = buf.assumingMemoryBound(to: UInt8.self)
                var i = pos
                while i < r && p[i] != 10 { i += 1 }
                let row = CSVRow(line: line, count: 0, issue: .quoteRunsAcrossLines, base: UnsafeRawPointer(buf),
                                 scratch: UnsafeRawPointer(scratch), starts: starts, ends: ends)
                pos = min(i + 1, r)
                line += 1
                try body(row)
                return true
            }
            pos = r
            if nfields == 1 && rowIssue == nil && !firstQuoted && ends[0] == starts[0] {
                line += newlines
                continue
            }
            let row = CSVRow(line: line, count: nfields, issue: rowIssue, base: UnsafeRawPointer(buf),
                             scratch: UnsafeRawPointer(scratch), starts: starts, ends: ends)
            line += newlines
            try body(row)
            return true
        }
    }

    private static let needMore = -1
    private static let atEOF = -2
    private var lineAdvance = 0
    private var firstQuoted = false

    @inline(__always)
    private func addField(_ s: Int, _ e: Int) {
        if nfields == fieldCap { growFields() }
        starts[nfields] = s; ends[nfields] = e
        nfields += 1
    }

    private func growFields() {
        let n = fieldCap * 2
        let s = UnsafeMutablePointer<Int>.allocate(capacity: n), e = UnsafeMutablePointer<Int>.allocate(capacity: n)
        s.update(from: starts, count: fieldCap); e.update(from: ends, count: fieldCap)
        starts.deallocate(); ends.deallocate()
        starts = s; ends = e; fieldCap = n
    }

    @inline(__always)
    private func appendScratch(_ from: UnsafeRawPointer, _ n: Int) {
        if scratchUsed + n > scratchCap {
            var c = scratchCap * 2
            while c < scratchUsed + n { c *= 2 }
            let s = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
            s.copyMemory(from: scratch, byteCount: scratchUsed)
            scratch.deallocate()
            scratch = s; scratchCap = c
        }
        (scratch + scratchUsed).copyMemory(from: from, byteCount: n)
        scratchUsed += n
    }

    /// Parses one row starting at `pos`. Returns the offset just past it, `needMore` when the buffer ends before the
    /// row does (and the file has more), or `atEOF` when nothing is left. Sets nfields, rowIssue, lineAdvance.
    private func parseRow() -> Int {
        let p = buf.assumingMemoryBound(to: UInt8.self)
        let end = self.end, eof = self.eof, delim = self.delimiter, cls = self.classes
        let quoting = self.quoting
        var i = pos
        nfields = 0; scratchUsed = 0; rowIssue = nil; firstQuoted = false
        var newlines = 1
        if i >= end { return eof ? Self.atEOF : Self.needMore }
        while true {
            // Start of a field at i.
            if i >= end {
                if !eof { return Self.needMore }
                addField(i, i)       // empty last field after a trailing delimiter at EOF
                lineAdvance = newlines
                return i
            }
            if quoting && p[i] == 34 {
                if nfields == 0 { firstQuoted = true }
                i += 1
                var seg = i
                let fieldScratchStart = scratchUsed
                var unescaped = false
                while true {
                    while i < end && p[i] != 34 {
                        if p[i] == 10 { newlines += 1 }
                        i += 1
                    }
                    if i >= end {
                        if !eof { return Self.needMore }
                        rowIssue = .unterminatedQuote
                        lineAdvance = newlines
                        return end
                    }
                    // p[i] is a quote: escaped ("") or closing?
                    if i + 1 >= end && !eof { return Self.needMore }
                    if i + 1 < end && p[i + 1] == 34 {
                        appendScratch(UnsafeRawPointer(p + seg), i + 1 - seg)
                        unescaped = true
                        i += 2; seg = i
                        continue
                    }
                    break
                }
                if unescaped {
                    appendScratch(UnsafeRawPointer(p + seg), i - seg)
                    addField(~fieldScratchStart, scratchUsed)
                } else {
                    addField(seg, i)
                }
                i += 1   // past the closing quote
                if i >= end {
                    if !eof { return Self.needMore }
                    lineAdvance = newlines
                    return i
                }
                let c = p[i]
                if c == delim { i += 1; continue }
                if c == 10 { lineAdvance = newlines; return i + 1 }
                if c == 13 {
                    if i + 1 >= end {
                        if !eof { return Self.needMore }
                        lineAdvance = newlines
                        return i + 1
                    }
                    if p[i + 1] == 10 { lineAdvance = newlines; return i + 2 }
                }
                rowIssue = .textAfterClosingQuote
                return skipLine(from: i, newlines: newlines)
            }
            // Unquoted field.
            let s = i
            while i < end && cls[Int(p[i])] == 0 { i += 1 }
            if i >= end {
                if !eof { return Self.needMore }
                var e = i
                if e > s && p[e - 1] == 13 { e -= 1 }
                addField(s, e)
                lineAdvance = newlines
                return i
            }
            let c = p[i]
            if c == delim { addField(s, i); i += 1; continue }
            if c == 10 {
                var e = i
                if e > s && p[e - 1] == 13 { e -= 1 }
                addField(s, e)
                lineAdvance = newlines
                return i + 1
            }
            // A quote inside an unquoted field.
            rowIssue = .quoteInUnquotedField
            return skipLine(from: i, newlines: newlines)
        }
    }

    /// After a malformed field: the row ends at the next line break (or EOF).
    private func skipLine(from start: Int, newlines: Int) -> Int {
        let p = buf.assumingMemoryBound(to: UInt8.self)
        var i = start
        while i < end && p[i] != 10 { i += 1 }
        if i >= end {
            if !eof { return Self.needMore }
            lineAdvance = newlines
            return end
        }
        lineAdvance = newlines
        return i + 1
    }

    /// Drops the current (too long) row up to and including the next line break, ignoring quotes.
    private func skipLongRow() throws {
        while true {
            let p = buf.assumingMemoryBound(to: UInt8.self)
            var i = pos
            while i < end && p[i] != 10 { i += 1 }
            if i < end { pos = i + 1; line += 1; return }
            pos = end
            if eof { return }
            try refill()
        }
    }

    /// Keeps the unparsed tail, grows the buffer when one row fills it, and reads the next chunk.
    private func refill() throws {
        if pos > 0 {
            let keep = end - pos
            if keep > 0 { buf.copyMemory(from: buf + pos, byteCount: keep) }
            end = keep; pos = 0
        }
        if end == cap {
            let n = cap * 2
            let b = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 16)
            b.copyMemory(from: buf, byteCount: end)
            buf.deallocate()
            buf = b; cap = n
        }
        while true {
            let n = read(fd, buf + end, cap - end)
            if n > 0 { end += n; bytesRead += n; return }
            if n == 0 { eof = true; return }
            if errno == EINTR { continue }
            throw HomefeedError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
    }
}
