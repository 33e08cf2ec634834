// libFuzzer target for the image decoders (built by scripts/fuzz.sh together with Sources/Imaging and the C codec
// glue): whatever the bytes, the header reader and the decoders return or throw `ImageError`, never trap, and an image
// they do decode has the size it says.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func imageFuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    _ = try? ImageDecoder.header(bytes)
    for target in [nil, (width: 16, height: 16)] as [(width: Int, height: Int)?] {
        guard let image = try? ImageDecoder.decode(bytes, maxPixels: 4_000_000, reducingTo: target) else { continue }
        precondition(image.pixels.count == image.width * image.height * 3, "pixel buffer does not match the size")
    }
    return 0
}
