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

/// Rows of (column, value) pairs in compressed sparse row (CSR) form: the user × video confidence matrix and its
/// transpose. Canonical: within a row the columns are strictly increasing (no duplicates), which ALS relies on (a
/// repeated pair would count the unobserved-weight correction twice).
public struct SparseRows: Sendable {
    public let rows: Int
    public let cols: Int
    public let offsets: [Int]       // row r: entries offsets[r]..<offsets[r+1]
    public let columns: [Int32]
    public let values: [Float]

    /// From CSR arrays built by the caller. Stops the program with a message naming the first problem when the
    /// arrays are not a canonical CSR of that shape; `validate` returns the same message without stopping.
    public init(rows: Int, cols: Int, offsets: [Int], columns: [Int32], values: [Float]) {
        let problem = SparseRows.validate(rows: rows, cols: cols, offsets: offsets, columns: columns, values: values)
        precondition(problem == nil, problem ?? "")
        self.init(unchecked: rows, cols: cols, offsets: offsets, columns: columns, values: values)
    }

    init(unchecked rows: Int, cols: Int, offsets: [Int], columns: [Int32], values: [Float]) {
        self.rows = rows; self.cols = cols; self.offsets = offsets; self.columns = columns; self.values = values
    }

    /// nil when the arrays form a canonical CSR matrix of `rows` × `cols`, else what is wrong (O(nnz)).
    public static func validate(rows: Int, cols: Int, offsets: [Int], columns: [Int32], values: [Float]) -> String? {
        guard rows >= 0, cols >= 0, rows <= Int(Int32.max), cols <= Int(Int32.max) else {
            return "SparseRows: bad shape \(rows) × \(cols)"
        }
        guard offsets.count == rows + 1 else {
            return "SparseRows: offsets has \(offsets.count) entries, expected rows + 1 = \(rows + 1)"
        }
        guard columns.count == values.count else {
            return "SparseRows: \(columns.count) columns but \(values.count) values"
        }
        guard offsets[0] == 0, offsets[rows] == columns.count else {
            return "SparseRows: offsets must run from 0 to nnz = \(columns.count), got \(offsets[0])…\(offsets[rows])"
        }
        for r in 0..<rows {
            let start = offsets[r], end = offsets[r + 1]
            guard start <= end else { return "SparseRows: offsets decrease at row \(r) (\(start) > \(end))" }
            var previous: Int32 = -1
            for k in start..<end {
                let c = columns[k]
                guard c >= 0, Int(c) < cols else { return "SparseRows: row \(r) has column \(c) outside 0..<\(cols)" }
                guard c > previous else {
                    return "SparseRows: row \(r) columns not strictly increasing (\(previous) then \(c))"
                }
                previous = c
            }
        }
        return nil
    }

    /// From (row, col, value) triples; duplicates are summed (in input order).
    public init(rows: Int, cols: Int, triples: [(Int32, Int32, Float)]) {
        self.init(rows: rows, cols: cols, rowIndices: triples.map { $0.0 }, colIndices: triples.map { $0.1 },
                  values: triples.map { $0.2 })
    }

    /// From (row, col, value) columns in any order: two stable counting sorts (by column, then by row), so each
    /// row comes out with increasing columns in O(nnz + rows + cols) without comparisons; duplicates are summed
    /// in input order (the result does not depend on anything but the input). Indices must be in range.
    public init(rows: Int, cols: Int, rowIndices: [Int32], colIndices: [Int32], values: [Float]) {
        let n = values.count
        precondition(rowIndices.count == n && colIndices.count == n,
                     "SparseRows: \(rowIndices.count) rows, \(colIndices.count) columns, \(n) values")
        precondition(rows >= 0 && cols >= 0 && rows <= Int(Int32.max) && cols <= Int(Int32.max) && n <= Int(Int32.max),
                     "SparseRows: bad shape \(rows) × \(cols) or more than 2³¹ − 1 entries")
        let badRow = rowIndices.firstIndex { $0 < 0 || Int($0) >= rows }
        precondition(badRow == nil, "SparseRows: row index \(badRow.map { rowIndices[$0] } ?? 0) outside 0..<\(rows)")
        let badCol = colIndices.firstIndex { $0 < 0 || Int($0) >= cols }
        precondition(badCol == nil, "SparseRows: column index \(badCol.map { colIndices[$0] } ?? 0) outside 0..<\(cols)")

        // 1. Entry order by column (stable): byCol[k] = input position.
        var start = [Int](repeating: 0, count: cols + 1)
        for c in colIndices { start[Int(c) + 1] += 1 }
        for c in 0..<cols { start[c + 1] += start[c] }
        var byCol = [Int32](repeating: 0, count: n)
        // 2. Then by row (stable), reading in column order: within a row, columns increase.
        var offsets = [Int](repeating: 0, count: rows + 1)
        for r in rowIndices { offsets[Int(r) + 1] += 1 }
        for r in 0..<rows { offsets[r + 1] += offsets[r] }
        var columns = [Int32](repeating: 0, count: n), vals = [Float](repeating: 0, count: n)
        var next = offsets
        rowIndices.withUnsafeBufferPointer { ri in
            colIndices.withUnsafeBufferPointer { ci in
                values.withUnsafeBufferPointer { vi in
                    byCol.withUnsafeMutableBufferPointer { bc in
                        start.withUnsafeMutableBufferPointer { s in
                            for k in 0..<n { let c = Int(ci[k]); bc[s[c]] = Int32(truncatingIfNeeded: k); s[c] += 1 }
                        }
                    }
                    byCol.withUnsafeBufferPointer { bc in
                        columns.withUnsafeMutableBufferPointer { co in
                            vals.withUnsafeMutableBufferPointer { vo in
                                next.withUnsafeMutableBufferPointer { nx in
                                    for k in 0..<n {
                                        let e = Int(bc[k]), r = Int(ri[e])
                                        co[nx[r]] = ci[e]; vo[nx[r]] = vi[e]; nx[r] += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // 3. Sum duplicates (now adjacent within a row), compacting in place.
        var w = 0
        columns.withUnsafeMutableBufferPointer { co in
            vals.withUnsafeMutableBufferPointer { vo in
                offsets.withUnsafeMutableBufferPointer { off in
                    var readStart = 0
                    for r in 0..<rows {
                        let readEnd = off[r + 1]
                        off[r] = w
                        var k = readStart
                        while k < readEnd {
                            let c = co[k]
                            var v = vo[k]
                            k += 1
                            while k < readEnd && co[k] == c { v += vo[k]; k += 1 }
                            co[w] = c; vo[w] = v; w += 1
                        }
                        readStart = readEnd
                    }
                    off[rows] = w
                }
            }
        }
        if w < n { columns.removeLast(n - w); vals.removeLast(n - w) }
        self.init(unchecked: rows, cols: cols, offsets: offsets, columns: columns, values: vals)
    }

    public var nnz: Int { columns.count }

    /// Longest row (per-thread scratch sizes).
    public var maxRowLength: Int {
        var m = 0
        for r in 0..<rows { m = max(m, offsets[r + 1] - offsets[r]) }
        return m
    }

    /// The transpose (video × user), in column order.
    public func transposed() -> SparseRows {
        var counts = [Int](repeating: 0, count: cols + 1)
        for c in columns { counts[Int(c) + 1] += 1 }
        for c in 0..<cols { counts[c + 1] += counts[c] }
        var next = counts
        var tc = [Int32](repeating: 0, count: nnz), tv = [Float](repeating: 0, count: nnz)
        offsets.withUnsafeBufferPointer { off in
            columns.withUnsafeBufferPointer { co in
                values.withUnsafeBufferPointer { va in
                    tc.withUnsafeMutableBufferPointer { tcp in
                        tv.withUnsafeMutableBufferPointer { tvp in
                            next.withUnsafeMutableBufferPointer { nx in
                                for r in 0..<rows {
                                    for k in off[r]..<off[r + 1] {
                                        let c = Int(co[k])
                                        tcp[nx[c]] = Int32(truncatingIfNeeded: r); tvp[nx[c]] = va[k]; nx[c] += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return SparseRows(unchecked: cols, cols: rows, offsets: counts, columns: tc, values: tv)
    }
}
