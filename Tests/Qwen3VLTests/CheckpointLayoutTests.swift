import Foundation
import SafeTensors
import Testing
@testable import Qwen3VL

/// `Qwen3VLWeights.checkpointLayout` writes the random checkpoints that `postlens bench` times: if it drifted from
/// what transformers writes, the bench would time a model the loader never meets. The fixtures were written by
/// transformers itself (`Tests/Fixtures/models/README.md`), so their safetensors headers are the truth.
@Test("checkpointLayout names exactly the tensors transformers wrote, with their shapes", arguments: ["tiny", "odd"])
func checkpointLayoutMatchesTransformers(_ name: String) throws {
    let directory = Fixtures.url("models/\(name)")
    let configuration = try Qwen3VLConfiguration.load(from: directory)
    let file = try SafeTensorsFile(url: directory.appendingPathComponent("model.safetensors"))
    let written = Dictionary(uniqueKeysWithValues: file.tensors.values.map { ($0.name, $0.shape) })
    let layout = Qwen3VLWeights.checkpointLayout(configuration)
    let declared = Dictionary(uniqueKeysWithValues: layout.map { ($0.name, $0.shape) })
    #expect(layout.count == declared.count, "checkpointLayout repeats a name")
    #expect(Set(declared.keys).subtracting(written.keys).sorted() == [], "declared but not written by transformers")
    #expect(Set(written.keys).subtracting(declared.keys).sorted() == [], "written by transformers but not declared")
    for (tensor, shape) in written where declared[tensor] != nil {
        #expect(declared[tensor] == shape, "\(tensor): layout \(declared[tensor]!) vs transformers \(shape)")
    }
}
