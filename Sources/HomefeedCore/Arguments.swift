/// A tiny command-line parser: `--name value`, `--name=value`, boolean `--flag`, and positionals.
/// Every command declares its options so `--help` and unknown-option errors come for free.
public struct Arguments {
    public struct Option {
        public var name: String
        public var valueName: String?      // nil = boolean flag
        public var help: String
        public init(_ name: String, _ valueName: String?, _ help: String) {
            self.name = name; self.valueName = valueName; self.help = help
        }
    }

    public let command: String
    public let usage: String
    public let options: [Option]
    public private(set) var values: [String: String] = [:]
    public private(set) var flags: Set<String> = []
    public private(set) var positionals: [String] = []
    public private(set) var helpRequested = false

    /// Parses `args` (without the program and command names). Throws on unknown options or missing values.
    public init(command: String, usage: String, options: [Option], args: [String]) throws {
        self.command = command; self.usage = usage
        self.options = options + [Option("help", nil, "show this help")]
        var i = 0
        while i < args.count {
            let a = args[i]
            i += 1
            guard a.hasPrefix("--"), a.count > 2 else {
                if a == "-h" { helpRequested = true } else { positionals.append(a) }
                continue
            }
            var name = String(a.dropFirst(2))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...]); name = String(name[..<eq])
            }
            guard let opt = self.options.first(where: { $0.name == name }) else {
                throw HomefeedError("\(command): unknown option --\(name) (see --help)")
            }
            if opt.name == "help" { helpRequested = true; continue }
            if opt.valueName == nil {
                guard inline == nil else { throw HomefeedError("\(command): --\(name) takes no value") }
                flags.insert(name)
            } else if let v = inline {
                values[name] = v
            } else {
                guard i < args.count else { throw HomefeedError("\(command): --\(name) needs a value \(opt.valueName!)") }
                values[name] = args[i]; i += 1
            }
        }
    }

    public var helpText: String {
        var s = "usage: \(usage)\n\noptions:\n"
        for o in options {
            let left = "  --\(o.name)" + (o.valueName.map { " \($0)" } ?? "")
            s += left.padding(to: 30) + o.help + "\n"
        }
        return s
    }

    public func string(_ name: String) -> String? { values[name] }
    public func flag(_ name: String) -> Bool { flags.contains(name) }

    public func required(_ name: String) throws -> String {
        guard let v = values[name] else { throw HomefeedError("\(command): --\(name) is required (see --help)") }
        return v
    }

    public func int(_ name: String) throws -> Int? {
        guard let v = values[name] else { return nil }
        guard let i = Int(v) else { throw HomefeedError("\(command): --\(name) expects an integer, got '\(v)'") }
        return i
    }

    public func double(_ name: String) throws -> Double? {
        guard let v = values[name] else { return nil }
        guard let d = Double(v) else { throw HomefeedError("\(command): --\(name) expects a number, got '\(v)'") }
        return d
    }

    /// A time option: Unix seconds or ISO 8601.
    public func time(_ name: String) throws -> Int64? {
        guard let v = values[name] else { return nil }
        guard let t = TimeFormat.parse(v) else {
            throw HomefeedError("\(command): --\(name) expects Unix seconds or ISO 8601 (2024-11-22T18:00:00Z), got '\(v)'")
        }
        return t
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
