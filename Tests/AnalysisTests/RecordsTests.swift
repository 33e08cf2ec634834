@testable import Analysis
import Foundation
import JSON
import Testing

@Test func csvWithABOMQuotedNewlinesAndQuotesParses() {
    let text = "\u{FEFF}id,image,text,shop\r\n1,a.png,\"第一行\n第二行\",旗舰店\r\n2,b.png,\"He said \"\"好\"\", then left, happy\",\"A, B\"\r\n3,,only text,\r\n"
    let items = RecordReader.readCSV(text)
    #expect(items.count == 3)
    #expect(items[0].record == PostRecord(id: "1", image: "a.png", text: "第一行\n第二行", meta: ["shop": "旗舰店"]))
    #expect(items[1].record?.text == "He said \"好\", then left, happy")
    #expect(items[1].record?.meta == ["shop": "A, B"])
    #expect(items[2].record?.image == nil && items[2].record?.text == "only text")
}

@Test func csvBadRowsBecomeItemErrors() {
    let text = "id,image,text\n1,a.png,ok\n2,b.png\n3,c.png,fine\n4,,\n5,e.png,\"never closed\n"
    let items = RecordReader.readCSV(text)
    #expect(items.map(\.id) == ["1", "2", "3", "4", "5"])
    #expect(items[1].error?.contains("2 fields") == true)
    #expect(items[3].error?.contains("neither") == true)
    #expect(items[4].error?.contains("unterminated") == true)
    #expect(items[0].record != nil && items[2].record != nil)
}

@Test func csvCustomColumnsAndRoundTrip() {
    let items = RecordReader.readCSV("pid,pic,caption\nx9,p.jpg,hi\n", columns: .init(id: "pid", text: "caption", image: "pic"))
    #expect(items.first?.record == PostRecord(id: "x9", image: "p.jpg", text: "hi"))
    let fields = ["plain", "with,comma", "with \"quote\"", "multi\nline", ""]
    let parsed = CSV.parse(CSV.line(fields))
    #expect(parsed.rows == [fields])
}

@Test func jsonlRecordsAndBadLines() {
    let text = """
    {"id": "a", "image": "x.png", "text": "t", "meta": {"k": 1}, "shop": "s"}
    not json

    [1, 2]
    {"image": "y.png"}
    {"id": 7, "text": "numeric id"}
    {"id": "b", "text": ["not", "a string"]}
    """
    let items = RecordReader.readJSONL(text)
    #expect(items.count == 6)
    #expect(items[0].record == PostRecord(id: "a", image: "x.png", text: "t", meta: ["k": 1, "shop": "s"]))
    #expect(items[1].error == "line 2: not valid JSON" && items[1].id == "line-2")
    #expect(items[2].error == "line 4: not a JSON object")
    #expect(items[3].record?.id == "line-5")
    #expect(items[4].record?.id == "7")
    #expect(items[5].error?.contains("must be a string") == true)
    #expect(items.map(\.seq) == Array(0..<6))
}

/// Lines are parsed once under limits: each line's depth, and values counted over all the lines together (the
/// server's body budget); blank lines and a byte-order mark do not shift the line numbers.
@Test func jsonLinesAreParsedOnceWithinLimits() {
    let text = "\u{FEFF}" + #"{"id": "a", "text": "x"}"# + "\n\n" + #"{"id": "deep", "meta": [[[[1]]]]}"# + "\r\n"
        + #"{"id": "b", "meta": [1, 2, 3]}"# + "\n" + #"{"id": "c", "text": "x"}"# + "\n"
    let limits = JSONLines.Limits(perLine: JSONParser.Limits(maxDepth: 4), totalValues: 10)
    let lines = JSONLines.parse(text, limits: limits)
    #expect(lines.map(\.number) == [1, 3, 4, 5])
    #expect((try? lines[0].value.get()) == ["id": "a", "text": "x"])
    guard case .failure(let deep) = lines[1].value else { Issue.record("a line nesting deeper than 4 was read"); return }
    #expect(deep.isLimit && !deep.totalExhausted && deep.reason.contains("deeper than 4"), "\(deep)")
    // The first line holds 3 values and the third 6: the fourth line finds the budget of 10 spent.
    #expect((try? lines[2].value.get()) != nil)
    guard case .failure(let spent) = lines[3].value else { Issue.record("the total of values was not enforced"); return }
    #expect(spent.isLimit && spent.totalExhausted && spent.reason.contains("more than 10 JSON values"), "\(spent)")

    // As records: a refused line is that item's error, saying which limit.
    let items = RecordReader.readJSONL(text, limits: limits)
    #expect(items.map(\.id) == ["a", "line-3", "b", "line-5"])
    #expect(items[1].error == "line 3: refused: arrays and objects nest deeper than 4 levels", "\(String(describing: items[1].error))")
    #expect(items[3].error?.hasPrefix("line 5: refused: the lines together have more than 10 JSON values") == true)
}

@Test func folderInputUsesSidecarText() throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("b.png"))
    try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("a.png"))
    try "caption for a\n".write(to: dir.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
    try "ignored".write(to: dir.appendingPathComponent("notes.md"), atomically: true, encoding: .utf8)
    let items = try RecordReader.read(dir)
    #expect(items.map(\.id) == ["a.png", "b.png"])
    #expect(items[0].record?.text == "caption for a")
    #expect(items[1].record?.text == nil)
}
