import Foundation
import Glibc
import HomefeedCore
import HomefeedData

/// A fresh directory under /tmp, removed when the value is deinitialized.
final class TempDir {
    let path: String

    init() {
        var template = Array("/tmp/homefeed-data-test-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = p.map { String(cString: $0) } ?? "/tmp/homefeed-data-test-\(UInt64.random(in: 0...UInt64.max))"
        if p == nil { try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `text` (UTF-8) to `name` and returns the full path.
    @discardableResult
    func write(_ name: String, _ text: String) -> String { write(name, bytes: Array(text.utf8)) }

    @discardableResult
    func write(_ name: String, bytes: [UInt8]) -> String {
        let full = path + "/" + name
        let dir = (full as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try? Data(bytes).write(to: URL(fileURLWithPath: full))
        return full
    }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? ""
    }

    func sub(_ name: String) -> String { path + "/" + name }
}

/// A parsed row, owned (for assertions).
struct Row: Equatable, CustomStringConvertible {
    var line: Int
    var fields: [String]
    var issue: CSVIssue?
    var description: String { "\(line): \(fields)\(issue.map { " [\($0)]" } ?? "")" }
}

/// Every row of a file (header included, unless readHeader is used by the caller).
func readRows(_ path: String, delimiter: UInt8 = UInt8(ascii: ","), quoting: Bool = true,
              chunkSize: Int = 8 << 20) throws -> [Row] {
    let r = try CSVReader(path: path, delimiter: delimiter, quoting: quoting, chunkSize: chunkSize)
    var rows: [Row] = []
    try r.forEachRow { row in rows.append(Row(line: row.line, fields: row.strings, issue: row.issue)) }
    return rows
}

func config(maxBad: Double = 0.01) -> HomefeedConfig.Data {
    var c = HomefeedConfig().data
    c.maxBadRowFraction = maxBad
    return c
}
