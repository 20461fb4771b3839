#if canImport(Glibc)
import Glibc
#endif

/// An error with a message meant for the operator: it names what failed and where.
public struct HomefeedError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The process exit status a command reports for this error (1; 75 = EX_TEMPFAIL: try again later).
    public var exitCode: Int32
    public init(_ message: String, exitCode: Int32 = 1) { self.message = message; self.exitCode = exitCode }
    /// Another command holds the store: schedulers skip this run rather than alert (jobs/refresh).
    public static let busyExitCode: Int32 = 75
    public var description: String { message }
}

/// Standard error output (errors, progress) without Foundation buffering surprises.
public enum Log {
    public static func error(_ s: String) { write("error: " + s + "\n") }
    public static func info(_ s: String) { write(s + "\n") }
    public static func warn(_ s: String) { write("warning: " + s + "\n") }
    public static func write(_ s: String) { writeAll(2, s) }
}

/// Writes to standard output in one call per string (for command results).
public func printOut(_ s: String) { writeAll(1, s + "\n") }

/// write(2) until every byte is out (or the descriptor fails).
func writeAll(_ fd: Int32, _ text: String) {
    var s = text
    s.withUTF8 { p in
        var off = 0
        while off < p.count {
            let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
            if n <= 0 { break }
            off += n
        }
    }
}
