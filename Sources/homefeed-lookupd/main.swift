import Foundation
import HomefeedCore
import HomefeedLookup

// homefeed-lookupd: serves precomputed homepage lists from a Homefeed store over HTTP.
let usage = "homefeed-lookupd --store DIR [--listen HOST:PORT] [--config FILE] [--threads N] [--blocklist FILE]"
let options: [Arguments.Option] = [
    .init("store", "DIR", "store directory written by homefeed-batch run (required)"),
    .init("listen", "HOST:PORT", "address to serve on (default 127.0.0.1:8080; loopback unless told otherwise)"),
    .init("config", "FILE", "config file (see conf/homefeed.toml); flags override it"),
    .init("threads", "N", "worker threads (default: all cores)"),
    .init("blocklist", "FILE", "file of blocked video ids, one per line, reloaded on change"),
]

do {
    let args = try Arguments(command: "homefeed-lookupd", usage: usage, options: options, args: Array(CommandLine.arguments.dropFirst()))
    if args.helpRequested {
        printOut(args.helpText + """

        endpoints:
          GET  /v1/users/{id}/recommendations?region=CC&lang=LL&age=A&gender=G&limit=N&exclude=v1,v2&max_age_hours=H
               (unknown users: the segment list of region × lang × age × gender when published, else popular lists)
          POST /v1/users/{id}/seen            body: ["v1","v2"]
          GET  /healthz  /readyz  /metrics  /v1/version

        signals: SIGTERM/SIGINT drain for [lookupd] drain_seconds (/readyz 503, requests still served), then stop;
        a second signal stops at once. New store versions are picked up without a restart.
        """)
        exit(0)
    }
    guard args.positionals.isEmpty else { throw HomefeedError("unexpected argument '\(args.positionals[0])' (see --help)") }
    var config = try HomefeedConfig.load(path: args.string("config"))
    if let t = try args.int("threads") { config.lookupd.threads = t }
    if let b = args.string("blocklist") { config.lookupd.blocklistPath = b }
    try config.validate()
    let daemon = try LookupDaemon(storeDir: try args.required("store"), config: config, listen: args.string("listen"))
    try daemon.start()
    Log.info("homefeed-lookupd: listening on \(daemon.server.config.host):\(daemon.server.port), store \(daemon.service.store.root), serving \(daemon.service.current?.version.name ?? "nothing yet")")
    daemon.runUntilSignalled()
} catch {
    Log.error("\(error)")
    exit(1)
}
