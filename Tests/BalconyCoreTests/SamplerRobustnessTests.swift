import Foundation
import Testing
@testable import BalconyCore

/// The sampler on settings and logits that used to trap or collapse to token 0 (issue 16, defect 3).
@Suite struct SamplerRobustnessTests {
    let logits: [Float] = [0.5, 2.0, -1.0, 1.5, 0.0, 1.9]

    @Test func tinyTemperatureIsGreedy() {
        for t: Float in [1e-45, 1e-30, 1e-6, 9.9e-4] {
            for topP: Float in [1, 0.9, 0.1] {
                var s = Sampler(SamplingParameters(temperature: t, topK: 0, topP: topP, seed: 7))
                for _ in 0..<5 { #expect(s.sample(logits) == 1, "temperature \(t) top-p \(topP)") }
                #expect(s.distribution(logits) == [0, 1, 0, 0, 0, 0])
            }
        }
        #expect(SamplingParameters(temperature: 1e-3).isGreedy == false)
    }

    @Test func topPWithOneTokenOrPeakedLogitsKeepsACandidate() {
        var one = Sampler(SamplingParameters(temperature: 1, topP: 0.5, seed: 3))
        #expect(one.sample([3.0]) == 0)
        // A peak so sharp that every other probability underflows to 0.
        var peaked = Sampler(SamplingParameters(temperature: 0.01, topP: 0.5, seed: 3))
        #expect(peaked.sample([0, 80, 0, 0]) == 1)
    }

    @Test func nanLogitsAreNeverChosen() {
        var l = logits
        l[1] = .nan
        l[0] = .nan
        #expect(l.withUnsafeBufferPointer { Sampler.argmax($0) } == 5)
        for topP: Float in [1, 0.8] {
            var s = Sampler(SamplingParameters(temperature: 0.8, topK: 0, topP: topP, seed: 11))
            let p = s.distribution(l)
            #expect(p.allSatisfy { $0.isFinite && $0 >= 0 })
            #expect(abs(p.reduce(0, +) - 1) < 1e-5)
            #expect(p[0] == 0 && p[1] == 0)
            for _ in 0..<50 {
                let t = s.sample(l)
                #expect(t != 0 && t != 1, "top-p \(topP) drew a NaN logit's token")
            }
        }
    }

    @Test func infiniteLogitsShareAllTheProbability() {
        var s = Sampler(SamplingParameters(temperature: 1, topK: 3, topP: 0.9, seed: 5))
        var l = logits
        l[2] = .infinity
        l[4] = .infinity
        let p = s.distribution(l)
        #expect(p[2] == 0.5 && p[4] == 0.5 && p.reduce(0, +) == 1)
        for _ in 0..<20 { #expect([2, 4].contains(s.sample(l))) }
        // A finite logit that overflows when divided by the temperature counts as infinite.
        var t = Sampler(SamplingParameters(temperature: 0.01, seed: 5))
        #expect(t.sample([1, 3e37, 2]) == 1)
    }

    @Test func generationRefusesLogitsItCannotSampleFrom() {
        #expect(Sampler.problem(with: logits) == nil)
        #expect(Sampler.problem(with: [1, -.infinity]) == nil)
        let nan = Sampler.problem(with: [1, .nan, 2])
        #expect(nan?.contains("NaN") == true && nan?.contains("token id 1") == true)
        #expect(Sampler.problem(with: [.infinity, 1])?.contains("infinite") == true)
        #expect(Sampler.problem(with: [-.infinity, -.infinity])?.contains("-infinity") == true)
    }
}
