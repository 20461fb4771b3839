import Foundation
import Testing
@testable import HomefeedCore
@testable import HomefeedModels

@Suite struct ItemItemTests {
    /// users × videos engagement rows (1 = engaged, −1 = disliked) as CSR.
    func rows(_ dense: [[Float]]) -> SparseRows {
        var offsets = [0], cols: [Int32] = [], vals: [Float] = []
        for r in dense {
            for (c, v) in r.enumerated() where v != 0 { cols.append(Int32(c)); vals.append(v) }
            offsets.append(cols.count)
        }
        return SparseRows(rows: dense.count, cols: dense[0].count, offsets: offsets, columns: cols, values: vals)
    }

    /// Each entry's time for `rows(dense)`, read from `times` (the same shape as `dense`).
    func newest(_ dense: [[Float]], _ times: [[Int64]]) -> [Int64] {
        var out: [Int64] = []
        for (r, row) in dense.enumerated() { for (c, v) in row.enumerated() where v != 0 { out.append(times[r][c]) } }
        return out
    }

    @Test(arguments: [1, 2])
    func gaussJordanInvertsASymmetricPositiveDefiniteMatrix(threads: Int) {
        // A = MᵀM + 3I for a seeded M: SPD. Checks A·A⁻¹ = I entry by entry (n ≥ 256 also runs the threaded path).
        for n in [1, 5, 300] {
            var rng = SeededRandom(seed: UInt64(n))
            let m = (0..<(n * n)).map { _ in rng.nextDouble() - 0.5 }
            var a = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { for k in 0..<n { a[i * n + j] += m[k * n + i] * m[k * n + j] } } }
            for i in 0..<n { a[i * n + i] += 3 }
            var inv = a
            ItemItemModel.invertSymmetricPositiveDefinite(&inv, n: n, threads: threads)
            var worst = 0.0
            for i in 0..<n { for j in 0..<n {
                var s = 0.0
                for k in 0..<n { s += a[i * n + k] * inv[k * n + j] }
                worst = max(worst, abs(s - (i == j ? 1 : 0)))
            } }
            #expect(worst < 1e-9, "n = \(n): max |A·A⁻¹ − I| = \(worst)")
        }
    }

    /// Every column j of B solves its own ridge regression with b_jj = 0 (the EASE objective column by column):
    ///     (G + λI)_{−j,−j} · b_{−j,j} = G_{−j,j}
    /// checked directly on the Gram matrix computed here, independently of the fit's inverse: plain (G = XᵀX), and
    /// with a co-watch window h and far weight β (G = Σ_u K_u, K_u[a][b] = β + (1 − β)·exp(−|s_a − s_b| / h), s = the
    /// place in the user's engagements, newest first, ties by column).
    @Test(arguments: [(0.0, 0.0), (2.0, 0.0), (1.5, 0.25)])
    func weightsSolveEachVideosRidgeRegressionWithAZeroDiagonal(window: Double, farWeight: Double) throws {
        let x: [[Float]] = [[1, 1, 0, 1], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]]
        // Each engagement's time (the same shape as x; user 3 engaged with v1 and v2 at the same time: a tie).
        let times: [[Int64]] = [[5, 9, 0, 1], [2, 0, 7, 0], [0, 3, 8, 4], [6, 1, 1, 9], [0, 0, 2, 5], [4, 0, 0, 3]]
        let sparse = rows(x)
        let m = try #require(ItemItemModel.fit(sparse, newest: newest(x, times), window: window, farWeight: farWeight,
                                               maxVideos: 10, relativeLambda: 0.5, threads: 1))
        let n = 4
        // Every column has 3 or 4 engaged users; head by count (v0: 4, v1: 3, v2: 4, v3: 4) → 0, 2, 3, 1.
        #expect(m.videos == [0, 2, 3, 1])
        var g = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for (r, row) in x.enumerated() {
            let engaged = (0..<n).filter { row[$0] > 0 }.sorted { times[r][$0] != times[r][$1] ? times[r][$0] > times[r][$1] : $0 < $1 }
            for (sa, a) in engaged.enumerated() { for (sb, b) in engaged.enumerated() {
                g[a][b] += window == 0 ? 1 : farWeight + (1 - farWeight) * exp(-Double(abs(sa - sb)) / window)
            } }
        }
        let lambda = 0.5 * (0..<n).reduce(0.0) { $0 + g[$1][$1] } / Double(n)
        #expect(abs(Double(m.lambda) - lambda) < 1e-5)
        // B in column (video) order: B[i][j] = weights[pos(i) * n + pos(j)].
        let pos = m.positions(columns: n).map(Int.init)
        func b(_ i: Int, _ j: Int) -> Double { Double(m.weights[pos[i] * n + pos[j]]) }
        for j in 0..<n {
            #expect(b(j, j) == 0)
            for i in 0..<n where i != j {
                var lhs = 0.0
                for k in 0..<n where k != j { lhs += (g[i][k] + (i == k ? lambda : 0)) * b(k, j) }
                #expect(abs(lhs - g[i][j]) < 1e-4, "column \(j), row \(i): \(lhs) vs \(g[i][j])")
            }
        }
    }

    /// Ten users each engaged with videos 0, 1 and 2: 1 right after 0, 2 eight engagements later (the filler
    /// videos 3… between them are each one user's). Plain co-occurrence cannot tell 1 from 2; the co-watch window
    /// makes 0 predict 1, its neighbour in time, more than 2.
    @Test func aCoWatchWindowFavoursVideosWatchedCloseTogether() throws {
        let users = 10, videos = 3 + users * 7
        var dense = [[Float]](repeating: [Float](repeating: 0, count: videos), count: users)
        var times = dense.map { $0.map { _ in Int64(0) } }
        for u in 0..<users {
            for (v, t) in [(0, 100), (1, 99), (2, 91)] { dense[u][v] = 1; times[u][v] = Int64(t) }
            for f in 0..<7 { dense[u][3 + u * 7 + f] = 1; times[u][3 + u * 7 + f] = Int64(98 - f) }
        }
        let newest = newest(dense, times)
        func weights(window: Double) throws -> (toNeighbour: Float, toFar: Float) {
            let m = try #require(ItemItemModel.fit(rows(dense), newest: newest, window: window, farWeight: 0.25,
                                                   maxVideos: 10, relativeLambda: 0.1, threads: 1))
            #expect(m.videos == [0, 1, 2])   // the fillers have one user each: not in the head
            return (m.weights[0 * 3 + 1], m.weights[0 * 3 + 2])
        }
        let plain = try weights(window: 0), windowed = try weights(window: 4)
        #expect(plain.toNeighbour == plain.toFar)
        #expect(windowed.toNeighbour > windowed.toFar * 1.5, "\(windowed)")
    }

    @Test func headKeepsTheMostEngagedVideosAndIgnoresDislikesAndSingletons() throws {
        // v0: 3 users, v1: 2 (+ a dislike), v2: 1 user (a singleton: never in the head), v3: 3 users.
        let x: [[Float]] = [[1, 1, 0, 1], [1, -1, 0, 1], [1, 1, 1, 1], [0, -1, 0, 0]]
        let m = try #require(ItemItemModel.fit(rows(x), maxVideos: 2, relativeLambda: 1, threads: 1))
        #expect(m.videos == [0, 3])   // ties by lower column; the cap keeps two
        let all = try #require(ItemItemModel.fit(rows(x), maxVideos: 10, relativeLambda: 1, threads: 1))
        #expect(all.videos == [0, 3, 1])
        #expect(ItemItemModel.fit(rows([[1, 0], [0, 1]]), maxVideos: 10, relativeLambda: 1, threads: 1) == nil)
    }

    @Test func aUsersScoreSumsTheRowsOfTheirEngagedHeadVideos() throws {
        let m = ItemItemModel(videos: [2, 0, 1], weights: [0, 1, 2,
                                                          3, 0, 4,
                                                          5, 6, 0], lambda: 1)
        let position = m.positions(columns: 4)
        #expect(position == [1, 2, 0, -1])
        // User: engaged with columns 0 and 2 (head rows 1 and 0), disliked 1, engaged with 3 (outside the head).
        let r = rows([[1, -1, 1, 1]])
        var out: [Float] = []
        m.scores(r, row: 0, position: position, into: &out)
        let expected: [Float] = [3, 1, 6]   // head video h: weights[1·3 + h] (column 0) + weights[0·3 + h] (column 2)
        #expect(out == expected)
    }
}
