import Foundation
import Testing
import SafeTensors
@testable import Qwen3VL

/// The Qwen3-VL family: nothing about the 2B's shapes is assumed; what tells the members apart is read from the folder.

@Test func anUntiedCheckpointWithoutLmHeadIsRefused() throws {
    // The tiny checkpoint has no lm_head.weight (tied); a config that says "untied" must not fall back to the embedding.
    var config = try Qwen3VLConfiguration.load(from: Fixtures.url("models/tiny"))
    config.tieWordEmbeddings = false
    let store = try SafeTensorsFile(url: Fixtures.url("models/tiny/model.safetensors"))
    #expect(throws: WeightLoadError.missing(key: "lm_head.weight")) {
        _ = try Qwen3VLWeights.load(from: WeightStore(files: [store]), configuration: config)
    }
}

@Test func theUntiedFixtureUsesItsOwnOutputMatrix() throws {
    let model = try ModelCache.model("8b")
    #expect(!model.configuration.tieWordEmbeddings)
    let store = try WeightStore(directory: Fixtures.url("models/8b"))
    let head = try store.floatTensor("lm_head.weight"), embed = try store.floatTensor("model.language_model.embed_tokens.weight")
    let row = [Float](repeating: 0, count: model.configuration.text.hiddenSize)
    var first = row, firstEmbed = row
    model.text.weights.lmHead.dequantizeRow(3, into: &first)
    model.text.weights.embedTokens.dequantizeRow(3, into: &firstEmbed)
    let width = model.configuration.text.hiddenSize
    #expect(Array(first) == Array(head.array[(3 * width)..<(4 * width)]))
    #expect(Array(firstEmbed) == Array(embed.array[(3 * width)..<(4 * width)]))
    #expect(first != firstEmbed)
}

@Test func mixtureOfExpertsCheckpointsAreRefusedByName() {
    let json = #"{"model_type":"qwen3_vl_moe","image_token_id":5,"vision_start_token_id":1,"vision_end_token_id":2,"text_config":{},"vision_config":{}}"#
    do {
        _ = try Qwen3VLConfiguration(jsonData: Data(json.utf8))
        Issue.record("a MoE config loaded")
    } catch {
        #expect("\(error)".contains("mixture-of-experts"))
        #expect("\(error)".contains("2B, 4B or 8B"))
    }
}

/// A config.json with a member's real text and vision shapes (no weights needed to identify it).
func realConfig(hidden: Int, layers: Int, visionDepth: Int, visionHidden: Int, deepstack: [Int], tied: Bool) throws -> Qwen3VLConfiguration {
    let json = """
    {"model_type": "qwen3_vl", "image_token_id": 151655, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
     "tie_word_embeddings": \(tied),
     "text_config": {"vocab_size": 151936, "hidden_size": \(hidden), "num_hidden_layers": \(layers), "num_attention_heads": 32,
       "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288, "rope_theta": 5000000,
       "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": true}},
     "vision_config": {"depth": \(visionDepth), "hidden_size": \(visionHidden), "num_heads": 16, "intermediate_size": 4304,
       "patch_size": 16, "out_hidden_size": \(hidden), "num_position_embeddings": 2304, "deepstack_visual_indexes": \(deepstack)}}
    """
    return try Qwen3VLConfiguration(jsonData: Data(json.utf8))
}

@Test func membersAreIdentifiedByTheirShapesAndTemplate() throws {
    let eight = try realConfig(hidden: 4096, layers: 36, visionDepth: 27, visionHidden: 1152, deepstack: [8, 16, 24], tied: false)
    let four = try realConfig(hidden: 2560, layers: 36, visionDepth: 24, visionHidden: 1024, deepstack: [5, 11, 17], tied: true)
    #expect(Qwen3VLFamily.identify(eight, template: .instruct)?.repo == "Qwen/Qwen3-VL-8B-Instruct")
    #expect(Qwen3VLFamily.identify(eight, template: .thinking)?.repo == "Qwen/Qwen3-VL-8B-Thinking")
    #expect(Qwen3VLFamily.identify(four, template: .thinking)?.name == "Qwen3-VL-4B-Thinking")
    let described = ModelDescription(configuration: eight, template: .thinking)
    #expect(described.visionHeadDim == 72 && described.deepstackLayers == [8, 16, 24] && !described.tiedEmbeddings && described.thinking)
    // Fixture shapes match no published size.
    #expect(try ModelDescription.read(from: Fixtures.url("models/tiny")).name == "Qwen3-VL")
    let thinking = try ModelDescription.read(from: Fixtures.url("models/thinking"))
    #expect(thinking.thinking && thinking.size == nil)
}

@Test func aliasesNameTheRepos() {
    #expect(Qwen3VLFamily.members.count == 6)
    #expect(Qwen3VLFamily.member(named: "4b-thinking")?.repo == "Qwen/Qwen3-VL-4B-Thinking")
    #expect(Qwen3VLFamily.member(named: "Qwen3-VL-8B")?.repo == "Qwen/Qwen3-VL-8B-Instruct")
    #expect(Qwen3VLFamily.member(named: "qwen/qwen3-vl-2b-thinking")?.alias == "qwen3-vl-2b-thinking")
    #expect(Qwen3VLFamily.member(named: "Qwen/Qwen3-VL-30B-A3B-Instruct") == nil)
}
