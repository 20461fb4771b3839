import HomefeedCore
import HomefeedData
import Testing

@Suite struct MovieLensImporterTests {
    static func day(_ y: Int, _ m: Int, _ d: Int) -> Int64 { Int64(TimeFormat.daysFromCivil(y, m, d)) * 86400 }

    /// A tiny ML-100k layout: u.item is Latin-1 and has a title with a comma; user 7 and item 9 appear only in u.data.
    func write100k(_ dir: TempDir) {
        dir.write("ml/u.genre", "unknown|0\nAction|1\nComedy|2\nDrama|3\n\n")
        dir.write("ml/u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
        var item: [UInt8] = Array("1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1|0\n".utf8)
        item += Array("2|Mis".utf8) + [0xE9] + Array("rables, Les (1995)|15-Dec-1995||http://y|0|1|0|1\n".utf8)
        item += Array("3|unknown||||1|0|0|0\n".utf8)
        dir.write("ml/u.item", bytes: item)
        dir.write("ml/u.data", "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250951\n7\t9\t2\t881250952\n")
    }

    @Test func ml100kImportThenLoad() throws {
        let dir = TempDir()
        write100k(dir)
        let s = try MovieLensImporter.importMovieLens(source: dir.sub("ml"), out: dir.sub("out"), ratingsOverride: nil)
        #expect(s.layout == "ml-100k")
        #expect(s.users == 3 && s.videos == 4 && s.ratings == 4)
        #expect(s.watches == 4 && s.likes == 2 && s.dislikes == 0 && s.interactions == 6 && s.skippedRows == 0)
        #expect(s.description == "ml-100k: 3 users, 4 videos, 4 ratings -> 4 watches, 2 likes, 0 dislikes (6 interaction rows)")

        let ds = try DatasetLoader.load(directory: dir.sub("out"), config: config(maxBad: 0), progress: false)
        #expect(ds.report.badRows == 0)
        let u = ds.users
        #expect((0..<u.count).map { u.ids[$0] } == ["1", "2", "7"])
        #expect(u.age == [24, 53, 0])
        #expect(u.gender == [.male, .female, .unknown])
        #expect(u.country == [CountryCode("US")!, CountryCode("US")!, CountryCode("US")!])
        #expect(u.language.allSatisfy { ds.languages[$0] == "en" })
        #expect(u.signupTime.allSatisfy { $0 == Int64.min })

        let v = ds.videos
        #expect((0..<v.count).map { v.ids[$0] } == ["1", "2", "3", "9"])
        #expect((0..<v.count).map { v.titles[$0] } == ["Toy Story (1995)", "Misérables, Les (1995)", "unknown", ""])
        #expect(v.publishedAt == [Self.day(1995, 1, 1), Self.day(1995, 12, 15), 0, 0])
        #expect(v.tags(of: 0).map { ds.tags[$0] } == ["Comedy"])
        #expect(v.tags(of: 1).map { ds.tags[$0] } == ["Action", "Drama"])
        #expect(v.tags(of: 2).isEmpty && v.tags(of: 3).isEmpty)   // "unknown" is not a tag
        #expect(v.durationSeconds.allSatisfy { $0 == Float(MovieLensImporter.movieDurationSeconds) })
        #expect(v.availability.allSatisfy { $0 == .everywhere } && v.channel.allSatisfy { $0 == -1 })

        let i = ds.interactions
        #expect(i.event == [.watch, .like, .watch, .watch, .like, .watch])
        #expect(i.user.map { u.ids[Int($0)] } == ["1", "1", "1", "2", "2", "7"])
        #expect(i.video.map { v.ids[Int($0)] } == ["1", "1", "2", "1", "1", "9"])
        #expect(i.watchSeconds == [6000, 0, 6000, 6000, 0, 6000])
        #expect(i.timestamp == [881250949, 881250949, 881250950, 881250951, 881250951, 881250952])
        #expect((0..<i.count).allSatisfy { ds.isRelevant($0, watchFraction: 0.5) })
    }

    @Test func ml100kWithRatingsOverrideAndDislikes() throws {
        let dir = TempDir()
        write100k(dir)
        let train = dir.write("train.tsv", "2\t2\t4.0\t881250960\n1\t3\t1.0\t881250961\n")
        let s = try MovieLensImporter.importMovieLens(source: dir.sub("ml"), out: dir.sub("out"),
                                                      ratingsOverride: train, dislikeThreshold: 2)
        #expect(s.users == 2 && s.videos == 3 && s.ratings == 2)
        #expect(s.watches == 1 && s.likes == 1 && s.dislikes == 1)
        let ds = try DatasetLoader.load(directory: dir.sub("out"), config: config(maxBad: 0), progress: false)
        #expect(ds.users.count == 2 && ds.videos.count == 3)
        #expect(ds.interactions.event == [.watch, .like, .dislike])
        #expect(ds.interactions.video.map { ds.videos.ids[Int($0)] } == ["2", "2", "3"])
        #expect((0..<3).map { ds.isRelevant($0, watchFraction: 0.5) } == [true, true, false])

        #expect(throws: HomefeedError.self) {
            try MovieLensImporter.importMovieLens(source: dir.sub("ml"), out: dir.sub("o2"), ratingsOverride: nil,
                                                  likeThreshold: 4, dislikeThreshold: 4)
        }
        #expect(throws: HomefeedError.self) {
            try MovieLensImporter.importMovieLens(source: dir.path, out: dir.sub("o3"), ratingsOverride: nil)
        }
    }

    @Test func mlLatestImportThenLoad() throws {
        let dir = TempDir()
        dir.write("ml/movies.csv", #"""
            movieId,title,genres
            1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
            2,"American President, The (1995)",Comedy|Drama|Romance
            3,"Dr. Strangelove or: How I Learned to Stop Worrying and Love the ""Bomb"" (1964)",Comedy|War
            4,Some Show,(no genres listed)

            """#)
        dir.write("ml/ratings.csv", #"""
            userId,movieId,rating,timestamp
            1,1,4.0,964982703
            1,3,3.5,964981247
            2,2,1.5,964982224
            3,5,5.0,964983815

            """#)
        dir.write("ml/tags.csv", #"""
            userId,movieId,tag,timestamp
            1,1,pixar,1
            2,1,Pixar,2
            2,1,fun|family,3
            2,99,orphan,4
            1,3,"dark, comedy",5

            """#)
        let s = try MovieLensImporter.importMovieLens(source: dir.sub("ml"), out: dir.sub("out"), ratingsOverride: nil,
                                                      dislikeThreshold: 2)
        #expect(s.layout == "ml-latest")
        #expect(s.users == 3 && s.videos == 5 && s.ratings == 4)
        #expect(s.watches == 3 && s.likes == 2 && s.dislikes == 1 && s.interactions == 6)
        #expect(s.tagsAdded == 3 && s.skippedRows == 1)
        #expect(s.skippedExamples == ["tags.csv:5: unknown movieId '99'"])

        let ds = try DatasetLoader.load(directory: dir.sub("out"), config: config(maxBad: 0), progress: false)
        #expect(ds.report.badRows == 0)
        #expect((0..<ds.users.count).map { ds.users.ids[$0] } == ["1", "2", "3"])
        #expect(ds.users.age == [0, 0, 0] && ds.users.gender == [.unknown, .unknown, .unknown])
        let v = ds.videos
        #expect((0..<v.count).map { v.ids[$0] } == ["1", "2", "3", "4", "5"])
        #expect(v.titles[1] == "American President, The (1995)")
        #expect(v.titles[2] == "Dr. Strangelove or: How I Learned to Stop Worrying and Love the \"Bomb\" (1964)")
        #expect(v.publishedAt == [Self.day(1995, 1, 1), Self.day(1995, 1, 1), Self.day(1964, 1, 1), 0, 0])
        #expect(v.tags(of: 0).map { ds.tags[$0] }
                == ["Adventure", "Animation", "Children", "Comedy", "Fantasy", "pixar", "fun/family"])
        #expect(v.tags(of: 2).map { ds.tags[$0] } == ["Comedy", "War", "dark, comedy"])
        #expect(v.tags(of: 3).isEmpty)
        #expect(ds.interactions.event == [.watch, .like, .watch, .dislike, .watch, .like])
        #expect(ds.interactions.user.map { ds.users.ids[Int($0)] } == ["1", "1", "1", "2", "3", "3"])
        #expect(ds.interactions.timestamp[3] == 964982224)
    }
}
