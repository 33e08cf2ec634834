import Engine
import Foundation
import Imaging
import JSON
import Testing
import TestSupport
@testable import Analysis

/// The `detect` task and `moderation`'s evidence: schemas, both coordinate frames, CSV columns, drawings.

let photo = ImageFrame(width: 333, height: 217)

@Test func detectResultsCarryBothFramesAndTheImageSize() throws {
    let task = try AnalysisTask.builtIn(.detect)
    let answer = #"""
    {"objects": [
      {"bbox_2d": [900, 800, 100, 200], "label": " QR code ", "category": "qr_code", "text": "  "},
      {"bbox_2d": [0, 0, 1000, 1000], "label": "poster", "category": null, "text": "全网最低价"},
      {"bbox_2d": [100, 200, 900, 800], "label": "qr code", "category": "qr_code", "text": null},
      {"bbox_2d": [5, 5, 5, 90], "label": "line", "category": "other", "text": null}
    ]}
    """#
    let result = try task.result(fromModelOutput: answer, context: PostContext(record: PostRecord(id: "1", image: "a.jpg"), referenceYear: 2026, image: photo))
    let objects = try #require(result["objects"]?.arrayValue)
    // Reversed corners ordered; the repeat (same label, same box) and the zero-width box dropped.
    #expect(objects.count == 2)
    #expect(objects[0]["bbox_2d"] == [100, 200, 900, 800])
    #expect(objects[0]["bbox_px"] == [33, 43, 300, 174])     // 0.1·333 = 33.3, 0.2·217 = 43.4, 0.9·333 = 299.7, 0.8·217 = 173.6
    #expect(objects[0]["label"] == "QR code")
    #expect(objects[0]["text"] == .null)
    #expect(objects[1]["bbox_px"] == [0, 0, 333, 217])
    #expect(objects[1]["text"] == "全网最低价")
    #expect(result["image_size"] == [333, 217])
}

@Test func detectNeedsAnImage() async throws {
    let task = try AnalysisTask.builtIn(.detect)
    #expect(throws: TaskError("the detect task needs an image")) {
        try task.result(fromModelOutput: #"{"objects": []}"#, context: PostContext(record: PostRecord(id: "1", text: "hi"), referenceYear: 2026))
    }
    // The runner refuses before calling the model (a call would be wasted).
    let runner = TaskRunner(task: task, analyzer: FakeEngine.analyzer(), options: RunOptions())
    let outcome = await runner.run(PostRecord(id: "t", text: "only text"))
    #expect(outcome.error == "the detect task needs an image")
    #expect(outcome.usage.promptTokens == 0)
}

@Test func moderationEvidenceIsGroundedOnlyWithAnImage() throws {
    let task = try AnalysisTask.builtIn(.moderation)
    #expect(task.versionTag == "moderation@3")
    let answer = TaskExamples.modelOutput(for: task).sortedText
    let withImage = try task.result(fromModelOutput: answer, context: PostContext(record: PostRecord(id: "1"), referenceYear: 2026, image: photo))
    let evidence = try #require(withImage["evidence"]?.arrayValue)
    #expect(evidence.count == 2)
    #expect(evidence[1]["bbox_2d"] == [700, 760, 960, 980])
    #expect(evidence[1]["bbox_px"] == [233, 165, 320, 213])
    // A text-only post has nothing to point at.
    let textOnly = try task.result(fromModelOutput: answer, context: PostContext(record: PostRecord(id: "1", text: "x"), referenceYear: 2026))
    #expect(textOnly["evidence"] == [])
}

/// The paths of strings without a maxLength (or enum) and arrays without a maxItems: none in a task's schema, so that
/// constrained output always closes (`BoundedSchemaTests` checks every task).
func unbounded(_ schema: JSONValue, path: String = "$") -> [String] {
    var out: [String] = []
    let types = schema["type"]?.stringValue.map { [$0] } ?? (schema["type"]?.arrayValue ?? []).compactMap(\.stringValue)
    if types.contains("string"), schema["enum"] == nil, schema["maxLength"] == nil { out.append(path) }
    if types.contains("array") {
        if schema["maxItems"] == nil { out.append(path) }
        if let items = schema["items"] { out += unbounded(items, path: path + "[]") }
    }
    for (key, sub) in schema["properties"]?.objectValue ?? [:] { out += unbounded(sub, path: path + "." + key) }
    return out
}

@Test(arguments: [TaskKind.detect, .moderation])
func groundingSchemasAreBoundedAndPutTheBoxFirst(_ kind: TaskKind) throws {
    let task = try AnalysisTask.builtIn(kind)
    #expect(unbounded(task.schema) == [])
    // Qwen3-VL's own order inside a grounded item: bbox_2d, then label.
    let ordered = task.schema.orderedSchemaValue
    let list = kind == .detect ? ordered["properties"]?["objects"] : ordered["properties"]?["evidence"]
    let keys = list?["items"]?["properties"]?.objectValue?.keys.map { $0 } ?? []
    #expect(keys.prefix(2) == ["bbox_2d", "label"])
    // The constrained decoder accepts it.
    _ = try JSONSchema.parse(ordered)
}

@Test func detectInstructionNamesTheTargets() throws {
    let task = AnalysisTask.detect(instruction: "  competitor logos ")
    #expect(task.instruction == "competitor logos")
    let prompt = task.renderedPrompt(for: PostRecord(id: "1", image: "a.jpg"), language: .en, hasImage: true)
    #expect(prompt.contains("Look only for: competitor logos"))
    #expect(AnalysisTask.detect(instruction: " ").instruction == nil)
}

@Test func csvCarriesBothFrames() throws {
    let result: JSONValue = [
        "objects": [
            ["label": "QR", "bbox_2d": [100, 200, 900, 800], "bbox_px": [33, 43, 300, 174], "category": "qr_code", "text": nil],
            ["label": "logo", "bbox_2d": [0, 0, 500, 500], "bbox_px": [0, 0, 167, 109], "category": "logo", "text": nil],
        ],
        "image_size": [333, 217],
    ]
    let csv = ResultCSV.render([["id": "p1", "task": "detect", "status": "ok", "error": nil, "result": result]], task: .detect)
    let rows = CSV.parse(csv).rows
    #expect(rows[0] == ["id", "task", "status", "error", "objects", "boxes_2d", "boxes_px", "result"])
    #expect(rows[1][4] == "QR;logo")
    #expect(rows[1][5] == "QR [100,200,900,800]; logo [0,0,500,500]")
    #expect(rows[1][6] == "QR [33,43,300,174]; logo [0,0,167,109]")
    let moderation = ResultCSV.render([["id": "m", "task": "moderation", "status": "ok", "result": [
        "verdict": "review", "categories": [], "evidence": [["label": "QR", "bbox_2d": [1, 2, 3, 4], "bbox_px": [5, 6, 7, 8]]]]]], task: .moderation)
    let m = CSV.parse(moderation).rows
    #expect(m[0].contains("evidence_2d") && m[0].contains("evidence_px"))
    #expect(m[1][m[0].firstIndex(of: "evidence_px")!] == "QR [5,6,7,8]")
}

// MARK: - Drawing

@Test func annotatedImagesKeepTheSizeAndOutlineEachBox() throws {
    let gray = RGBColor(100, 100, 100)
    var image = RGBImage(width: 333, height: 217, pixels: [UInt8](repeating: 100, count: 333 * 217 * 3))
    image.fill(x0: 0, y0: 0, x1: 1, y1: 1, color: gray)
    let items = [GroundedItem(label: "QR code", category: "qr_code", box: PixelBox(x1: 40, y1: 60, x2: 200, y2: 180)),
                 GroundedItem(label: "二维码", category: "contact", box: PixelBox(x1: 250, y1: 10, x2: 330, y2: 100))]
    let drawn = AnnotatedImage.draw(image, items: items)
    #expect(drawn.width == 333 && drawn.height == 217)
    func pixel(_ x: Int, _ y: Int) -> RGBColor {
        let i = (y * drawn.width + x) * 3
        return RGBColor(drawn.pixels[i], drawn.pixels[i + 1], drawn.pixels[i + 2])
    }
    let first = AnnotatedImage.palette[0], second = AnnotatedImage.palette[1]
    // The outline lies inside the box: its outer pixels are coloured, the pixels just outside are not.
    #expect(pixel(40, 120) == first && pixel(199, 120) == first && pixel(120, 179) == first)
    #expect(pixel(39, 120) == gray && pixel(200, 120) == gray && pixel(120, 180) == gray)
    #expect(pixel(120, 120) == gray)  // the inside stays visible
    #expect(pixel(329, 50) == second)
    // Tags: ASCII labels are written out, others fall back to their category.
    #expect(AnnotatedImage.tag(items[0], index: 0) == "1 QR code")
    #expect(AnnotatedImage.tag(items[1], index: 1) == "2 contact")
    // White text on the tag above the first box.
    let tagRow = (0..<drawn.width).contains { pixel($0, 52) == .white }
    #expect(tagRow)
}

@Test func encodedAnnotationsDecodeToTheSamePixels() throws {
    var image = RGBImage(width: 37, height: 23, pixels: (0..<(37 * 23 * 3)).map { UInt8($0 % 251) })
    image.draw(text: "Az9", x: 2, y: 2, scale: 2, color: .white)
    let png = try ImageEncoder.encode(image, as: .png)
    #expect(try ImageDecoder.decode(png) == image)  // lossless
    let jpeg = try ImageEncoder.encode(image, as: .jpeg, quality: 95)
    let back = try ImageDecoder.decode(jpeg)
    #expect(back.width == 37 && back.height == 23 && ImageDecoder.sniff(jpeg) == .jpeg)
}

@Test(arguments: [TaskKind.detect, .moderation])
func theConstrainedDecoderAcceptsAGroundedAnswer(_ kind: TaskKind) throws {
    let engine = try InferenceEngine(directory: Paths.tinyModel, format: .f32)
    let task = try AnalysisTask.builtIn(kind)
    let runner = TaskRunner(task: task, analyzer: FakeEngine.analyzer(), options: RunOptions())
    let format = try #require(runner.generationParameters().responseFormat)
    let matcher = try engine.generator.makeMatcher(format)
    let answer = TaskExamples.modelOutput(for: task)
    // The example in the schema's key order, compact, as the constrained decoder writes it.
    let text = JSONWriter().string(reorder(answer, like: task.schema.orderedSchemaValue))
    #expect(matcher.accept(bytes: Array(text.utf8)), "\(text)")
    #expect(matcher.isComplete)
}

/// `value` with object keys in the order of `schema`'s properties.
func reorder(_ value: JSONValue, like schema: JSONValue) -> JSONValue {
    switch value {
    case .object(let o):
        let properties = schema["properties"]?.objectValue ?? [:]
        return .object(JSONObject(properties.keys.compactMap { key in o[key].map { (key, reorder($0, like: properties[key]!)) } }))
    case .array(let a):
        return .array(a.map { reorder($0, like: schema["items"] ?? [:]) })
    default:
        return value
    }
}

/// A detect job (`/v1/batches`, `postlens jobs submit`): its optional instruction is kept in the stored spec, so every
/// worker runs the same prompt; other built-in tasks still refuse an instruction.
@Test func detectJobSpecsKeepTheirInstruction() throws {
    let spec = try JobSpec.parse(task: "detect", options: ["instruction": "competitor logos"])
    #expect(spec.tag == "detect@2")
    let stored = try JobSpec(json: spec.json)
    #expect(try stored.makeTask().instruction == "competitor logos")
    #expect(try JobSpec.parse(task: "detect", options: [:]).makeTask().instruction == nil)
    #expect(throws: JobSpec.OptionError(key: "instruction", rule: "is only used by the custom and detect tasks")) {
        try JobSpec.parse(task: "ocr", options: ["instruction": "x"])
    }
    #expect(throws: JobSpec.OptionError(key: "schema", rule: "is only used by the custom task")) {
        try JobSpec.parse(task: "detect", options: ["schema": ["type": "object"]])
    }
    #expect(JobSpec.runnableTags.contains("detect@2") && JobSpec.runnableTags.contains("moderation@3"))
}
