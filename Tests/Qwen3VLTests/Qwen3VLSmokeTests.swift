import Testing
@testable import Qwen3VL

@Test func Qwen3VLModuleLinks() { #expect(Bool(true)) }
