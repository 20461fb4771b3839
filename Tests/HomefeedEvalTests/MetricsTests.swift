import Testing
@testable import HomefeedEval
