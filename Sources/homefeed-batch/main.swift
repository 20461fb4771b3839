import Foundation
import HomefeedCore

// homefeed-batch: the offline side of Homefeed. One subcommand per job; see `homefeed-batch --help`.
let commands: [(name: String, summary: String, run: ([String]) throws -> Void)] = [
    ("generate", "write a deterministic synthetic dataset", Commands.generate),
    ("import-movielens", "convert MovieLens into the input contract", Commands.importMovieLens),
    ("train", "fit MF, the item-to-item model, the two-tower model and the ranker (daily); save them in the store", Commands.train),
    ("run", "refresh: compute every active user's list and publish a new store version", Commands.run),
    ("eval", "offline evaluation on a holdout: popular, MF, two-tower and hybrid side by side, cold users, fresh videos", Commands.eval),
    ("versions", "list the store's versions", Commands.versions),
    ("rollback", "serve an earlier version and pin it", Commands.rollback),
    ("unpin", "let the next run publish again after a rollback", Commands.unpin),
    ("export", "write the served lists as user<TAB>video,video,…", Commands.export),
]

@MainActor func topHelp() -> String {
    var s = "usage: homefeed-batch COMMAND [options]   (homefeed-batch COMMAND --help for its options)\n\ncommands:\n"
    for c in commands { s += "  " + c.name + String(repeating: " ", count: max(1, 18 - c.name.count)) + c.summary + "\n" }
    return s
}

let argv = Array(CommandLine.arguments.dropFirst())
guard let name = argv.first, name != "--help", name != "-h", name != "help" else {
    printOut(topHelp())
    exit(argv.isEmpty ? 2 : 0)
}
guard let command = commands.first(where: { $0.name == name }) else {
    Log.error("unknown command '\(name)'\n" + topHelp())
    exit(2)
}
do {
    try command.run(Array(argv.dropFirst()))
} catch let error as HomefeedError {
    Log.error(error.message)
    exit(error.exitCode)
} catch {
    // Foundation's file errors print as NSCocoaErrorDomain dumps; say what and where instead.
    let ns = error as NSError
    let path = (ns.userInfo[NSFilePathErrorKey] as? String).map { " (\($0))" } ?? ""
    Log.error(ns.localizedDescription + path)
    exit(1)
}
