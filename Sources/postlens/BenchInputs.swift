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
