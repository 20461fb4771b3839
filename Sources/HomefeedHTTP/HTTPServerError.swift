/// A failed system call, with the call, the address or object involved, and strerror.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let errno: Int32
    public init(_ message: String, errno: Int32 = 0) {
        self.message = message
        self.errno = errno
    }
    public var description: String {
        errno == 0 ? message : "\(message): \(Posix.errorString(errno)) (errno \(errno))"
    }
}
