#if canImport(Glibc)
import Glibc
#endif

/// An error with a message meant for the operator: it names what failed and where.
public struct HomefeedError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Standard error output (errors, progress) without Foundation buffering surprises.
public enum Log {
    public static func error(_ s: String) { write("error: " + s + "\n") }
    public static func info(_ s: String) { write(s + "\n") }
    public static func write(_ s: String) {
        var s = s
        s.withUTF8 { p in
            var off = 0
            while off < p.count {
                let n = Glibc.write(2, p.baseAddress! + off, p.count - off)
                if n <= 0 { break }
                off += n
            }
        }
    }
}

/// Writes to standard output in one call per string (for command results).
public func printOut(_ s: String) {
    var s = s + "\n"
    s.withUTF8 { p in
        var off = 0
        while off < p.count {
            let n = Glibc.write(1, p.baseAddress! + off, p.count - off)
            if n <= 0 { break }
            off += n
        }
    }
}
