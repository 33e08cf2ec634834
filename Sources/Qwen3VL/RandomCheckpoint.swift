import Foundation
import SafeTensors
import Tensors

/// Writes a model folder with the real Qwen3-VL-2B-Instruct shapes and random BF16 weights, so the
/// engine's speed can be measured without the real checkpoint (speed does not depend on values).
///
/// Weights are uniform with the scale of the model's initializer (std 0.02); norm weights are 1 so
/// activations stay in a realistic range. The tokenizer is a synthetic byte-level BPE of the real
/// vocabulary size (151,643 merges-built tokens + the 26 Qwen3-VL added tokens).
public enum RandomCheckpoint {
    /// config.json of Qwen3-VL-2B-Instruct (spec §1.1).
    public static var qwen3VL2BConfig: [String: Any] { [
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "image_token_id": 151655, "video_token_id": 151656,
        "vision_start_token_id": 151652, "vision_end_token_id": 151653,
        "tie_word_embeddings": true,
        "text_config": [
            "model_type": "qwen3_vl_text", "vocab_size": 151936, "hidden_size": 2048, "num_hidden_layers": 28,
            "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 6144,
            "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 5_000_000,
            "rope_scaling": ["rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": true],
            "max_position_embeddings": 262144, "attention_bias": false, "tie_word_embeddings": true,
            "bos_token_id": 151643, "eos_token_id": 151645,
        ] as [String: Any],
        "vision_config": [
            "model_type": "qwen3_vl", "depth": 24, "hidden_size": 1024, "num_heads": 16, "intermediate_size": 4096,
            "hidden_act": "gelu_pytorch_tanh", "patch_size": 16, "temporal_patch_size": 2, "spatial_merge_size": 2,
            "in_channels": 3, "out_hidden_size": 2048, "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [5, 11, 17],
        ] as [String: Any],
    ] }

    public static let names = ["qwen3-vl-2b"]

    /// Writes the folder (skipped when `directory` already holds a complete one). Returns the folder.
    @discardableResult
    public static func write(to directory: URL, seed: UInt64 = 42) throws -> URL {
        let fm = FileManager.default
        let marker = directory.appendingPathComponent(".complete")
        if fm.fileExists(atPath: marker.path) { return directory }
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let configData = try JSONSerialization.data(withJSONObject: qwen3VL2BConfig, options: [.prettyPrinted, .sortedKeys])
        try configData.write(to: directory.appendingPathComponent("config.json"))
        let configuration = try Qwen3VLConfiguration(jsonData: configData)
        try writeJSON(["bos_token_id": 151643, "pad_token_id": 151643, "eos_token_id": [151645, 151643], "do_sample": true,
                       "top_k": 20, "top_p": 0.8, "temperature": 0.7, "repetition_penalty": 1.0],
                      to: directory.appendingPathComponent("generation_config.json"))
        try writeJSON(["size": ["shortest_edge": 65536, "longest_edge": 16_777_216], "patch_size": 16, "temporal_patch_size": 2,
                       "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
                       "image_processor_type": "Qwen2VLImageProcessorFast", "processor_class": "Qwen3VLProcessor"],
                      to: directory.appendingPathComponent("preprocessor_config.json"))
        try SyntheticTokenizer.write(to: directory, baseVocabulary: 151_643)

        var state = seed
        let entries = Qwen3VLWeights.checkpointLayout(configuration).map { name, shape in
            SafeTensorsWriter.Entry(name: name, dtype: .bf16, shape: shape) { buffer in
                let out = buffer.bindMemory(to: UInt16.self)
                let isNorm = name.hasSuffix("norm.weight") || name.hasSuffix("norm1.weight") || name.hasSuffix("norm2.weight")
                if isNorm {
                    out.update(repeating: floatToBF16(1))
                    return
                }
                // Uniform on ±0.0346 (std 0.02); a fast LCG is plenty for timing.
                for i in 0..<out.count {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    let unit = Float(UInt32(truncatingIfNeeded: state >> 33)) * (1 / 2_147_483_648) - 1
                    out[i] = floatToBF16(unit * 0.0346)
                }
            }
        }
        try SafeTensorsWriter.write(entries, to: directory.appendingPathComponent("model.safetensors"))
        _ = fm.createFile(atPath: marker.path, contents: Data())
        return directory
    }

    static func writeJSON(_ object: Any, to url: URL) throws {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]).write(to: url)
    }
}

/// A byte-level BPE `tokenizer.json` of a chosen size: the 256 byte symbols, then every pair of them,
/// then pairs extended by one more symbol — unique strings built only by merges, as BPE requires.
enum SyntheticTokenizer {
    static let addedTokens: [(String, Bool)] = [
        ("<|endoftext|>", true), ("<|im_start|>", true), ("<|im_end|>", true), ("<|object_ref_start|>", true),
        ("<|object_ref_end|>", true), ("<|box_start|>", true), ("<|box_end|>", true), ("<|quad_start|>", true),
        ("<|quad_end|>", true), ("<|vision_start|>", true), ("<|vision_end|>", true), ("<|vision_pad|>", true),
        ("<|image_pad|>", true), ("<|video_pad|>", true), ("<tool_call>", false), ("</tool_call>", false),
        ("<|fim_prefix|>", false), ("<|fim_middle|>", false), ("<|fim_suffix|>", false), ("<|fim_pad|>", false),
        ("<|repo_name|>", false), ("<|file_sep|>", false), ("<tool_response>", false), ("</tool_response>", false),
        ("<think>", false), ("</think>", false),
    ]

    /// GPT-2's printable stand-ins for the 256 byte values.
    static func byteSymbols() -> [String] {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var mapping = [Int: Int]()
        for b in printable { mapping[b] = b }
        var extra = 0
        for b in 0..<256 where mapping[b] == nil {
            mapping[b] = 256 + extra
            extra += 1
        }
        printable.removeAll()
        return (0..<256).map { String(UnicodeScalar(UInt32(mapping[$0]!))!) }
    }

    static func write(to directory: URL, baseVocabulary: Int) throws {
        let symbols = byteSymbols()
        var vocab: [String: Int] = [:]
        var merges: [[String]] = []
        var tokens = symbols
        for (i, s) in symbols.enumerated() { vocab[s] = i }
        outer: for a in 0..<256 {
            for b in 0..<256 {
                if tokens.count >= baseVocabulary { break outer }
                let s = symbols[a] + symbols[b]
                vocab[s] = tokens.count; tokens.append(s); merges.append([symbols[a], symbols[b]])
            }
        }
        var pair = 256
        while tokens.count < baseVocabulary {
            for c in 0..<256 where tokens.count < baseVocabulary {
                let s = tokens[pair] + symbols[c]
                guard vocab[s] == nil else { continue }
                vocab[s] = tokens.count; tokens.append(s); merges.append([tokens[pair], symbols[c]])
            }
            pair += 1
        }
        let added = addedTokens.enumerated().map { i, token -> [String: Any] in
            ["id": baseVocabulary + i, "content": token.0, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": token.1]
        }
        let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            ]] as [String: Any],
            "post_processor": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges] as [String: Any],
        ]
        try JSONSerialization.data(withJSONObject: json).write(to: directory.appendingPathComponent("tokenizer.json"))
        let decoder = Dictionary(uniqueKeysWithValues: addedTokens.enumerated().map { i, token in
            ("\(baseVocabulary + i)", ["content": token.0, "special": token.1, "lstrip": false, "rstrip": false,
                                       "normalized": false, "single_word": false] as [String: Any])
        })
        try RandomCheckpoint.writeJSON(["added_tokens_decoder": decoder, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                                        "bos_token": NSNull(), "model_max_length": 262144, "tokenizer_class": "Qwen2Tokenizer"],
                                       to: directory.appendingPathComponent("tokenizer_config.json"))
    }
}
