import ArgumentParser
import Foundation
import Qwen3VL
import SafeTensors
import Tensors

/// `postlens inspect`: what a model folder holds, without loading the weights into memory.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Summarize a model folder: config, tensors, dtypes, parameter counts.")

    @Argument(help: "Model folder.")
    var directory: String

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "List every tensor.")
    var tensors = false

    func run() throws {
        do {
            let url = URL(fileURLWithPath: directory)
            let config = try Qwen3VLConfiguration.load(from: url)
            let store = try WeightStore(directory: url)
            var byDType: [String: Int] = [:]
            var vision = 0, text = 0, other = 0
            for name in store.names {
                let info = store.info(name)!
                byDType[info.dtype.rawValue, default: 0] += info.elementCount
                if name.contains("visual.") { vision += info.elementCount }
                else if name.contains("language_model.") || name.hasPrefix("model.") || name.hasPrefix("lm_head") { text += info.elementCount }
                else { other += info.elementCount }
            }
            let t = config.text, v = config.vision
            let summary: [String: Any] = [
                "directory": url.path,
                "files": store.files.map { $0.file.url.lastPathComponent },
                "tensor_count": store.names.count,
                "parameters": ["total": store.parameterCount, "vision": vision, "text": text, "other": other],
                "dtypes": byDType,
                "text": ["vocab_size": t.vocabSize, "hidden_size": t.hiddenSize, "layers": t.layerCount, "heads": t.headCount,
                         "kv_heads": t.kvHeadCount, "head_dim": t.headDim, "intermediate_size": t.intermediateSize,
                         "rope_theta": t.ropeTheta, "mrope_section": t.mropeSection],
                "vision": ["depth": v.depth, "hidden_size": v.hiddenSize, "heads": v.headCount, "intermediate_size": v.intermediateSize,
                           "patch_size": v.patchSize, "position_embeddings": v.positionEmbeddingCount, "deepstack_indexes": v.deepstackIndexes,
                           "out_hidden_size": v.outHiddenSize],
                "image_token_id": config.imageTokenID,
                "tie_word_embeddings": config.tieWordEmbeddings,
            ]
            if json {
                var object = summary
                if tensors {
                    object["tensors"] = store.names.map { n -> [String: Any] in
                        let i = store.info(n)!
                        return ["name": n, "dtype": i.dtype.rawValue, "shape": i.shape]
                    }
                }
                print(jsonString(object))
                return
            }
            print("Model folder: \(url.path)")
            print("Files: \(store.files.map { $0.file.url.lastPathComponent }.joined(separator: ", "))")
            print("Tensors: \(store.names.count); parameters \(format(store.parameterCount)) (vision \(format(vision)), text \(format(text)))")
            print("Dtypes: " + byDType.sorted { $0.key < $1.key }.map { "\($0.key) \(format($0.value))" }.joined(separator: ", "))
            print("Text: \(t.layerCount) layers, hidden \(t.hiddenSize), heads \(t.headCount)/\(t.kvHeadCount) × \(t.headDim), MLP \(t.intermediateSize), vocab \(t.vocabSize), θ \(t.ropeTheta), mrope \(t.mropeSection)")
            print("Vision: \(v.depth) blocks, hidden \(v.hiddenSize), heads \(v.headCount), MLP \(v.intermediateSize), patch \(v.patchSize), positions \(v.positionEmbeddingCount), deepstack \(v.deepstackIndexes)")
            print("Tied embeddings: \(config.tieWordEmbeddings)")
            if tensors {
                for n in store.names {
                    let i = store.info(n)!
                    print("  \(n)  \(i.dtype.rawValue)  \(i.shape)")
                }
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }

    func format(_ n: Int) -> String {
        n >= 1_000_000_000 ? String(format: "%.3f B", Double(n) / 1e9) : n >= 1_000_000 ? String(format: "%.2f M", Double(n) / 1e6) : "\(n)"
    }
}
