import Foundation
import Testing
@testable import HomefeedEval

// Hand-computed metric values. Natural logs: 1/ln2 = 1.442695, 1/ln3 = 0.910239, 1/ln4 = 0.721348, 1/ln5 = 0.621335,
// 1/ln7 = 0.513898 (the nDCG discount 1/ln(1 + rank) at ranks 1, 2, 3, 4, 6).

private func d(_ rank: Int) -> Double { 1 / log(Double(1 + rank)) }

private func close(_ a: Double?, _ b: Double, _ tol: Double = 1e-12, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let a else { Issue.record("expected \(b), got nil", sourceLocation: sourceLocation); return }
    #expect(abs(a - b) <= tol, "\(a) != \(b)", sourceLocation: sourceLocation)
}

@Suite struct PerUserMetricsTests {
    /// T = {1, 3, 6, 9} (|T| = 4), L = [1, 2, 3, 4, 5, 6]: hits at ranks 1, 3 and 6.
    @Test func oneUserAtSeveralK() {
        let m = RankingMetrics.score(list: [1, 2, 3, 4, 5, 6] as [Int32], truth: [1, 3, 6, 9] as [Int32], ks: [10, 3, 5])
        #expect(m.map(\.k) == [3, 5, 10])
        // k = 3: hits at ranks 1, 3 → 2 hits.
        //   P = 2/3; R = 2/4; AP = (1/1 + 2/3) / 4 = 5/12; AP@k = (5/3) / min(4, 3) = 5/9
        //   nDCG = (1/ln2 + 1/ln4) / (1/ln2 + 1/ln3 + 1/ln4) = 2.164043 / 3.074282 = 0.703918
        #expect(m[0].hits == 2)
        close(m[0].precision, 2.0 / 3); close(m[0].recall, 0.5)
        close(m[0].averagePrecision, 5.0 / 12); close(m[0].averagePrecisionAtK, 5.0 / 9)
        close(m[0].ndcg, (d(1) + d(3)) / (d(1) + d(2) + d(3)))
        close(m[0].ndcg, 0.7039180890341346)
        // k = 5: still 2 hits. P = 2/5; R = 1/2; AP = AP@k = (5/3) / 4 = 5/12
        //   nDCG = 2.164043 / (1.442695 + 0.910239 + 0.721348 + 0.621335 = 3.695617) = 0.585570
        #expect(m[1].hits == 2)
        close(m[1].precision, 0.4); close(m[1].recall, 0.5)
        close(m[1].averagePrecision, 5.0 / 12); close(m[1].averagePrecisionAtK, 5.0 / 12)
        close(m[1].ndcg, 0.5855700749881524)
        // k = 10 (the list has only 6 entries; P still divides by k): hits at 1, 3, 6 → 3.
        //   P = 3/10; R = 3/4; AP = (1/1 + 2/3 + 3/6) / 4 = (13/6) / 4 = 13/24; AP@k = same (min(4, 10) = 4)
        //   nDCG = (1/ln2 + 1/ln4 + 1/ln7) / 3.695617 = 2.677941 / 3.695617 = 0.724626
        #expect(m[2].hits == 3)
        close(m[2].precision, 0.3); close(m[2].recall, 0.75)
        close(m[2].averagePrecision, 13.0 / 24); close(m[2].averagePrecisionAtK, 13.0 / 24)
        close(m[2].ndcg, 0.7246262544989279)
        #expect(m.allSatisfy { $0.diversity == nil })   // no tags given
    }

    @Test func unreachableTruthCountsInTheDenominators() {
        // T = {7} plus 3 relevant videos outside the catalog: |T| = 4. L = [7]: one hit at rank 1.
        // P@2 = 1/2; R = 1/4; AP = 1 / 4; AP@2 = 1 / min(4, 2) = 1/2; nDCG = (1/ln2) / (1/ln2 + 1/ln3) = 0.613147
        let m = RankingMetrics.score(list: [7] as [Int32], truth: [7] as [Int32], unreachable: 3, ks: [2])[0]
        close(m.precision, 0.5); close(m.recall, 0.25)
        close(m.averagePrecision, 0.25); close(m.averagePrecisionAtK, 0.5)
        close(m.ndcg, d(1) / (d(1) + d(2)))
    }

    @Test func emptyListsAndTruths() {
        let none = RankingMetrics.score(list: [] as [Int32], truth: [1] as [Int32], ks: [5])[0]
        #expect(none.hits == 0 && none.precision == 0 && none.recall == 0 && none.ndcg == 0)
        let noTruth = RankingMetrics.score(list: [1, 2] as [Int32], truth: [] as [Int32], ks: [5])[0]
        #expect(noTruth.hits == 0 && noTruth.recall == 0 && noTruth.averagePrecision == 0 && noTruth.ndcg == 0)
    }

    @Test func perfectListScoresOne() {
        let m = RankingMetrics.score(list: [4, 2, 9] as [Int32], truth: [2, 4, 9] as [Int32], ks: [3])[0]
        close(m.precision, 1); close(m.recall, 1); close(m.averagePrecision, 1); close(m.ndcg, 1)
    }

    /// Tags: video 0 {a, b}, 1 {a}, 2 {c}, 3 {} (none), 4 {a, b, c, d}.
    static let tags = TagVectors(offsets: [0, 2, 3, 4, 4, 8], tags: [0, 1, 0, 2, 0, 1, 2, 3], tagCount: 4)

    @Test func diversityIsMeanPairwiseTagCosine() throws {
        let t = Self.tags
        // L = [0, 1, 2, 3, 4]; video 3 has no tags, so its pairs are skipped: 4 tagged videos, 6 pairs.
        //   (0,1) |{a}| / √(2·1) = 0.707107   (0,2) 0   (0,4) |{a,b}| / √(2·4) = 0.707107
        //   (1,2) 0   (1,4) 1 / √(1·4) = 0.5   (2,4) 1 / √(1·4) = 0.5
        //   mean = (√2 + 1) / 6 = 2.414214 / 6 = 0.402369
        close(RankingMetrics.diversity(of: [0, 1, 2, 3, 4] as [Int32], tags: t), (2.0.squareRoot() + 1) / 6)
        let m = RankingMetrics.score(list: [0, 1, 2, 3, 4] as [Int32], truth: [] as [Int32], ks: [2, 3, 4, 5], tags: t)
        close(m[0].diversity, 1 / 2.0.squareRoot())                  // k = 2: the pair (0,1)
        close(m[1].diversity, (1 / 2.0.squareRoot()) / 3)            // k = 3: (0.707107 + 0 + 0) / 3 = 0.235702
        close(m[2].diversity, (1 / 2.0.squareRoot()) / 3)            // k = 4: video 3 untagged, same pairs
        close(m[3].diversity, 0.40236892706218247)
        // Fewer than two tagged videos: undefined (nil), not 0.
        #expect(RankingMetrics.diversity(of: [3, 2] as [Int32], tags: t) == nil)
        #expect(RankingMetrics.diversity(of: [] as [Int32], tags: t) == nil)
        // Identical tag sets: 1; disjoint: 0; out-of-catalog entries are skipped like untagged ones.
        close(RankingMetrics.diversity(of: [1, 1] as [Int32], tags: t), 1)
        close(RankingMetrics.diversity(of: [1, 2, -1, 99] as [Int32], tags: t), 0)
    }
}

@Suite struct AccumulatorTests {
    /// Three test users on a 10-video catalog:
    ///   u1: T = {1, 3, 6, 9}, L = [1, 2, 3, 4, 5, 6]       (model)
    ///   u2: T = {7},          L = [0, 7]                   (fallback)
    ///   u3: T = {2, 5},       no list
    func threeUsers() throws -> EvalReport {
        var acc = try MetricsAccumulator(ks: [3, 10], catalogSize: 10)
        acc.add(list: [1, 2, 3, 4, 5, 6] as [Int32], truth: [1, 3, 6, 9] as [Int32])
        acc.add(list: [0, 7] as [Int32], truth: [7] as [Int32], fallback: true)
        acc.add(list: [] as [Int32], truth: [2, 5] as [Int32])
        return acc.report(label: "three users")
    }

    @Test func averagesFollowTheSharedEvaluator() throws {
        let r = try threeUsers()
        #expect(r.testUsers == 3 && r.scoredUsers == 2)
        #expect(r.fallbackUsers == 1); close(r.fallbackShare, 0.5)
        let m = try #require(r.at(3))
        // Per user at k = 3:  u1 P 2/3, R 1/2, AP 5/12, AP@k 5/9, nDCG 0.703918 (see PerUserMetricsTests)
        //                     u2 hit at rank 2: P 1/3, R 1/1, AP (1/2)/1 = 1/2, AP@k 1/2, nDCG (1/ln3)/(1/ln2) = 0.630930
        // Over the 2 scored users: P = (2/3 + 1/3)/2 = 1/2; R = (1/2 + 1)/2 = 3/4; MAP = (5/12 + 1/2)/2 = 11/24;
        //   MAP@k = (5/9 + 1/2)/2 = 19/36; hit rate = 2/2.
        close(m.precision, 0.5); close(m.recall, 0.75); close(m.map, 11.0 / 24); close(m.mapAtK, 19.0 / 36)
        close(m.hitRate, 1)
        // nDCG over all 3 test users (u3 counts 0): (0.703918 + 0.630930 + 0) / 3 = 0.444949
        close(m.ndcg, (0.7039180890341346 + 0.6309297535714574) / 3)
        // Strict: every test user in the denominator: P = 1/3, R = 1.5/3 = 1/2, MAP = (11/12)/3 = 11/36.
        close(m.precisionStrict, 1.0 / 3); close(m.recallStrict, 0.5); close(m.mapStrict, 11.0 / 36)
        // Coverage: top 3 of u1 {1, 2, 3} ∪ u2 {0, 7} = 5 of 10 videos; top 10: {1…6} ∪ {0, 7} = 8 of 10.
        #expect(m.distinctVideos == 5); close(m.coverage, 0.5)
        let m10 = try #require(r.at(10))
        #expect(m10.distinctVideos == 8); close(m10.coverage, 0.8)
        // k = 10: u1 P 3/10, R 3/4, AP 13/24; u2 P 1/10, R 1, AP 1/2 → P = 0.2, R = 0.875, MAP = (13/24 + 1/2)/2 = 25/48
        close(m10.precision, 0.2); close(m10.recall, 0.875); close(m10.map, 25.0 / 48)
        //   nDCG@10 = (0.724626 + 0.630930 + 0) / 3 = 0.451852
        close(m10.ndcg, (0.7246262544989279 + 0.6309297535714574) / 3)
        #expect(m.diversity == nil && m.diversityUsers == 0)
        #expect(r.usersWithDuplicateItems == 0 && r.seenInTrainRecommended == 0)
    }

    @Test func diversityAveragesOverListsWithTwoTaggedVideos() throws {
        var acc = try MetricsAccumulator(ks: [5], catalogSize: 5, tags: PerUserMetricsTests.tags)
        acc.add(list: [0, 1, 2, 3, 4] as [Int32], truth: [0] as [Int32])  // 0.402369 (hand value above)
        acc.add(list: [1, 1] as [Int32], truth: [0] as [Int32])           // identical tags: 1
        acc.add(list: [3, 2] as [Int32], truth: [0] as [Int32])           // one tagged video: left out
        let m = try #require(acc.report().at(5))
        #expect(m.diversityUsers == 2)
        close(m.diversity, (0.40236892706218247 + 1) / 2)                 // 0.701184
        // The duplicated video is flagged (rec_eval's users_with_duplicate_items).
        #expect(acc.report().usersWithDuplicateItems == 1)
    }

    @Test func eligibleCatalogAndOutOfRangeEntries() throws {
        var acc = try MetricsAccumulator(ks: [2], catalogSize: 4, eligibleVideos: 2)
        acc.add(list: [-1, 3, 9] as [Int32], truth: [3, 9] as [Int32])   // 9 is outside the catalog: unreachable
        let m = try #require(acc.report().at(2))
        // hit at rank 2; |T| = 2 → P = 1/2, R = 1/2; coverage counts only in-catalog entries: {3} / 2 eligible.
        close(m.precision, 0.5); close(m.recall, 0.5)
        #expect(m.distinctVideos == 1); close(m.coverage, 0.5)
    }

    @Test func rejectsBadCutoffs() {
        #expect(throws: (any Error).self) { try MetricsAccumulator(ks: [], catalogSize: 3) }
        #expect(throws: (any Error).self) { try MetricsAccumulator(ks: [0, 5], catalogSize: 3) }
        #expect((try? MetricsAccumulator(ks: [10, 5, 10], catalogSize: 3))?.ks == [5, 10])
    }

    @Test func tableAndJSON() throws {
        let r = try threeUsers()
        let table = r.table()
        #expect(table == """
            three users
            users: 3 test, 2 with a list (1 by fallback, 50.00%); coverage of 10 videos
                k     P@k     R@k     MAP   MAP@k  nDCG@k    HR@k     ILS   cover
                3  0.5000  0.7500  0.4583  0.5278  0.4449  1.0000       -  0.5000
               10  0.2000  0.8750  0.5208  0.5208  0.4519  1.0000       -  0.8000
            strict (all 3 test users in the denominator; 1 without a list):
                k     P@k     R@k     MAP  nDCG@k
                3  0.3333  0.5000  0.3056  0.4449
               10  0.1333  0.5833  0.3472  0.4519

            """)
        let json = try r.json()
        let back = try JSONDecoder().decode(EvalReport.self, from: json)
        #expect(back == r)
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains("\"precisionStrict\""))
        #expect(!text.contains("\"diversity\""))    // nil is omitted
    }
}

/// A tiny case scored by the shared evaluator, pinned: `rec_eval.py score` (shared/quality, 2026-11-23) on
///
///     test.tsv  user item rating timestamp, one row per (user, item) below
///       1: 0 4 5 11 12 13 14    2: 7    3: 2 3    4: 1 6 16    5: 18 19 17    6: 5 5 9 (5 twice)
///     recs.tsv
///       1: 4,1,0,2,11,3,13,7,8,12,19   2: 9,8,7   3: 10,11,12,13,14,15   5: 19,17,18,0,1,2,3,4,5,6,16,7
///       6: 5,9   7: 1,2,3 (not a test user: ignored)                    (user 4 has no line)
///     train.tsv  1: 1 2   5: 0
///
/// `python rec_eval.py score --train train.tsv --test test.tsv --recs recs.tsv --k 5` (then `--k 10`) printed the
/// values below (k = 5 / k = 10); n_test_users 6, n_scored_users 5, seen_in_train_recommended 3.
@Suite struct SharedEvaluatorCrossCheck {
    @Test func matchesRecEval() throws {
        let test: [(Int32, [Int32])] = [(1, [0, 4, 5, 11, 12, 13, 14]), (2, [7]), (3, [2, 3]), (4, [1, 6, 16]),
                                         (5, [18, 19, 17]), (6, [5, 5, 9])]
        let recs: [Int32: [Int32]] = [1: [4, 1, 0, 2, 11, 3, 13, 7, 8, 12, 19], 2: [9, 8, 7], 3: [10, 11, 12, 13, 14, 15],
                                      5: [19, 17, 18, 0, 1, 2, 3, 4, 5, 6, 16, 7], 6: [5, 9], 7: [1, 2, 3]]
        let train: [Int32: [Int32]] = [1: [1, 2], 5: [0]]
        var acc = try MetricsAccumulator(ks: [5, 10], catalogSize: 20)
        for (u, t) in test {
            acc.add(list: recs[u] ?? [], truth: t, seen: (train[u] ?? [])[...])
        }
        let r = acc.report()
        #expect(r.testUsers == 6 && r.scoredUsers == 5 && r.seenInTrainRecommended == 3 && r.usersWithDuplicateItems == 0)
        let m5 = try #require(r.at(5)), m10 = try #require(r.at(10))
        close(m5.map, 0.5314285714285714)
        close(m5.mapAtK, 0.5573333333333333)
        close(m5.ndcg, 0.5233242309037943)
        close(m5.precision, 0.36)
        close(m5.recall, 0.6857142857142857)
        close(m5.mapStrict, 0.44285714285714284)
        close(m5.precisionStrict, 0.3)
        close(m5.recallStrict, 0.5714285714285715)
        close(m10.map, 0.5620408163265307)
        close(m10.mapAtK, 0.5620408163265307)
        close(m10.ndcg, 0.5316222840231996)
        close(m10.precision, 0.21999999999999997)
        close(m10.recall, 0.7428571428571429)
        close(m10.mapStrict, 0.4683673469387755)
        close(m10.precisionStrict, 0.18333333333333332)
        close(m10.recallStrict, 0.6190476190476191)
    }
}
