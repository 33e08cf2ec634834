import Engine
import Foundation
import Imaging
import JSON
import Qwen3VL
import Testing
import TestSupport
@testable import Analysis

/// `postlens analyze --task detect --draw` with the real (tiny, random) engine: results valid, every box in range,
/// one drawing per image at its original (upright) size.

/// Images of awkward sizes: odd sides, an EXIF-rotated JPEG (stored 333×217, shown 217×333), a tiny PNG, a portrait PNG.
func writeDetectInput(_ dir: URL) throws -> URL {
    let input = dir.appendingPathComponent("in")
    try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
    for (source, name) in [("grounding/rect_orient6.jpg", "rotated.jpg"), ("images/odd_333x217.jpg", "odd.jpg"),
                           ("images/tiny_20x30.png", "tiny.png"), ("images/portrait_200x400.png", "portrait.png")] {
        try FileManager.default.copyItem(at: Paths.fixtures.appendingPathComponent(source), to: input.appendingPathComponent(name))
    }
    return input
}

/// The upright size of an image file, as a viewer shows it.
func uprightSize(_ url: URL) throws -> [Int] {
    let image = try ImageDecoder.decode(Data(contentsOf: url))
    return [image.width, image.height]
}

/// Every box of a detect result: both frames in range, consistent with each other and with `image_size`.
func checkBoxes(_ result: JSONValue, size: [Int], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result["image_size"]?.arrayValue?.compactMap(\.intValue) == size, sourceLocation: sourceLocation)
    let frame = ImageFrame(width: size[0], height: size[1])
    for object in result["objects"]?.arrayValue ?? [] {
        let b = object["bbox_2d"]?.arrayValue?.compactMap(\.intValue) ?? []
        let p = object["bbox_px"]?.arrayValue?.compactMap(\.intValue) ?? []
        #expect(b.count == 4 && p.count == 4, sourceLocation: sourceLocation)
        guard b.count == 4, p.count == 4 else { continue }
        #expect(b.allSatisfy { (0...1000).contains($0) } && b[0] < b[2] && b[1] < b[3], "\(b)", sourceLocation: sourceLocation)
        #expect(p[0] >= 0 && p[2] <= size[0] && p[1] >= 0 && p[3] <= size[1] && p[0] <= p[2] && p[1] <= p[3], "\(p) in \(size)",
                sourceLocation: sourceLocation)
        #expect(frame.pixelBox(FrameBox(b.map(Double.init))!).values == p, sourceLocation: sourceLocation)
    }
}

@Test(.timeLimit(.minutes(5))) func analyzeDetectDrawsEveryImageAtItsOriginalSize() throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = try writeDetectInput(dir)
    let drawings = dir.appendingPathComponent("drawn")
    let output = dir.appendingPathComponent("results.csv")
    let r = try runBinary(["analyze", "--task", "detect", "--model", Paths.tinyModel.path, "--input", input.path, "--draw", drawings.path,
                           "--output", output.path, "--max-image-tokens", "8", "--threads", "1"])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stderr.contains("drew 4 image(s)"))
    // JSON lines from the job state (the CSV carries the same rows with both frames as columns).
    let csv = CSV.parse(try String(contentsOf: output, encoding: .utf8)).rows
    #expect(csv.first == ["id", "task", "status", "error", "objects", "boxes_2d", "boxes_px", "result"])
    #expect(csv.count == 5)
    for row in csv.dropFirst() {
        #expect(row[2] == "ok", "\(row)")
        let result = try JSONValue.parse(row[7])
        let file = input.appendingPathComponent(row[0])
        let size = try uprightSize(file)
        checkBoxes(result, size: size)
        // Drawn at the original size (the rotated JPEG upright: 217×333), JPEGs kept as JPEG.
        let drawn = drawings.appendingPathComponent((row[0] as NSString).deletingPathExtension + (row[0].hasSuffix(".png") ? ".png" : ".jpg"))
        #expect(try uprightSize(drawn) == size, "\(drawn.lastPathComponent)")
    }
    #expect(try uprightSize(drawings.appendingPathComponent("rotated.jpg")) == [217, 333])
    // --draw only makes sense for tasks with boxes.
    let refused = try runBinary(["analyze", "--task", "ocr", "--input", input.path, "--draw", drawings.path, "--model", "x"])
    #expect(refused.status != 0 && refused.stderr.contains("--draw needs a task with boxes"))
}

/// The real engine under the detect schema, sampled hot (temperature 4: the random weights give near one-hot logits) with a seed instead of greedy: the random model then writes
/// boxes (greedy decoding of these weights closes the list at once), so the geometry and the drawing have something
/// to show. The grammar still constrains every token, as in `analyze`.
struct SampledEngineAnalyzer: PostAnalyzer {
    let engine: InferenceEngine
    let seed: UInt64

    func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        var parameters = request.parameters
        parameters.sampling.temperature = 50
        parameters.sampling.seed = seed
        let r = try await engine.complete(InferenceEngine.Request(messages: request.messages, images: request.images,
                                                                  parameters: parameters, maxPixels: request.maxPixels))
        return AnalyzerResponse(text: r.text, finishReason: r.finishReason, usage: r.usage)
    }
}

@Test(.timeLimit(.minutes(5))) func sampledDetectBoxesAreInRangeAndDrawnWhereTheySay() async throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = try writeDetectInput(dir)
    let engine = try InferenceEngine(directory: Paths.tinyModel, format: .f32)
    var options = RunOptions()
    options.baseDirectory = input
    options.maxTokens = 3000
    options.maxPixels = 8192
    var boxes = 0, pixelsChecked = 0
    // Seeds until a few answers hold boxes (most close the list at once: `[]` is one likely token).
    for seed in UInt64(1)...80 where boxes < 3 || pixelsChecked == 0 {
        let runner = TaskRunner(task: try AnalysisTask.builtIn(.detect), analyzer: SampledEngineAnalyzer(engine: engine, seed: seed), options: options)
        let items = try RecordReader.read(input)
        var lines: [JSONValue] = []
        for item in items {
            let outcome = await runner.run(try #require(item.record))
            guard let result = outcome.result else { continue }  // an answer cut at max_tokens: the item's error
            checkBoxes(result, size: try uprightSize(input.appendingPathComponent(item.id)))
            boxes += result["objects"]?.arrayValue?.count ?? 0
            lines.append(["id": .string(item.id), "status": "ok", "result": result])
        }
        let drawings = dir.appendingPathComponent("drawn-\(seed)")
        let report = try await AnnotationWriter(runner: runner, directory: drawings).write(items: items, lines: lines)
        #expect(report.written.count == lines.count)
        // Each drawing: original size, and the last box's outline (drawn on top of the others) where bbox_px says.
        for line in lines {
            let id = line["id"]!.stringValue!
            let name = (id as NSString).deletingPathExtension + (id.hasSuffix(".png") ? ".png" : ".jpg")
            let drawn = try ImageDecoder.decode(Data(contentsOf: drawings.appendingPathComponent(name)))
            let original = try ImageDecoder.decode(Data(contentsOf: input.appendingPathComponent(id)))
            #expect(drawn.width == original.width && drawn.height == original.height)
            let items = AnnotatedImage.items(in: line["result"]!)
            guard let last = items.last, id.hasSuffix(".png"), last.box.x2 - last.box.x1 > 4, last.box.y2 - last.box.y1 > 4 else { continue }
            let color = AnnotatedImage.palette[(items.count - 1) % AnnotatedImage.palette.count]
            let y = (last.box.y1 + last.box.y2) / 2, x = last.box.x1
            let i = (y * drawn.width + x) * 3
            #expect(RGBColor(drawn.pixels[i], drawn.pixels[i + 1], drawn.pixels[i + 2]) == color, "\(id) box \(last.box)")
            pixelsChecked += 1
        }
    }
    print("[detect] \(boxes) boxes checked in range and consistent in both frames; \(pixelsChecked) drawn outlines found where bbox_px says")
    #expect(boxes > 0 && pixelsChecked > 0, "no seed gave a drawable box: the geometry and drawing checks saw nothing")
}

/// `analyze --task moderation --draw` as the command runs it (BatchPipeline, then AnnotationWriter), with `FakeEngine`
/// answering the moderation example (two evidence boxes) behind the product's analyzer: every post with an image is
/// drawn at its original size, each evidence box outlined in its colour where `bbox_px` says, and the result lines
/// carry both frames. (The binary's --draw runs the real engine in `analyzeDetectDrawsEveryImageAtItsOriginalSize`.)
@Test(.timeLimit(.minutes(3))) func analyzeModerationDrawsTheEvidence() async throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = try writeDetectInput(dir)
    let drawings = dir.appendingPathComponent("drawn")
    var options = RunOptions()
    options.baseDirectory = input
    let runner = TaskRunner(task: try AnalysisTask.builtIn(.moderation), analyzer: FakeEngine.analyzer(), options: options)
    let pipeline = BatchPipeline(runner: runner, store: try JobStore(path: dir.appendingPathComponent("state.sqlite").path))
    let items = try RecordReader.read(input)
    _ = try await pipeline.run(items, input: input.path, resume: false)
    let lines = try pipeline.exportLines().map { try JSONValue.parse($0) }
    let report = try await AnnotationWriter(runner: runner, directory: drawings).write(items: items, lines: lines)
    #expect(report.written.count == 4, "\(report.skipped)")
    #expect(lines.count == 4)
    for line in lines {
        let id = try #require(line["id"]?.stringValue)
        let result = try #require(line["result"])
        let size = try uprightSize(input.appendingPathComponent(id))
        let evidence = result["evidence"]?.arrayValue ?? []
        #expect(evidence.count == 2, "\(id)")
        let frame = ImageFrame(width: size[0], height: size[1])
        for item in evidence {
            let b = item["bbox_2d"]?.arrayValue?.compactMap(\.intValue) ?? []
            #expect(b.count == 4, "\(id): \(item)")
            guard b.count == 4 else { continue }
            #expect(item["bbox_px"]?.arrayValue?.compactMap(\.intValue) == frame.pixelBox(FrameBox(b.map(Double.init))!).values)
        }
        let name = (id as NSString).deletingPathExtension + (id.hasSuffix(".png") ? ".png" : ".jpg")
        let drawn = try ImageDecoder.decode(Data(contentsOf: drawings.appendingPathComponent(name)))
        #expect([drawn.width, drawn.height] == size, "\(name)")
        // Lossless drawings: each box's left edge, half-way down, is its palette colour.
        guard id.hasSuffix(".png") else { continue }
        for (index, item) in AnnotatedImage.items(in: result).enumerated() where item.box.x2 - item.box.x1 > 4 && item.box.y2 - item.box.y1 > 4 {
            let y = (item.box.y1 + item.box.y2) / 2, i = (y * drawn.width + item.box.x1) * 3
            #expect(RGBColor(drawn.pixels[i], drawn.pixels[i + 1], drawn.pixels[i + 2]) == AnnotatedImage.palette[index], "\(id) box \(index)")
        }
    }
}
