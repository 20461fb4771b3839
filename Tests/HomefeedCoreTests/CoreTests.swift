import Foundation
import Testing
@testable import HomefeedCore

@Suite struct StableHashTests {
    @Test func fnv1a64IsPinned() {
        // Persisted in store keys and shard ranges: these values must never change.
        #expect(StableHash.fnv1a64("") == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a64("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.fnv1a64("foobar") == 0x8594_4171_f739_67e8)
    }

    @Test func seededRandomIsDeterministic() {
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42), c = SeededRandom(seed: 43)
        let xa = (0..<5).map { _ in a.next() }, xb = (0..<5).map { _ in b.next() }, xc = (0..<5).map { _ in c.next() }
        #expect(xa == xb)
        #expect(xa != xc)
        var r = SeededRandom(seed: 1)
        for _ in 0..<1000 { let v = r.nextInt(7); #expect(v >= 0 && v < 7) }
    }
}

@Suite struct TimeFormatTests {
    @Test func parsesSecondsAndISO() {
        #expect(TimeFormat.parse("1732300000") == 1_732_300_000)
        #expect(TimeFormat.parse("1970-01-01T00:00:00Z") == 0)
        #expect(TimeFormat.parse("2024-11-22T18:26:40Z") == 1_732_300_000)
        #expect(TimeFormat.parse("2024-11-22T18:26:40.123Z") == 1_732_300_000)
        #expect(TimeFormat.parse("2024-11-22T20:26:40+02:00") == 1_732_300_000)
        #expect(TimeFormat.parse("2024-11-22") == 1_732_233_600)
        #expect(TimeFormat.parse("2000-02-29T00:00:00Z") == 951_782_400)
    }

    @Test func rejectsGarbage() {
        for bad in ["", "abc", "12x", "2024-13-01", "2024-11-22T25:00:00Z", "2024-11-22T18:26:40Zjunk", "-"] {
            #expect(TimeFormat.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func formatsRoundTrip() {
        for t: Int64 in [0, 951_782_400, 1_732_300_000, -86_400] {
            #expect(TimeFormat.parse(TimeFormat.iso8601(t)) == t)
        }
        #expect(TimeFormat.iso8601(1_732_300_000) == "2024-11-22T18:26:40Z")
        #expect(TimeFormat.compact(1_732_300_000) == "20241122T182640Z")
    }
}

@Suite struct ArgumentsTests {
    let opts: [Arguments.Option] = [.init("store", "DIR", "store"), .init("force", nil, "force"), .init("limit", "N", "n")]

    @Test func parsesForms() throws {
        let a = try Arguments(command: "t", usage: "t", options: opts, args: ["--store", "/s", "--force", "--limit=5", "pos"])
        #expect(a.string("store") == "/s")
        #expect(a.flag("force"))
        #expect(try a.int("limit") == 5)
        #expect(a.positionals == ["pos"])
    }

    @Test func reportsErrors() throws {
        #expect(throws: HomefeedError.self) { try Arguments(command: "t", usage: "t", options: opts, args: ["--nope"]) }
        #expect(throws: HomefeedError.self) { try Arguments(command: "t", usage: "t", options: opts, args: ["--store"]) }
        let a = try Arguments(command: "t", usage: "t", options: opts, args: ["--limit", "x"])
        #expect(throws: HomefeedError.self) { try a.int("limit") }
        #expect(try Arguments(command: "t", usage: "t", options: opts, args: ["--help"]).helpRequested)
        #expect(try Arguments(command: "t", usage: "t", options: opts, args: []).helpText.contains("--store DIR"))
    }
}

@Suite struct ConfigTests {
    /// conf/homefeed.toml documents every key with its default: parsing it must give exactly the built-in defaults,
    /// and it must mention every known key.
    @Test func shippedConfigEqualsDefaults() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../conf/homefeed.toml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let file = try ConfigFile(text: text, path: path)
        #expect(Set(file.entries.keys) == HomefeedConfig.knownKeys)
        #expect(try HomefeedConfig(file: file) == HomefeedConfig())
    }

    @Test func parsesAndValidates() throws {
        let f = try ConfigFile(text: "# c\n[refresh]\nlist_size = 50 # inline\n[lookupd]\nlisten = \"0.0.0.0:9\"\n", path: "x.toml")
        let c = try HomefeedConfig(file: f)
        #expect(c.refresh.listSize == 50)
        #expect(c.lookupd.listen == "0.0.0.0:9")
        let ii = try HomefeedConfig(file: ConfigFile(text: "[item_item]\nvideos = 100\nregularization = 3.5\nweight = 0\nwindow = 12\nfar_weight = 0.5\n[rank]\nranker_pool = 7\nranker_split = \"time\"\n"))
        #expect(ii.itemItem == { var i = HomefeedConfig.ItemItem(); i.videos = 100; i.regularization = 3.5; i.weight = 0; i.window = 12; i.farWeight = 0.5; return i }())
        // Settings saved with a model before the co-watch window decode as the plain fit they were.
        let old = try JSONDecoder().decode(HomefeedConfig.ItemItem.self, from: Data(#"{"videos":9,"regularization":2,"weight":1}"#.utf8))
        #expect(old.window == 0 && old.videos == 9 && old.regularization == 2 && old.weight == 1)
        #expect(ii.rank.rankerPool == 7 && ii.rank.rankerSplit == "time" && HomefeedConfig().rank.rankerSplit == "random")
        #expect(HomefeedConfig().lookupd.drainSeconds == 5)
        #expect(try HomefeedConfig(file: ConfigFile(text: "[lookupd]\ndrain_seconds = 0\n")).lookupd.drainSeconds == 0)
        #expect(try HomefeedConfig(file: ConfigFile(text: "[lookupd]\ndrain_seconds = 12.5\n")).lookupd.drainSeconds == 12.5)
        #expect(throws: HomefeedError.self) { try HomefeedConfig(file: ConfigFile(text: "[lookupd]\ndrain_seconds = 5s\n")) }
        #expect(throws: HomefeedError.self) { try HomefeedConfig(file: ConfigFile(text: "[refresh]\nlist_sise = 5\n")) }
        #expect(throws: HomefeedError.self) { try HomefeedConfig(file: ConfigFile(text: "[refresh]\nlist_size = abc\n")) }
        #expect(throws: HomefeedError.self) { try HomefeedConfig(file: ConfigFile(text: "[refresh]\nlist_size = 0\n")) }
        #expect(throws: HomefeedError.self) { try ConfigFile(text: "[refresh\n") }
        do {
            _ = try HomefeedConfig(file: ConfigFile(text: "[data]\nmax_bad_row_fraction = x\n", path: "my.toml"))
            Issue.record("expected an error")
        } catch let e as HomefeedError {
            #expect(e.message.contains("my.toml:2"))
        }
    }

    /// A value of the right type but out of range names the file and line of every key the rule involves.
    @Test(arguments: [
        ("[refresh]\nlist_size = 0\n", "refresh.list_size must be in 1...1000 (c.toml:2: refresh.list_size = 0)"),
        ("[rank]\nfresh_slot_depth = 2\n\nfresh_slots = 3\n",
         "rank.fresh_slots must be ≤ fresh_slot_depth (c.toml:2: rank.fresh_slot_depth = 2; c.toml:4: rank.fresh_slots = 3)"),
        ("[two_tower]\nhidden = 0\n", "(c.toml:2: two_tower.hidden = 0)"),
        ("[mf]\ntune = \"maybe\"\n", "mf.tune must be on, off or auto (got 'maybe') (c.toml:2: mf.tune = maybe)"),
        ("[mf]\ntune = \"auto\"\ntune_split = \"x\"\n", "mf.tune_split must be time or random (got 'x') (c.toml:3: mf.tune_split = x)"),
        ("[mf]\nlike_weight = -1\n", "mf.like_weight must be ≥ 0 (c.toml:2: mf.like_weight = -1)"),
        ("[mf]\ntune_max_pairs = -5\n", "mf.tune_max_pairs must be ≥ 0 (c.toml:2: mf.tune_max_pairs = -5)"),
        ("[item_item]\nvideos = 20000\n", "item_item.videos must be in 0...16384 (a dense videos² model) (c.toml:2: item_item.videos = 20000)"),
        ("[item_item]\nregularization = 0\n", "item_item.regularization must be > 0 (c.toml:2: item_item.regularization = 0)"),
        ("[item_item]\nweight = -1\n", "item_item.weight must be ≥ 0 (c.toml:2: item_item.weight = -1)"),
        ("[item_item]\nwindow = -1\n", "item_item.window must be ≥ 0 (c.toml:2: item_item.window = -1)"),
        ("[item_item]\nfar_weight = 2\n", "item_item.far_weight must be in 0...1 (c.toml:2: item_item.far_weight = 2)"),
        ("[rank]\nranker_pool = -1\n", "(c.toml:2: rank.ranker_pool = -1)"),
        ("[rank]\nranker_split = \"newest\"\n", "rank.ranker_split must be time or random (got 'newest') (c.toml:2: rank.ranker_split = newest)"),
        ("[lookupd]\nthreads = 2\ndrain_seconds = -1\n",
         "lookupd.drain_seconds must be in 0...86400 (0 = stop at once) (c.toml:3: lookupd.drain_seconds = -1)"),
        ("[lookupd]\ndrain_seconds = inf\n", "(c.toml:2: lookupd.drain_seconds = inf)"),
    ])
    func outOfRangeValuesNameTheirLine(_ text: String, _ expected: String) throws {
        do {
            _ = try HomefeedConfig(file: ConfigFile(text: text, path: "c.toml"))
            Issue.record("expected an error")
        } catch let e as HomefeedError {
            #expect(e.message.hasSuffix(expected), "\(e.message)")
        }
    }

    @Test func digestIsStableAndSensitive() {
        var c = HomefeedConfig()
        let d = c.digest
        #expect(d == HomefeedConfig().digest)
        c.refresh.listSize = 99
        #expect(c.digest != d)
    }
}

@Suite struct FormatTests {
    @Test func fixed() {
        #expect(Format.fixed(1.25, 1) == "1.3" || Format.fixed(1.25, 1) == "1.2")
        #expect(Format.fixed(3, 2) == "3.00")
        #expect(Format.fixed(-0.5, 1) == "-0.5")
        #expect(Format.fixed(12.345, 0) == "12")
        #expect(Format.bytes(2048) == "2.0 KiB")
    }
}
