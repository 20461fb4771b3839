import HomefeedCore
import HomefeedModels

/// `homefeed-bench topk`: exact and approximate top-K next to topk_reference.py (being built: issue 3).
func benchTopK(_ a: [String]) throws {
    throw HomefeedError("topk: not built yet")
}
