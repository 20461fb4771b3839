import Foundation
import HomefeedCore
import HomefeedData
import HomefeedTestSupport

/// Writes `fixture` as real CSV files into a fresh folder of `dir` and loads it.
func load(_ fixture: FixtureDataset, _ dir: TempDir, _ name: String = "data") throws -> Dataset {
    let path = dir.sub(name)
    try fixture.write(to: path)
    return try DatasetLoader.load(directory: path, config: HomefeedConfig().data, progress: false)
}

/// Video ids of dataset video indices, in the given order.
func videoIDs(_ videos: some Collection<Int32>, _ data: Dataset) -> [String] { videos.map { data.videos.ids[$0] } }

/// A fixture of users and videos with the default CSV columns (US / en, 600 s videos published at 0).
func fixture(users: [String], videos: [String]) -> FixtureDataset {
    var f = FixtureDataset()
    for u in users { f.user(u, "US", "en") }
    for v in videos { f.video(v, "en", published: 0, tags: "") }
    return f
}
