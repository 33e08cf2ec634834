import Foundation
import Qwen3VL
import Testing

@Suite struct ConfigurationTests {
    func decode(_ json: String) throws -> PreprocessorConfiguration {
        try JSONDecoder().decode(PreprocessorConfiguration.self, from: Data(json.utf8))
    }

    @Test func fixtureConfigIsQwen3VL() throws {
        let config = try PreprocessorConfiguration.load(from: imageFixtures.appendingPathComponent("preprocessor_config.json"))
        #expect(config == .qwen3VL)
        #expect(config.patchSize == 16 && config.mergeSize == 2 && config.temporalPatchSize == 2)
        #expect(config.minPixels == 65_536 && config.maxPixels == 16_777_216)
    }

    @Test func missingKeysUseQwen3VLValues() throws {
        #expect(try decode("{}") == .qwen3VL)
    }

    @Test func legacyPixelKeys() throws {
        let config = try decode(#"{"min_pixels": 3136, "max_pixels": 1003520, "size": {"shortest_edge": 1, "longest_edge": 2}}"#)
        #expect(config.minPixels == 3136 && config.maxPixels == 1_003_520)
    }

    @Test func roundTrip() throws {
        let config = PreprocessorConfiguration(minPixels: 1024, maxPixels: 4096)
        let data = try JSONEncoder().encode(config)
        #expect(try JSONDecoder().decode(PreprocessorConfiguration.self, from: data) == config)
    }

    @Test func badValueNamesFileAndKey() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-pp-\(getpid()).json")
        try Data(#"{"patch_size": "sixteen"}"#.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let error = #expect(throws: PreprocessorConfigurationError.self) { try PreprocessorConfiguration.load(from: url) }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(url.path) && text.contains("patch_size"), "\(text)")

        try Data(#"{"size": {"shortest_edge": 100, "longest_edge": 10}}"#.utf8).write(to: url)
        let sizeError = #expect(throws: PreprocessorConfigurationError.self) { try PreprocessorConfiguration.load(from: url) }
        #expect((sizeError.map { "\($0)" } ?? "").contains("size"))

        try Data("{not json".utf8).write(to: url)
        #expect(throws: PreprocessorConfigurationError.self) { try PreprocessorConfiguration.load(from: url) }
        #expect(throws: PreprocessorConfigurationError.self) {
            try PreprocessorConfiguration.load(from: url.appendingPathExtension("missing"))
        }
    }
}
