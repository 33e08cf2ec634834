import Foundation
import Testing
import Imaging
import Tensors
import Tokenizer
@testable import Qwen3VL

/// The whole processor (template, tokenizer, image decode and preprocessing) against the reference
/// processor's `input_ids` and `pixel_values` for every model fixture case.
@Test("Processor output equals the reference processor's", arguments: ReferenceCase.all)
func processorMatchesReference(_ c: ReferenceCase) throws {
    let info = try c.caseInfo()
    let model = try ModelCache.model(c.model)
    let processor = try Qwen3VLProcessor(directory: c.directory, configuration: model.configuration)
    var images: [RGBImage] = []
    var messages: [ChatMessage] = []
    for object in info["messages"] as! [[String: Any]] {
        let role = ChatRole(rawValue: object["role"] as! String)!
        var parts: [ContentPart] = []
        for part in object["content"] as! [[String: Any]] {
            if let file = part["image"] as? String {
                let data = try Data(contentsOf: c.directory.appendingPathComponent("reference/\(file)"))
                images.append(try ImageDecoder.decode(data))
                parts.append(.image)
            } else {
                parts.append(.text(part["text"] as! String))
            }
        }
        messages.append(ChatMessage(role: role, content: parts))
    }
    let prompt = try processor.prepare(messages, images: images)
    let ref = try c.store()
    #expect(prompt.tokens == (try ref.ints("input_ids")))
    #expect(ChatTemplate.text(of: ChatTemplate.render(messages, kind: processor.template)) == info["prompt"] as! String)
    #expect(processor.template == (c.model == "thinking" ? .thinking : .instruct))
    if !images.isEmpty {
        let expected = try ref.floatTensor("pixel_values")
        let pixels = prompt.pixelValues()
        #expect(pixels.shape == expected.shape)
        let cmp = Comparison(pixels.data, expected)
        #expect(cmp.maxError <= 0.02, "pixel_values: \(cmp)")
    }
}

@Test func imageCountMustMatchPlaceholders() throws {
    let model = try ModelCache.model("tiny")
    let processor = try Qwen3VLProcessor(directory: Fixtures.url("models/tiny"), configuration: model.configuration)
    #expect(throws: ProcessorError.imageCountMismatch(placeholders: 1, images: 0)) {
        try processor.prepare([ChatMessage(role: .user, content: [.image, .text("hi")])], images: [])
    }
}

@Test("Template ids equal the reference tokenizer's on the rendered text", arguments: try TemplateCase.all())
func templateIdsMatchReference(_ c: TemplateCase) throws {
    let tokenizer = try Tokenizer(directory: Fixtures.url("models/tiny"))
    let model = try ModelCache.model("tiny")
    let processor = Qwen3VLProcessor(tokenizer: tokenizer, imageProcessor: ImageProcessor(configuration: .qwen3VL), configuration: model.configuration)
    let pieces = ChatTemplate.render(c.messages, addGenerationPrompt: c.addGenerationPrompt, addVisionID: c.addVisionID)
    // One pad per image, as in the unexpanded reference text.
    let oneTokenImages = (0..<100).map { _ in ProcessedImage(pixelValues: [], gridT: 1, gridH: 2, gridW: 2, mergeSize: 2) }
    #expect(try processor.tokens(for: pieces, images: oneTokenImages) == c.ids)
}
