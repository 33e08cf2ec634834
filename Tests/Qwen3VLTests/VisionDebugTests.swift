import Foundation
import Testing
import Kernels
import Tensors
@testable import Qwen3VL

@Test("Vision intermediate states match the reference block by block", arguments: ReferenceCase.models)
func visionIntermediatesMatch(_ name: String) throws {
    let ref = try ReferenceCase(model: name, name: "one_image").store()
    let model = try ModelCache.model(name)
    let imageGrids = try grids(ref)
    let c = model.configuration.vision
    let pixels = try ref.floatTensor("pixel_values")
    let n = imageGrids.reduce(0) { $0 + $1.patchCount }
    // Patch embedding + positions.
    let x = Tensor(shape: [n, c.hiddenSize])
    model.vision.weights.patchEmbed.forward(pixels.data, rows: n, into: x.data)
    VisionPositions.addPositionEmbedding(x.data, grid: imageGrids[0], table: model.vision.weights.positionEmbedding,
                                         side: c.positionGridSide, mergeSize: c.spatialMergeSize)
    let embed = Comparison(x.data, try ref.floatTensor("vision_embed"))
    #expect(embed.relative <= relativeTolerance, "vision_embed: \(embed)")
    _ = withExtendedLifetime(pixels) { model.vision.encode(pixelValues: pixels.data, grids: imageGrids) { index, state in
        let cmp = Comparison(state.data, try! ref.floatTensor("vision_block_\(index)"))
        #expect(cmp.relative <= relativeTolerance, "vision_block_\(index): \(cmp)")
    } }
}

@Test("Decoder hidden states match the reference layer by layer", .serialized, arguments: ReferenceCase.models)
func decoderIntermediatesMatch(_ name: String) throws {
    let ref = try ReferenceCase(model: name, name: "one_image").store()
    let model = try ModelCache.model(name)
    let ids = try ref.ints("input_ids")
    let positions = try model.positions(for: ids, grids: try grids(ref))
    _ = model.text.forward(tokens: ids, positions: positions, cache: model.text.makeCache(),
                           vision: try visionFeatures(model, ref), logits: .none) { index, state in
        let cmp = Comparison(state.data, try! ref.floatTensor("decoder_layer_\(index)"))
        #expect(cmp.relative <= relativeTolerance, "decoder_layer_\(index): \(cmp)")
    }
}

