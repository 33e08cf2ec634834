import Foundation
import Imaging
import Kernels

/// Inputs for `postlens bench` (the hardware probes live in `Kernels.MachineProbe`).
enum BenchInputs {
    /// A synthetic poster-like image: gradients, blocks and stripes (content does not affect speed).
    static func testImage(side: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        for y in 0..<side {
            for x in 0..<side {
                let i = (y * side + x) * 3
                pixels[i] = UInt8((x * 255) / max(1, side - 1))
                pixels[i + 1] = UInt8((y * 255) / max(1, side - 1))
                pixels[i + 2] = ((x / 16 + y / 16) % 2 == 0) ? 230 : 20
            }
        }
        return RGBImage(width: side, height: side, pixels: pixels)
    }
}

import Engine
import Qwen3VL
import Tensors

extension BenchInputs {
    /// Summed decode tokens/s of `sequences` sequences sharing each step (one pass over the weights).
    static func batchedDecodeTokensPerSecond(_ engine: InferenceEngine, sequences: Int, steps: Int) -> Double {
        let model = engine.model
        let tokenizer = engine.processor.tokenizer
        var caches: [KVCache] = []
        var next: [Int] = []
        for i in 0..<sequences {
            let ids = tokenizer.encode("Sequence \(i): describe the promotion in this post in detail.")
            let cache = model.text.makeCache(initialCapacity: ids.count + steps + 1)
            let logits = model.text.forward(tokens: ids, positions: MRoPEPositions.continuation(0..<ids.count, ropeDelta: 0), cache: cache)
            caches.append(cache)
            next.append(Sampler.argmax(logits.data, count: model.configuration.text.vocabSize))
        }
        let start = DispatchTime.now()
        for _ in 0..<steps {
            let logits = model.text.decodeBatch(tokens: next, caches: caches)
            let vocab = model.configuration.text.vocabSize
            next = (0..<sequences).map { Sampler.argmax(logits.data + $0 * vocab, count: vocab) }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return Double(sequences * steps) / seconds
    }

    /// Time to compute a token mask for a task-like schema at several positions (keys, enum, number,
    /// inside a free string), on the model's full vocabulary.
    static func grammarMaskMilliseconds(_ engine: InferenceEngine) throws -> (max: Double, mean: Double) {
        let schema = try JSONSchema.parse(Data(#"""
        {"type":"object","properties":{"summary":{"type":"string","maxLength":400},"verdict":{"enum":["allow","review","block"]},
        "price":{"type":"number","minimum":0},"items":{"type":"array","items":{"type":"string"},"maxItems":8}},
        "required":["summary","verdict","price","items"],"additionalProperties":false}
        """#.utf8))
        let matcher = try engine.generator.makeMatcher(.jsonSchema(name: "bench", schema: schema, strict: true))
        var mask = matcher.makeMask()
        var times: [Double] = []
        func measure() {
            let start = DispatchTime.now()
            matcher.fillMask(&mask)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
        }
        measure()
        for piece in [#"{"summary":""#, "A poster for a sale", #"","verdict":"#, #""review","price":"#, "19"] {
            _ = matcher.accept(bytes: Array(piece.utf8))
            measure()
        }
        return (times.max() ?? 0, times.reduce(0, +) / Double(max(1, times.count)))
    }
}
