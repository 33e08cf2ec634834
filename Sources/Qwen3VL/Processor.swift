import Foundation
import Imaging
import Tensors
import Tokenizer

/// A prompt ready for the model: token ids with each image's placeholder expanded to its token
/// count, and the images' patches. Nothing string-shaped goes past this point.
public struct PreparedPrompt: @unchecked Sendable {
    public let tokens: [Int]
    public let images: [ProcessedImage]
    public var grids: [ImageGrid] { images.map { ImageGrid(t: $0.gridT, h: $0.gridH, w: $0.gridW) } }
    public var imageTokenCount: Int { images.reduce(0) { $0 + $1.tokenCount } }

    public init(tokens: [Int], images: [ProcessedImage]) {
        self.tokens = tokens
        self.images = images
    }

    /// All images' patches concatenated `[ΣN, C·T·P·P]`, as the vision tower takes them.
    public func pixelValues() -> Tensor {
        let width = images.first.map { $0.pixelValues.count / max(1, $0.patchCount) } ?? 0
        let out = Tensor(shape: [images.reduce(0) { $0 + $1.patchCount }, width])
        var offset = 0
        for image in images {
            image.pixelValues.withUnsafeBufferPointer { (out.data + offset).update(from: $0.baseAddress!, count: $0.count) }
            offset += image.pixelValues.count
        }
        return out
    }
}

public enum ProcessorError: Error, CustomStringConvertible, Equatable {
    case imageCountMismatch(placeholders: Int, images: Int)
    case missingControlToken(String)

    public var description: String {
        switch self {
        case .imageCountMismatch(let placeholders, let images):
            return "the messages reference \(placeholders) image(s) but \(images) were given"
        case .missingControlToken(let token):
            return "the tokenizer has no token \(token); is this a Qwen3-VL tokenizer?"
        }
    }
}

/// Chat template + tokenizer + image processor (the reference's `Qwen3VLProcessor`).
public final class Qwen3VLProcessor: Sendable {
    public let tokenizer: Tokenizer
    public let imageProcessor: ImageProcessor
    public let configuration: Qwen3VLConfiguration
    /// The model's chat template: Instruct, or Thinking (whose prompt opens a `<think>` block).
    public let template: ChatTemplateKind

    public init(tokenizer: Tokenizer, imageProcessor: ImageProcessor, configuration: Qwen3VLConfiguration,
                template: ChatTemplateKind = .instruct) {
        self.tokenizer = tokenizer
        self.imageProcessor = imageProcessor
        self.configuration = configuration
        self.template = template
    }

    /// Loads `tokenizer.json` (+ `tokenizer_config.json`) and `preprocessor_config.json` from a model folder.
    public convenience init(directory: URL, configuration: Qwen3VLConfiguration) throws {
        let preprocessorURL = directory.appendingPathComponent("preprocessor_config.json")
        let preprocessor = FileManager.default.fileExists(atPath: preprocessorURL.path)
            ? try PreprocessorConfiguration.load(from: preprocessorURL) : PreprocessorConfiguration.qwen3VL
        self.init(tokenizer: try Tokenizer(directory: directory),
                  imageProcessor: ImageProcessor(configuration: preprocessor),
                  configuration: configuration, template: ChatTemplateKind.detect(directory: directory))
    }

    /// Whether a prompt rendered with `thinking` ends inside an open think block (the answer starts with reasoning).
    public func opensThinkBlock(thinking: Bool, addGenerationPrompt: Bool = true) -> Bool {
        template == .thinking && thinking && addGenerationPrompt
    }

    /// Renders, tokenizes and preprocesses a conversation. `images` are in the order of the image
    /// parts across all messages. Pixel budgets override the preprocessor config per request.
    /// `thinking` applies to thinking templates (false: an empty think block, the model answers directly).
    public func prepare(_ messages: [ChatMessage], images: [RGBImage], addGenerationPrompt: Bool = true,
                        minPixels: Int? = nil, maxPixels: Int? = nil, thinking: Bool = true) throws -> PreparedPrompt {
        let pieces = ChatTemplate.render(messages, addGenerationPrompt: addGenerationPrompt, kind: template, thinking: thinking)
        let placeholders = pieces.filter { if case .image = $0 { return true } else { return false } }.count
        guard placeholders == images.count else {
            throw ProcessorError.imageCountMismatch(placeholders: placeholders, images: images.count)
        }
        let processed = try images.map { try imageProcessor.process($0, minPixels: minPixels, maxPixels: maxPixels) }
        return PreparedPrompt(tokens: try tokens(for: pieces, images: processed), images: processed)
    }

    /// Token ids of rendered pieces: text through BPE with added tokens NOT matched (user text cannot
    /// forge control tokens), control tokens by id, images as start + N × pad + end.
    public func tokens(for pieces: [PromptPiece], images: [ProcessedImage]) throws -> [Int] {
        var ids: [Int] = []
        for piece in pieces {
            switch piece {
            case .text(let text):
                ids += tokenizer.encode(text, parseSpecialTokens: false)
            case .control(let token):
                guard let id = tokenizer.tokenID(token) else { throw ProcessorError.missingControlToken(token) }
                ids.append(id)
            case .image(let index):
                ids.append(configuration.visionStartTokenID)
                ids += Array(repeating: configuration.imageTokenID, count: images[index].tokenCount)
                ids.append(configuration.visionEndTokenID)
            }
        }
        return ids
    }
}
