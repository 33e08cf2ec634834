@testable import Analysis
import Imaging
import Testing

struct Size: Sendable, CustomStringConvertible {
    let width: Int, height: Int
    var description: String { "\(width)x\(height)" }
}

let tilingSizes: [Size] = [
    .init(width: 500, height: 400), .init(width: 1080, height: 1920), .init(width: 1080, height: 8000),
    .init(width: 2000, height: 1500), .init(width: 750, height: 30000), .init(width: 4000, height: 4000),
    .init(width: 1152, height: 1152), .init(width: 1, height: 5000),
]

@Test(arguments: tilingSizes) func tilesCoverEveryPixelWithinTheBudget(_ size: Size) {
    let configuration = DenseText.Configuration(tileSize: 1024, minOverlap: 128, maxTiles: 12)
    let plan = DenseText.plan(width: size.width, height: size.height, configuration: configuration)
    #expect(!plan.tiles.isEmpty)
    #expect(plan.tiles.count <= configuration.maxTiles)
    #expect(plan.tiles.count == plan.rows * plan.columns)
    // Coverage: every row and column of pixels lies in some tile; tiles stay inside the image.
    for t in plan.tiles {
        #expect(t.x >= 0 && t.y >= 0 && t.maxX <= size.width && t.maxY <= size.height)
        // Native resolution unless the budget forced a downscale: a tile holds at most tileSize² model pixels,
        // and no side is over 1.5 × tileSize.
        #expect(Double(t.width * t.height) * plan.scale * plan.scale <= Double(configuration.tileSize * configuration.tileSize) * 1.01)
        #expect(Double(max(t.width, t.height)) * plan.scale <= 1.5 * Double(configuration.tileSize) + 1)
    }
    let xs = Set(plan.tiles.map { $0.x }).sorted(), ys = Set(plan.tiles.map { $0.y }).sorted()
    let tileW = plan.tiles[0].width, tileH = plan.tiles[0].height
    #expect(xs.first == 0 && xs.last! + tileW == size.width)
    #expect(ys.first == 0 && ys.last! + tileH == size.height)
    // Overlap: neighbours overlap by at least minOverlap model pixels (scaled to source pixels).
    let minOverlap = Double(configuration.minOverlap) / plan.scale
    for (a, b) in zip(xs, xs.dropFirst()) { #expect(Double(a + tileW - b) >= minOverlap - 1, "columns \(a) \(b)") }
    for (a, b) in zip(ys, ys.dropFirst()) { #expect(Double(a + tileH - b) >= minOverlap - 1, "rows \(a) \(b)") }
    // Reading order: row-major.
    for (a, b) in zip(plan.tiles, plan.tiles.dropFirst()) { #expect(a.row < b.row || (a.row == b.row && a.column < b.column)) }
}

@Test func smallImagesAreOneNativeTile() {
    let plan = DenseText.plan(width: 800, height: 600)
    #expect(plan.tiles == [DenseText.Tile(x: 0, y: 0, width: 800, height: 600, row: 0, column: 0)])
    #expect(plan.scale == 1)
    #expect(!DenseText.needsTiling(width: 800, height: 600))
    #expect(!DenseText.needsTiling(width: 1100, height: 1100))
    #expect(DenseText.needsTiling(width: 1080, height: 5000))
}

@Test func aLongScreenshotIsAColumnOfNativeTiles() {
    let plan = DenseText.plan(width: 1080, height: 8000, configuration: .init(tileSize: 1280, minOverlap: 128, maxTiles: 12))
    // One column of full-width tiles (no line cut in two), each 1280² model pixels: 1080 × 1517.
    #expect(plan.scale == 1)
    #expect(plan.columns == 1)
    #expect(plan.rows == 6)
    #expect(plan.tiles.allSatisfy { $0.width == 1080 && $0.height == 1517 })
    #expect(DenseText.plan(width: 2000, height: 1500).columns == 3)  // wider than 1.5 × 1024: a grid
}

@Test func theBudgetDownscalesHugeImages() {
    let plan = DenseText.plan(width: 750, height: 30000, configuration: .init(tileSize: 1024, minOverlap: 128, maxTiles: 12))
    #expect(plan.tiles.count <= 12)
    #expect(plan.scale < 1)
}

@Test func cropCopiesTheTilesPixels() {
    var pixels = [UInt8](repeating: 0, count: 4 * 3 * 3)
    for y in 0..<3 { for x in 0..<4 { pixels[(y * 4 + x) * 3] = UInt8(y * 10 + x) } }
    let image = RGBImage(width: 4, height: 3, pixels: pixels)
    let crop = DenseText.crop(image, DenseText.Tile(x: 1, y: 1, width: 2, height: 2, row: 0, column: 0))
    #expect(crop.width == 2 && crop.height == 2)
    #expect(crop.pixels[0] == 11 && crop.pixels[3] == 12 && crop.pixels[6] == 21 && crop.pixels[9] == 22)
}

@Test func mergeRemovesLinesRepeatedAcrossTheOverlap() {
    let merged = DenseText.merge([
        ["标题：双11大促", "第一行", "第二行", "第三行"],
        ["第二行", "第三行", "第四行", "第五行"],
        ["第五行", "第六行"],
    ])
    #expect(merged == ["标题：双11大促", "第一行", "第二行", "第三行", "第四行", "第五行", "第六行"])
}

@Test func mergeToleratesOCRDifferencesAndKeepsTheLongerClippedLine() {
    let merged = DenseText.merge([
        ["订单编号：20261111", "收货地址：北京市朝阳区", "商品：空气炸锅 5L"],
        ["商品：空气炸锅 5L。", "实付款：¥999", "下单时间 2026-11-11"],
    ])
    #expect(merged == ["订单编号：20261111", "收货地址：北京市朝阳区", "商品：空气炸锅 5L。", "实付款：¥999", "下单时间 2026-11-11"])

    let clipped = DenseText.merge([["line one", "line two is lo"], ["line two is long", "line three"]])
    #expect(clipped == ["line one", "line two is long", "line three"])
}

@Test func mergeKeepsGenuineRepeatsOutsideTheOverlap() {
    // "好评" appears twice in the page, not at the seam: both stay.
    let merged = DenseText.merge([["好评", "物流很快", "包装完好"], ["包装完好", "客服态度好", "好评"]])
    #expect(merged == ["好评", "物流很快", "包装完好", "客服态度好", "好评"])
    #expect(DenseText.merge([["a", "", "  "], [], ["b"]]) == ["a", "b"])
}

@Test func mergeWithAWindowDropsRepeatsFromSideBySideTiles() {
    let merged = DenseText.merge([["左栏标题", "共同标题行"], ["共同标题行", "右栏内容"], ["左栏标题"]], window: 12)
    #expect(merged == ["左栏标题", "共同标题行", "右栏内容"])
}

@Test func sameLineComparison() {
    #expect(DenseText.sameLine("满300减50！", "满300减50"))
    #expect(DenseText.sameLine("Hello, World", "hello world"))
    #expect(!DenseText.sameLine("满300减50", "满500减80"))
    #expect(!DenseText.sameLine("第一行", "第二行"))
}
