import Testing
@testable import SafeTensors

@Test func SafeTensorsModuleLinks() { #expect(Bool(true)) }
