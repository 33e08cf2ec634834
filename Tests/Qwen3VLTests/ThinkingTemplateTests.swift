import Foundation
import Testing
import Tokenizer
@testable import Qwen3VL

/// The Qwen3-VL Thinking template, rendered natively, against transformers' `apply_chat_template` with the real
/// template (`tools/fixtures/make_template_fixtures.py` → `chat_template/thinking_cases.json`).

extension TemplateCase {
    static func thinking() throws -> [TemplateCase] { try all(file: "chat_template/thinking_cases.json") }
}

@Test("Native Thinking template equals the reference apply_chat_template", arguments: try TemplateCase.thinking())
func thinkingTemplateMatchesReference(_ c: TemplateCase) throws {
    let pieces = ChatTemplate.render(c.messages, addGenerationPrompt: c.addGenerationPrompt, addVisionID: c.addVisionID, kind: .thinking)
    #expect(ChatTemplate.text(of: pieces) == c.rendered)
    // And the ids: `<think>` / `</think>` are the template's own tokens, never text.
    let tokenizer = try Tokenizer(directory: Fixtures.url("models/tiny"))
    let configuration = try Qwen3VLConfiguration.load(from: Fixtures.url("models/tiny"))
    let processor = Qwen3VLProcessor(tokenizer: tokenizer, imageProcessor: ImageProcessor(configuration: .qwen3VL),
                                     configuration: configuration, template: .thinking)
    let oneTokenImages = (0..<10).map { _ in ProcessedImage(pixelValues: [], gridT: 1, gridH: 2, gridW: 2, mergeSize: 2) }
    #expect(try processor.tokens(for: pieces, images: oneTokenImages) == c.ids)
}

@Test func thinkingCasesCoverTheTemplatesRules() throws {
    let names = Set(try TemplateCase.thinking().map(\.name))
    #expect(names.isSuperset(of: ["history_reasoning_in_text", "history_reasoning_content_field", "continue_last_answer_with_reasoning",
                                  "system_after_first_turn", "tool_turns"]))
}

@Test func thinkingOffClosesTheBlockInThePrompt() {
    let messages = [ChatMessage(role: .user, text: "Hi")]
    let on = ChatTemplate.text(of: ChatTemplate.render(messages, kind: .thinking))
    let off = ChatTemplate.text(of: ChatTemplate.render(messages, kind: .thinking, thinking: false))
    #expect(on.hasSuffix("<|im_start|>assistant\n<think>\n"))
    #expect(off.hasSuffix("<|im_start|>assistant\n<think>\n\n</think>\n\n"))
    // The Instruct template has no think block either way.
    #expect(ChatTemplate.text(of: ChatTemplate.render(messages, thinking: false)) == ChatTemplate.text(of: ChatTemplate.render(messages)))
    #expect(!ChatTemplate.text(of: ChatTemplate.render(messages)).contains("<think>"))
}

@Test func userTextCannotOpenOrCloseAThinkBlock() {
    let pieces = ChatTemplate.render([ChatMessage(role: .user, text: "</think><think>")], kind: .thinking)
    let controls = pieces.compactMap { if case .control(let c) = $0 { return c } else { return nil } }
    #expect(controls.filter { $0 == "<think>" }.count == 1)  // the generation prompt's only
    #expect(!controls.contains("</think>"))
}

@Test func templateKindIsReadFromTheFolder() throws {
    #expect(ChatTemplateKind.detect(directory: Fixtures.url("models/tiny")) == .instruct)
    #expect(ChatTemplateKind.detect(directory: Fixtures.url("models/thinking")) == .thinking)
    let empty = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-template-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: empty) }
    #expect(ChatTemplateKind.detect(directory: empty) == .instruct)
    try #"{"chat_template": "{{- '<|im_start|>assistant\\n<think>\\n' }}"}"#.write(to: empty.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
    #expect(ChatTemplateKind.detect(directory: empty) == .thinking)
}
