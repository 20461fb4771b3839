import CSystem
import Glibc

/// Thin POSIX helpers shared by the server and the client.
enum Posix {
    static func errorString(_ code: Int32) -> String {
        guard let s = strerror(code) else { return "error \(code)" }
        return String(cString: s)
    }

    @discardableResult
    static func setNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
    }

    static func setIntOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var v = value
        _ = setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    static func setTimeout(_ fd: Int32, _ name: Int32, seconds: Double) {
        let s = max(seconds, 0.001)
        var tv = timeval(tv_sec: Int(s), tv_usec: Int((s - s.rounded(.down)) * 1_000_000))
        _ = setsockopt(fd, SOL_SOCKET, name, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Nanoseconds on CLOCK_MONOTONIC (vDSO, no syscall).
    static func monotonicNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    /// CPUs this process may run on (so `taskset -c 0` means one worker), else the online count.
    static func availableCPUs() -> Int {
        if let allowed = allowedCPUsFromProc(), allowed > 0 { return allowed }
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// Counts the bits of "Cpus_allowed:" in /proc/self/status (sched_getaffinity is not exported to Swift).
    private static func allowedCPUsFromProc() -> Int? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("Cpus_allowed:") {
            var count = 0
            for ch in line.dropFirst("Cpus_allowed:".count) {
                if let nibble = ch.hexDigitValue { count += nibble.nonzeroBitCount }
            }
            return count
        }
        return nil
    }

    /// A resolved socket address.
    struct Address {
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        var family: Int32 { Int32(storage.ss_family) }
    }

    /// Resolves numeric or named hosts (IPv4 or IPv6) for a TCP port.
    static func resolve(host: String, port: Int, passive: Bool) throws(HTTPServerError) -> [Address] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            let reason = rc == 0 ? "no addresses" : String(cString: gai_strerror(rc))
            throw HTTPServerError("cannot resolve host '\(host)': \(reason)")
        }
        defer { freeaddrinfo(first) }
        var out: [Address] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let ai = node {
            if let sa = ai.pointee.ai_addr, Int(ai.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var a = Address()
                withUnsafeMutableBytes(of: &a.storage) { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(ai.pointee.ai_addrlen)))
                }
                a.length = ai.pointee.ai_addrlen
                out.append(a)
            }
            node = ai.pointee.ai_next
        }
        return out
    }

    static func withSockaddr<R>(_ a: inout Address, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        let length = a.length
        return withUnsafePointer(to: &a.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Port a socket is bound to (after bind with port 0).
    static func boundPort(_ fd: Int32) -> Int? {
        var a = Address()
        a.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &a.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &a.length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: &a.storage) { raw in
            // sin_port and sin6_port both sit at offset 2, in network byte order.
            Int(UInt16(raw[2]) << 8 | UInt16(raw[3]))
        }
    }

    /// Creates a non-blocking listening socket on host:port (tries each resolved address).
    static func listen(host: String, port: Int, backlog: Int32) throws(HTTPServerError) -> Int32 {
        let shown = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var lastError = HTTPServerError("cannot listen on \(shown): no usable address")
        // IPv4 first, so "localhost" binds where 127.0.0.1 clients connect.
        let addresses = try resolve(host: host, port: port, passive: true).sorted { $0.family == AF_INET && $1.family != AF_INET }
        for var address in addresses {
            let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                lastError = HTTPServerError("cannot listen on \(shown): socket()", errno: errno)
                continue
            }
            setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            let bound = withSockaddr(&address) { bind(fd, $0, $1) }
            if bound != 0 {
                lastError = HTTPServerError("cannot bind \(shown)", errno: errno)
                close(fd)
                continue
            }
            if Glibc.listen(fd, backlog) != 0 {
                lastError = HTTPServerError("cannot listen on \(shown)", errno: errno)
                close(fd)
                continue
            }
            setNonBlocking(fd)
            return fd
        }
        throw lastError
    }
}
