import Foundation
import KernelsSIMD

/// `out[i] = e^x[i]` for `count` values with the vector `exp` (`SIMDVocabulary.swift`); tests compare it
/// with libm.
public func vectorExp(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        store8(exp(load8(x + i)), out + i)
        i += 8
    }
    while i < count {
        out[i] = expf(x[i])
        i += 1
    }
}
