import Foundation
import JSON

/// Which of Qwen3-VL's two chat templates a model folder ships: the Instruct models' (answers directly) or the
/// Thinking models' (the generation prompt opens a `<think>` block the model reasons in before it answers).
public enum ChatTemplateKind: String, Sendable, Equatable, Codable {
    case instruct, thinking

    /// Read from the folder's template: `chat_template.json` (`chat_template`), else `chat_template.jinja`, else
    /// `tokenizer_config.json` (`chat_template`). A template that writes `<think>` is a thinking template. Without
    /// any template the Instruct one is assumed (the processor renders it natively either way).
    public static func detect(directory: URL) -> ChatTemplateKind {
        guard let text = templateText(directory: directory) else { return .instruct }
        return text.contains("<think>") ? .thinking : .instruct
    }

    static func templateText(directory: URL) -> String? {
        func field(_ file: String) -> String? {
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(file).path),
                  let value = try? JSONParser.parse(data, limits: .files) else { return nil }
            return value["chat_template"]?.stringValue
        }
        if let text = field("chat_template.json") { return text }
        if let data = FileManager.default.contents(atPath: directory.appendingPathComponent("chat_template.jinja").path) {
            return String(decoding: data, as: UTF8.self)
        }
        return field("tokenizer_config.json")
    }
}

extension ChatTemplate {
    /// The Qwen3-VL Thinking template (`tools/fixtures/qwen3vl_thinking_chat_template.jinja`), rule by rule:
    /// - a system message renders in first position as in the Instruct template; a later one renders in place;
    /// - an assistant turn loses its reasoning: from `reasoning` when given, else everything up to the last
    ///   `</think>` of its text (leading newlines of what follows dropped); only turns after the last user question
    ///   (continuations of the answer being written) keep it, as `<think>\n…\n</think>\n\n` before the text;
    /// - the generation prompt opens the think block: `<|im_start|>assistant\n<think>\n`.
    /// `thinking: false` continues that prompt with `\n</think>\n\n`: an empty think block, the model answers at once.
    static func renderThinking(_ messages: [ChatMessage], addGenerationPrompt: Bool, addVisionID: Bool, thinking: Bool) -> [PromptPiece] {
        var out = TemplateWriter(addVisionID: addVisionID)
        out.firstSystem(messages)
        // The last user message that is not a tool response wrapped by hand.
        var lastQuery = messages.count - 1
        for (index, message) in messages.enumerated().reversed() where message.role == .user {
            let text = message.content.map { part -> String in
                if case .text(let t) = part { return t }
                return "<|vision_start|><|image_pad|><|vision_end|>"
            }.joined()
            if !(text.hasPrefix("<tool_response>") && text.hasSuffix("</tool_response>")) {
                lastQuery = index
                break
            }
        }
        for (index, message) in messages.enumerated() {
            switch message.role {
            case .system where index == 0:
                continue
            case .user, .system:
                out.turn(message.role.rawValue, message.content)
            case .assistant:
                var content = message.content.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
                var reasoning = message.reasoning ?? ""
                if message.reasoning == nil, content.contains("</think>") {
                    let parts = content.components(separatedBy: "</think>")
                    reasoning = parts[0].trimmingTrailing("\n").components(separatedBy: "<think>").last!.trimmingLeading("\n")
                    content = parts.last!.trimmingLeading("\n")
                }
                out.openAssistant()
                if index > lastQuery && (index == messages.count - 1 || !reasoning.isEmpty) {
                    out.control("<think>")
                    out.text("\n" + reasoning.trimmingLeading("\n").trimmingTrailing("\n") + "\n")
                    out.control("</think>")
                    out.text("\n\n" + content.trimmingLeading("\n"))
                } else {
                    out.text(content)
                }
                out.control("<|im_end|>")
                out.text("\n")
            case .tool:
                out.tool(messages, at: index)
            }
        }
        if addGenerationPrompt {
            out.openAssistant()
            out.control("<think>")
            out.text("\n")
            if !thinking {
                out.text("\n")
                out.control("</think>")
                out.text("\n\n")
            }
        }
        return out.pieces.pieces
    }
}

extension String {
    /// Python's `rstrip(c)` / `lstrip(c)` for one character, on code points (a `\r\n` loses its `\n`, as in Python).
    func trimmingTrailing(_ character: Unicode.Scalar) -> String {
        var scalars = Substring(self).unicodeScalars
        while scalars.last == character { scalars.removeLast() }
        return String(scalars)
    }

    func trimmingLeading(_ character: Unicode.Scalar) -> String {
        var scalars = Substring(self).unicodeScalars
        while scalars.first == character { scalars.removeFirst() }
        return String(scalars)
    }
}
