// GPT-2's byte-level alphabet: every byte gets a printable Unicode character, so that a BPE vocabulary of
// strings can cover arbitrary bytes. Ports `bytes_to_unicode` from openai/gpt-2 `encoder.py` (the same table
// as tokenizers' `ByteLevel` pre-tokenizer and decoder): printable Latin-1 bytes map to themselves, the other
// 68 bytes map, in byte order, to U+0100, U+0101, ...

enum ByteLevel {
    /// byte -> the character standing for it in vocabulary strings.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 0x100
        for byte in 0..<256 {
            if (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// scalar value (< 0x144) -> byte, or -1 for characters outside the alphabet.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in byteToScalar.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    /// The byte-level string of some bytes (what the vocabulary stores).
    static func encode<S: Sequence<UInt8>>(_ bytes: S) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }

    /// The bytes a vocabulary string stands for. Like tokenizers' ByteLevel decoder, a token containing any
    /// character outside the alphabet (an added token such as "<|im_start|>" is inside it; "中" would not be)
    /// contributes its own UTF-8 bytes unchanged.
    static func decode(_ token: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for scalar in token.unicodeScalars {
            let v = Int(scalar.value)
            guard v < scalarToByte.count, scalarToByte[v] >= 0 else { return Array(token.utf8) }
            out.append(UInt8(scalarToByte[v]))
        }
        return out
    }
}
