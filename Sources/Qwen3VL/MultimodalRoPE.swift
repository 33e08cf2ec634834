import Foundation

/// 3D positions `(t, h, w)` of every prompt token and the decode-time offset (spec §4.4), as
/// transformers' `get_rope_index` computes them for one sequence without padding.
public struct MRoPEPositions: Sendable, Equatable {
    public var t: [Int32], h: [Int32], w: [Int32]
    /// `(max position + 1) − prompt length`; a token at cache index `i ≥ prompt length` has position `i + ropeDelta`.
    public var ropeDelta: Int

    public var count: Int { t.count }

    /// Walks the tokens: text runs count up on all three axes; each image-pad run of an image with
    /// merged grid `mh × mw` gets `t = next + ti`, `h = next + a`, `w = next + b`, then `next += max(t, mh, mw)`.
    public static func compute(tokens: [Int], imageTokenID: Int, grids: [ImageGrid], mergeSize: Int) throws -> MRoPEPositions {
        var result = MRoPEPositions(t: [], h: [], w: [], ropeDelta: 0)
        result.t.reserveCapacity(tokens.count)
        result.h.reserveCapacity(tokens.count)
        result.w.reserveCapacity(tokens.count)
        var next = 0
        var imageIndex = 0
        var i = 0
        while i < tokens.count {
            if tokens[i] != imageTokenID {
                result.t.append(Int32(next)); result.h.append(Int32(next)); result.w.append(Int32(next))
                next += 1
                i += 1
                continue
            }
            guard imageIndex < grids.count else { throw PromptError.imageTokenMismatch(expected: grids.count, found: imageIndex + 1) }
            let grid = grids[imageIndex]
            let mh = grid.h / mergeSize, mw = grid.w / mergeSize
            let count = grid.t * mh * mw
            guard i + count <= tokens.count, tokens[i..<(i + count)].allSatisfy({ $0 == imageTokenID }) else {
                throw PromptError.imageTokenMismatch(expected: count, found: tokens[i...].prefix { $0 == imageTokenID }.count)
            }
            for ti in 0..<grid.t {
                for a in 0..<mh {
                    for b in 0..<mw {
                        result.t.append(Int32(next + ti)); result.h.append(Int32(next + a)); result.w.append(Int32(next + b))
                    }
                }
            }
            next += max(grid.t, mh, mw)
            i += count
            imageIndex += 1
        }
        guard imageIndex == grids.count else { throw PromptError.imageTokenMismatch(expected: grids.count, found: imageIndex) }
        result.ropeDelta = next - tokens.count
        return result
    }

    /// Positions of text tokens appended after the prompt (decode steps), at cache indices `range`.
    public static func continuation(_ range: Range<Int>, ropeDelta: Int) -> MRoPEPositions {
        let values = range.map { Int32($0 + ropeDelta) }
        return MRoPEPositions(t: values, h: values, w: values, ropeDelta: ropeDelta)
    }

    public func slice(_ range: Range<Int>) -> MRoPEPositions {
        MRoPEPositions(t: Array(t[range]), h: Array(h[range]), w: Array(w[range]), ropeDelta: ropeDelta)
    }
}

/// Prompts that do not fit the images given with them.
public enum PromptError: Error, CustomStringConvertible, Equatable {
    case imageTokenMismatch(expected: Int, found: Int)
    case tooLong(tokens: Int, limit: Int)
    case empty

    public var description: String {
        switch self {
        case .imageTokenMismatch(let expected, let found):
            return "image placeholders do not match the images: expected \(expected), found \(found)"
        case .tooLong(let tokens, let limit):
            return "the prompt has \(tokens) tokens, more than the context limit of \(limit); use fewer or smaller images, or a shorter conversation"
        case .empty:
            return "the prompt is empty"
        }
    }
}

/// The interleaved multimodal rotary embedding of the text decoder (spec §4.3).
struct TextRotary {
    let headDim: Int
    /// `[headDim/2]`: `θ^(−2j/headDim)`.
    let inverseFrequency: [Float]
    /// Axis of each frequency slot: 0 = T, 1 = H, 2 = W.
    let axis: [Int]

    init(headDim: Int, theta: Double, section: [Int]) {
        self.headDim = headDim
        let half = headDim / 2
        inverseFrequency = (0..<half).map { Float(1 / pow(theta, Double(2 * $0) / Double(headDim))) }
        // Slot j takes H where j ≡ 1 (mod 3) and j < 3·section[1], W where j ≡ 2 (mod 3) and j < 3·section[2], T elsewhere.
        axis = (0..<half).map { j in
            if j % 3 == 1 && j < 3 * section[1] { return 1 }
            if j % 3 == 2 && j < 3 * section[2] { return 2 }
            return 0
        }
    }

    /// cos/sin tables `[count, headDim/2]` for the given positions.
    func tables(_ p: MRoPEPositions) -> (cos: [Float], sin: [Float]) {
        let half = headDim / 2
        var cosTable = [Float](repeating: 0, count: p.count * half)
        var sinTable = cosTable
        for i in 0..<p.count {
            let byAxis = [Float(p.t[i]), Float(p.h[i]), Float(p.w[i])]
            for j in 0..<half {
                let angle = byAxis[axis[j]] * inverseFrequency[j]
                cosTable[i * half + j] = cosf(angle)
                sinTable[i * half + j] = sinf(angle)
            }
        }
        return (cosTable, sinTable)
    }
}
