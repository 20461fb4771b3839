/// A dense row-major Float32 matrix (embeddings: one row per user or video).
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public var values: [Float]

    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "matrix shape")
        self.rows = rows; self.cols = cols; self.values = values
    }

    public init(rows: Int, cols: Int, repeating v: Float = 0) {
        self.init(rows: rows, cols: cols, values: [Float](repeating: v, count: rows * cols))
    }

    public subscript(r: Int, c: Int) -> Float {
        get { values[r * cols + c] }
        set { values[r * cols + c] = newValue }
    }

    public func row(_ r: Int) -> ArraySlice<Float> { values[(r * cols)..<((r + 1) * cols)] }
}

/// Rows of (column, value) pairs: the user × video confidence matrix and its transpose.
public struct SparseRows: Sendable {
    public let rows: Int
    public let cols: Int
    public let offsets: [Int]       // row r: entries offsets[r]..<offsets[r+1]
    public let columns: [Int32]
    public let values: [Float]

    /// From (row, col, value) triples; duplicates are summed.
    public init(rows: Int, cols: Int, triples: [(Int32, Int32, Float)]) {
        let sorted = triples.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var offsets = [Int](repeating: 0, count: rows + 1)
        var columns: [Int32] = [], values: [Float] = []
        columns.reserveCapacity(sorted.count); values.reserveCapacity(sorted.count)
        var last: (Int32, Int32) = (-1, -1)
        for (r, c, v) in sorted {
            if (r, c) == last { values[values.count - 1] += v; continue }
            columns.append(c); values.append(v); offsets[Int(r) + 1] += 1
            last = (r, c)
        }
        for r in 0..<rows { offsets[r + 1] += offsets[r] }
        self.rows = rows; self.cols = cols; self.offsets = offsets; self.columns = columns; self.values = values
    }

    init(rows: Int, cols: Int, offsets: [Int], columns: [Int32], values: [Float]) {
        self.rows = rows; self.cols = cols; self.offsets = offsets; self.columns = columns; self.values = values
    }

    public var nnz: Int { columns.count }

    /// The transpose (video × user), in column order.
    public func transposed() -> SparseRows {
        var counts = [Int](repeating: 0, count: cols + 1)
        for c in columns { counts[Int(c) + 1] += 1 }
        for c in 0..<cols { counts[c + 1] += counts[c] }
        var next = counts
        var tc = [Int32](repeating: 0, count: nnz), tv = [Float](repeating: 0, count: nnz)
        for r in 0..<rows {
            for k in offsets[r]..<offsets[r + 1] {
                let c = Int(columns[k])
                tc[next[c]] = Int32(r); tv[next[c]] = values[k]; next[c] += 1
            }
        }
        return SparseRows(rows: cols, cols: rows, offsets: counts, columns: tc, values: tv)
    }
}
