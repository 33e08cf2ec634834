import Testing
@testable import Kernels

@Test func KernelsModuleLinks() { #expect(Bool(true)) }
