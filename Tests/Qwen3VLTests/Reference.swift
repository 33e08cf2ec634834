import Foundation
import Testing
import SafeTensors
import Tensors
@testable import Qwen3VL

/// One reference case written by `tools/fixtures/make_model_fixtures.py` (transformers 5.24, float32).
struct ReferenceCase: Sendable, CustomTestStringConvertible {
    let model: String
    let name: String
    var testDescription: String { "\(model)/\(name)" }

    var directory: URL { Fixtures.url("models/\(model)") }

    func store() throws -> WeightStore {
        // A reference file is one safetensors file; WeightStore wants a folder, so open it directly.
        let file = try SafeTensorsFile(url: directory.appendingPathComponent("reference/\(name).safetensors"))
        return try WeightStore(files: [file])
    }

    /// tiny: the 2B in miniature; odd: unusual shapes; 4b, 8b: the 4B's and 8B's structure (8b with its own vision
    /// shapes and an untied lm_head); thinking: the 2B structure with the Thinking chat template.
    static let models = ["tiny", "odd", "4b", "8b", "thinking"]
    static let names = ["text_only", "one_image", "two_images_one_turn", "multi_turn_image_earlier", "image_upscaled", "image_downscaled"]
    /// Every case of every model: the common ones, then a model's own (`thinking_history`).
    static let all: [ReferenceCase] = models.flatMap { m in caseNames(m).map { ReferenceCase(model: m, name: $0) } }

    static func caseNames(_ model: String) -> [String] {
        let root = (try? Fixtures.json("models/\(model)/reference/cases.json")) as? [String: Any]
        let stored = ((root?["cases"] as? [String: Any])?.keys).map { Set($0) } ?? []
        return names + stored.subtracting(names).sorted()
    }

    func caseInfo() throws -> [String: Any] {
        let root = try Fixtures.json("models/\(model)/reference/cases.json") as! [String: Any]
        return (root["cases"] as! [String: Any])[name] as! [String: Any]
    }
}

/// Loaded models, shared by tests (loading is the slow part).
enum ModelCache {
    nonisolated(unsafe) static var models: [String: Qwen3VLModel] = [:]
    static let lock = NSLock()

    static func model(_ name: String) throws -> Qwen3VLModel {
        lock.lock(); defer { lock.unlock() }
        if let m = models[name] { return m }
        let m = try Qwen3VLModel(directory: Fixtures.url("models/\(name)"))
        models[name] = m
        return m
    }
}

extension WeightStore {
    func ints(_ name: String) throws -> [Int] { try floatTensor(name).array.map { Int($0) } }
}

/// Max absolute difference and the reference's max magnitude; prints the first differing values.
struct Comparison: CustomStringConvertible {
    let maxError: Float
    let referenceMax: Float
    let firstBad: String
    var relative: Float { maxError / max(referenceMax, 1e-12) }
    var description: String { "max |Δ| = \(maxError), max |ref| = \(referenceMax), relative \(relative)\(firstBad)" }

    init(_ actual: UnsafePointer<Float>, _ reference: Tensor, count: Int? = nil) {
        let n = count ?? reference.count
        var maxError: Float = 0, refMax: Float = 0
        var bad = ""
        for i in 0..<n {
            let e = abs(actual[i] - reference[i])
            if e > maxError { maxError = e }
            refMax = max(refMax, abs(reference[i]))
            if bad.isEmpty, !(e <= 1e-3 * max(1, abs(reference[i]))) { bad = "; first difference at \(i): \(actual[i]) vs \(reference[i])" }
        }
        self.maxError = maxError
        referenceMax = refMax
        firstBad = bad
    }
}
