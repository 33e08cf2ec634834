import Foundation

/// The dense Qwen3-VL checkpoints PostLens runs, as published on the Hugging Face Hub. They share one
/// architecture; what differs is read from each folder's `config.json` (vision width, depth, head size and
/// DeepStack taps; text width, depth and heads; tied or separate `lm_head`) and its chat template (Instruct or
/// Thinking). The mixture-of-experts members (30B-A3B, 235B-A22B) are a different architecture and not listed.
public struct Qwen3VLFamilyMember: Sendable, Equatable {
    /// `2B`, `4B`, `8B`.
    public let size: String
    public let variant: ChatTemplateKind
    /// `Qwen/Qwen3-VL-4B-Thinking`.
    public let repo: String
    /// Download size of the BF16 safetensors, roughly.
    public let approximateGB: Double
    /// The text tower's width and depth, which tell the sizes apart in a `config.json`.
    public let textHiddenSize: Int
    public let textLayers: Int

    /// `qwen3-vl-4b-thinking`: what `--model` and `postlens download` accept besides the repo id.
    public var alias: String { "qwen3-vl-\(size.lowercased())" + (variant == .thinking ? "-thinking" : "") }
    public var name: String { "Qwen3-VL-\(size)-\(variant == .thinking ? "Thinking" : "Instruct")" }
}

public enum Qwen3VLFamily {
    public static let members: [Qwen3VLFamilyMember] = [
        ("2B", 4.3, 2048, 28), ("4B", 8.9, 2560, 36), ("8B", 17.5, 4096, 36),
    ].flatMap { size, gb, hidden, layers in
        [ChatTemplateKind.instruct, .thinking].map { variant in
            Qwen3VLFamilyMember(size: size, variant: variant,
                                repo: "Qwen/Qwen3-VL-\(size)-\(variant == .thinking ? "Thinking" : "Instruct")",
                                approximateGB: gb, textHiddenSize: hidden, textLayers: layers)
        }
    }

    /// The member named by `argument`: its alias (`qwen3-vl-8b`, `8b-thinking`, case-insensitive) or repo id.
    public static func member(named argument: String) -> Qwen3VLFamilyMember? {
        let key = argument.lowercased()
        return members.first { m in
            key == m.repo.lowercased() || key == m.alias || key == String(m.alias.dropFirst("qwen3-vl-".count))
        }
    }

    /// Which member a loaded configuration and template are, by the text tower's shape; nil for other shapes.
    public static func identify(_ configuration: Qwen3VLConfiguration, template: ChatTemplateKind) -> Qwen3VLFamilyMember? {
        members.first {
            $0.variant == template && $0.textHiddenSize == configuration.text.hiddenSize && $0.textLayers == configuration.text.layerCount
        }
    }
}

/// What `/v1/models`, `/health` and the page say about the served model, read from its folder without loading
/// weights: the family member when the shapes match one, whether it thinks, and the shapes themselves.
public struct ModelDescription: Sendable, Equatable {
    /// `Qwen3-VL-4B-Thinking`, or `Qwen3-VL` for a checkpoint of another shape (a fine-tune, a fixture).
    public var name: String
    public var size: String?
    public var template: ChatTemplateKind
    public var thinking: Bool { template == .thinking }
    public var visionDepth: Int
    public var visionHiddenSize: Int
    public var visionHeadDim: Int
    public var deepstackLayers: [Int]
    public var textHiddenSize: Int
    public var textLayers: Int
    public var textHeads: Int
    public var textKVHeads: Int
    public var tiedEmbeddings: Bool

    public init(configuration c: Qwen3VLConfiguration, template: ChatTemplateKind) {
        let member = Qwen3VLFamily.identify(c, template: template)
        name = member?.name ?? "Qwen3-VL"
        size = member?.size
        self.template = template
        visionDepth = c.vision.depth
        visionHiddenSize = c.vision.hiddenSize
        visionHeadDim = c.vision.headDim
        deepstackLayers = c.vision.deepstackIndexes
        textHiddenSize = c.text.hiddenSize
        textLayers = c.text.layerCount
        textHeads = c.text.headCount
        textKVHeads = c.text.kvHeadCount
        tiedEmbeddings = c.tieWordEmbeddings
    }

    /// Reads `config.json` and the chat template of a model folder.
    public static func read(from directory: URL) throws -> ModelDescription {
        ModelDescription(configuration: try Qwen3VLConfiguration.load(from: directory),
                         template: ChatTemplateKind.detect(directory: directory))
    }
}
