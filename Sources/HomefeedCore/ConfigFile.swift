/// The config file format: a small TOML subset — `[section]`, `key = value`, `# comment`; values are numbers,
/// booleans, or strings (quoted or bare). Keys are addressed as `section.key`.
public struct ConfigFile: Sendable {
    public private(set) var entries: [String: String] = [:]
    /// `section.key` → "path:line", to name where a bad value came from.
    public private(set) var origins: [String: String] = [:]

    public init() {}

    public init(text: String, path: String = "<config>") throws {
        var section = ""
        var lineNo = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            var line = Substring(raw)
            if let hash = Self.commentStart(line) { line = line[..<hash] }
            let t = line.trimmingSpaces()
            if t.isEmpty { continue }
            if t.hasPrefix("[") {
                guard t.hasSuffix("]"), t.count > 2 else { throw HomefeedError("\(path):\(lineNo): malformed section header '\(t)'") }
                section = String(t.dropFirst().dropLast()).trimmingSpaces()
                continue
            }
            guard let eq = t.firstIndex(of: "=") else { throw HomefeedError("\(path):\(lineNo): expected key = value, got '\(t)'") }
            let key = t[..<eq].trimmingSpaces()
            var value = t[t.index(after: eq)...].trimmingSpaces()
            guard !key.isEmpty else { throw HomefeedError("\(path):\(lineNo): empty key") }
            if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else { throw HomefeedError("\(path):\(lineNo): unterminated string") }
                value = String(value.dropFirst().dropLast())
            }
            let full = section.isEmpty ? key : section + "." + key
            entries[full] = value
            origins[full] = "\(path):\(lineNo)"
        }
    }

    /// A `#` outside double quotes starts a comment.
    private static func commentStart(_ s: Substring) -> Substring.Index? {
        var quoted = false
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if c == "\"" { quoted.toggle() } else if c == "#" && !quoted { return i }
            i = s.index(after: i)
        }
        return nil
    }

    public subscript(key: String) -> String? { entries[key] }

    func where_(_ key: String) -> String { origins[key] ?? key }

    public func int(_ key: String, _ into: inout Int) throws {
        guard let v = entries[key] else { return }
        guard let i = Int(v.filter { $0 != "_" }) else { throw HomefeedError("\(where_(key)): \(key) expects an integer, got '\(v)'") }
        into = i
    }
    public func double(_ key: String, _ into: inout Double) throws {
        guard let v = entries[key] else { return }
        guard let d = Double(v) else { throw HomefeedError("\(where_(key)): \(key) expects a number, got '\(v)'") }
        into = d
    }
    public func bool(_ key: String, _ into: inout Bool) throws {
        guard let v = entries[key] else { return }
        switch v { case "true": into = true; case "false": into = false
        default: throw HomefeedError("\(where_(key)): \(key) expects true or false, got '\(v)'") }
    }
    public func string(_ key: String, _ into: inout String) {
        if let v = entries[key] { into = v }
    }

    /// Keys present in the file that no reader asked for: reported so typos do not pass silently.
    public func unknownKeys(known: Set<String>) -> [String] {
        entries.keys.filter { !known.contains($0) }.sorted()
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
