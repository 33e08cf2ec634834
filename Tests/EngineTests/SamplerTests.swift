import Foundation
import Testing
@testable import Engine

private func sample(_ logits: [Float], _ p: SamplingParameters, draws: Int = 1) -> [Int] {
    var sampler = Sampler(parameters: p, vocabularyLimit: logits.count)
    return (0..<draws).map { _ in
        var l = logits
        return l.withUnsafeMutableBufferPointer { b in
            sampler.adjust(b.baseAddress!, count: b.count)
            return sampler.choose(b.baseAddress!, count: b.count)
        }
    }
}

@Test func greedyIsArgmax() {
    #expect(sample([0.1, 3, -1, 2.9], SamplingParameters()) == [1])
    var p = SamplingParameters()
    p.temperature = 1
    p.topK = 1
    #expect(sample([0.1, 3, -1, 2.9], p, draws: 20) == Array(repeating: 1, count: 20))
}

@Test func seedMakesSamplingReproducible() {
    var p = SamplingParameters()
    p.temperature = 1
    p.seed = 1234
    let logits: [Float] = (0..<50).map { Float($0 % 7) * 0.3 }
    let a = sample(logits, p, draws: 40), b = sample(logits, p, draws: 40)
    #expect(a == b)
    p.seed = 99
    #expect(sample(logits, p, draws: 40) != a)
}

@Test func topKAndTopPRestrictTheCandidates() {
    var p = SamplingParameters()
    p.temperature = 1
    p.seed = 7
    p.topK = 2
    let logits: [Float] = [5, 4.9, 4.8, 0, -2]
    #expect(Set(sample(logits, p, draws: 200)).isSubset(of: [0, 1]))
    p.topK = 0
    p.topP = 0.5  // the first token alone holds ~35%; with the second the mass passes 0.5
    #expect(Set(sample(logits, p, draws: 200)).isSubset(of: [0, 1]))
    p.topP = 1
    p.minP = 0.5  // keeps tokens with at least half the top probability: 0, 1, 2
    #expect(Set(sample(logits, p, draws: 300)) == [0, 1, 2])
}

@Test func samplingFollowsTheDistribution() {
    var p = SamplingParameters()
    p.temperature = 1
    p.seed = 11
    let logits: [Float] = [0, Float(log(3.0))]  // probabilities 1/4, 3/4
    let draws = sample(logits, p, draws: 4000)
    let ones = Double(draws.filter { $0 == 1 }.count) / 4000
    #expect(abs(ones - 0.75) < 0.03)
}

@Test func penaltiesPushDownRepeatedTokens() {
    var p = SamplingParameters()
    p.presencePenalty = 2
    var sampler = Sampler(parameters: p, vocabularyLimit: 3)
    sampler.record(0)
    var logits: [Float] = [1, 0, -5]
    logits.withUnsafeMutableBufferPointer { sampler.adjust($0.baseAddress!, count: 3) }
    #expect(logits == [-1, 0, -5])

    var r = SamplingParameters()
    r.repetitionPenalty = 2
    let hf = Sampler(parameters: r, vocabularyLimit: 3, promptTokens: [0, 2])
    var l2: [Float] = [4, 1, -2]
    l2.withUnsafeMutableBufferPointer { hf.adjust($0.baseAddress!, count: 3) }
    #expect(l2 == [2, 1, -4])  // positive divided, negative multiplied

    var f = SamplingParameters()
    f.frequencyPenalty = 0.5
    var fs = Sampler(parameters: f, vocabularyLimit: 2)
    fs.record(1); fs.record(1); fs.record(1)
    var l3: [Float] = [0, 2]
    l3.withUnsafeMutableBufferPointer { fs.adjust($0.baseAddress!, count: 2) }
    #expect(l3 == [0, 0.5])
}

@Test func paddingRowsAreNeverProduced() {
    // Ids at or above the tokenizer's vocabulary are untrained padding rows (spec §5.1).
    let sampler = Sampler(parameters: SamplingParameters(), vocabularyLimit: 3)
    var logits: [Float] = [0, 1, 2, 100, 200]
    logits.withUnsafeMutableBufferPointer { sampler.adjust($0.baseAddress!, count: 5) }
    #expect(Sampler.argmax(logits, count: 5) == 2)
}

@Test func logSoftmaxNormalizes() {
    let values: [Float] = [1, 2, 3, 1000]
    let lp = values.withUnsafeBufferPointer { logSoftmax($0.baseAddress!, count: 4) }
    let total = lp.map { exp(Double($0)) }.reduce(0, +)
    #expect(abs(total - 1) < 1e-5)
    #expect(lp[3] > -1e-4)
}
