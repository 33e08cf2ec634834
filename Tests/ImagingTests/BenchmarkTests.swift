import Foundation
import Imaging
import Qwen3VL
import Testing

/// Timing of decode and full preprocessing. Runs only when POSTLENS_IMAGING_BENCH names a JPEG file, e.g.
/// `POSTLENS_IMAGING_BENCH=/tmp/photo.jpg swift test -c release -Xswiftc -enable-testing --filter BenchmarkTests`.
@Suite struct BenchmarkTests {
    static let path = ProcessInfo.processInfo.environment["POSTLENS_IMAGING_BENCH"]

    static func medianMilliseconds(_ runs: Int, _ body: () throws -> Void) rethrows -> Double {
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return times.sorted()[runs / 2]
    }

    @Test(.enabled(if: path != nil)) func decodeAndPreprocess() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.path!))
        let processor = ImageProcessor(configuration: .qwen3VL)
        let image = try ImageDecoder.decode(data)
        var processed = try processor.process(image)
        let decode = try Self.medianMilliseconds(15) { _ = try ImageDecoder.decode(data) }
        let preprocess = try Self.medianMilliseconds(15) { processed = try processor.process(image) }
        let resize = Self.medianMilliseconds(15) { _ = resizeBicubicAntialiased(image, width: 1920, height: 1088) }
        let down = Self.medianMilliseconds(15) { _ = resizeBicubicAntialiased(image, width: 1280, height: 704) }
        let fill = Self.medianMilliseconds(15) { let a = [Float](repeating: 1, count: 8160 * 1536); precondition(a[5] == 1) }
        print(String(format: "bench allocate+fill a fresh [8160, 1536] Float array (page-fault floor) %.2f ms", fill))
        print(String(format: "bench resize to 1920x1088 %.2f ms, to 1280x704 %.2f ms", resize, down))
        let total = try Self.medianMilliseconds(15) { _ = try processor.process(ImageDecoder.decode(data)) }
        print(String(format: "bench %dx%d: decode %.2f ms, resize+normalize+patchify %.2f ms, total %.2f ms "
            + "(grid %d x %d, %d patches)", image.width, image.height, decode, preprocess, total,
            processed.gridH, processed.gridW, processed.patchCount))
    }
}
