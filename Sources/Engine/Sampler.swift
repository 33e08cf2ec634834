import Foundation

/// Chooses tokens from logits: penalties → temperature → top-k → top-p → min-p → draw
/// (the order of HF and vLLM, spec §7). Greedy is argmax after penalties.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    /// Ids at or above this are padding rows of the embedding (never produced, spec §5.1).
    public let vocabularyLimit: Int
    private var generator: SeededGenerator
    /// Occurrences of each id in the generated text (presence / frequency penalties).
    private var generatedCounts: [Int: Int] = [:]
    /// Ids seen in prompt or output (repetition penalty).
    private var seen: Set<Int> = []

    public init(parameters: SamplingParameters, vocabularyLimit: Int, promptTokens: [Int] = []) {
        self.parameters = parameters
        self.vocabularyLimit = vocabularyLimit
        generator = SeededGenerator(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
        if parameters.repetitionPenalty != 1 { seen = Set(promptTokens) }
    }

    /// Records a generated token (for penalties).
    public mutating func record(_ token: Int) {
        generatedCounts[token, default: 0] += 1
        if parameters.repetitionPenalty != 1 { seen.insert(token) }
    }

    /// Applies penalties and the vocabulary limit in place; `allowed` (a grammar mask) may forbid more.
    public func adjust(_ logits: UnsafeMutablePointer<Float>, count: Int) {
        for i in min(vocabularyLimit, count)..<count { logits[i] = -.infinity }
        let p = Float(parameters.repetitionPenalty)
        if p != 1 {
            for id in seen where id < count {
                logits[id] = logits[id] > 0 ? logits[id] / p : logits[id] * p
            }
        }
        let presence = Float(parameters.presencePenalty), frequency = Float(parameters.frequencyPenalty)
        if presence != 0 || frequency != 0 {
            for (id, n) in generatedCounts where id < count {
                logits[id] -= presence + frequency * Float(n)
            }
        }
    }

    /// Picks the next token from adjusted logits (modified in place).
    public mutating func choose(_ logits: UnsafeMutablePointer<Float>, count: Int) -> Int {
        if parameters.isGreedy { return Self.argmax(logits, count: count) }
        let temperature = Float(parameters.temperature)
        // Candidates sorted by logit, cut by top-k first (cheap partial selection).
        var candidates: [(id: Int, logit: Float)] = []
        candidates.reserveCapacity(count)
        for i in 0..<count where logits[i] > -.infinity { candidates.append((i, logits[i] / temperature)) }
        guard !candidates.isEmpty else { return Self.argmax(logits, count: count) }
        let k = parameters.topK > 0 ? min(parameters.topK, candidates.count) : candidates.count
        if k < candidates.count {
            // Insertion into a sorted top-k is O(n·k): right for the usual k ≤ 100, minutes per token for k near the
            // vocabulary size. Past a small k a full sort (O(n log n)) is cheaper.
            candidates = k <= 128 ? Array(candidates.partiallySorted(k)) : Array(candidates.sorted { $0.logit > $1.logit }.prefix(k))
        } else {
            candidates.sort { $0.logit > $1.logit }
        }
        let maximum = candidates[0].logit
        var probabilities = candidates.map { Double(expf($0.logit - maximum)) }
        var total = probabilities.reduce(0, +)
        var keep = probabilities.count
        if parameters.topP < 1 {
            var cumulative = 0.0
            for (i, p) in probabilities.enumerated() {
                cumulative += p / total
                if cumulative >= parameters.topP { keep = i + 1; break }
            }
        }
        if parameters.minP > 0 {
            let threshold = parameters.minP * probabilities[0]
            keep = min(keep, max(1, probabilities.prefix(keep).firstIndex { $0 < threshold } ?? keep))
        }
        probabilities.removeLast(probabilities.count - keep)
        total = probabilities.reduce(0, +)
        var r = generator.nextUnit() * total
        for (i, p) in probabilities.enumerated() {
            r -= p
            if r < 0 { return candidates[i].id }
        }
        return candidates[keep - 1].id
    }

    public static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<count where logits[i] > bestValue {
            bestValue = logits[i]
            best = i
        }
        return best
    }
}

extension Array where Element == (id: Int, logit: Float) {
    /// The k largest elements by logit, sorted descending.
    func partiallySorted(_ k: Int) -> ArraySlice<Element> {
        var heap = Array(prefix(k)).sorted { $0.logit > $1.logit }
        for element in dropFirst(k) where element.logit > heap[k - 1].logit {
            // Insert into the sorted top-k (k is small: 20–100).
            var index = k - 1
            while index > 0 && heap[index - 1].logit < element.logit { index -= 1 }
            heap.insert(element, at: index)
            heap.removeLast()
        }
        return heap[...]
    }
}

/// Log-probabilities of the model's distribution (log-softmax of raw logits), for `logprobs`.
public func logSoftmax(_ logits: UnsafePointer<Float>, count: Int) -> [Float] {
    var maximum = -Float.infinity
    for i in 0..<count where logits[i] > maximum { maximum = logits[i] }
    var sum: Double = 0
    for i in 0..<count { sum += Double(expf(logits[i] - maximum)) }
    let logZ = maximum + Float(Foundation.log(sum))
    return (0..<count).map { logits[$0] - logZ }
}
