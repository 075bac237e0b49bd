import Testing
@testable import BalconyCore

@Suite struct HalfPrecisionTests {
    @Test(arguments: [Float(0), 1, -2.5, 65504, 6.1035156e-05, 5.9604645e-08, 0.1, 3.14159])
    func f16RoundTrip(_ x: Float) {
        let h = HalfPrecision.f32ToF16(x)
        let back = HalfPrecision.f16ToF32(h)
        #expect(abs(back - x) <= abs(x) * 1e-3 + 6e-8)
    }

    @Test func knownBitPatterns() {
        #expect(HalfPrecision.f32ToF16(1.0) == 0x3C00)
        #expect(HalfPrecision.f32ToF16(-2.0) == 0xC000)
        #expect(HalfPrecision.f16ToF32(0x7BFF) == 65504)
        #expect(HalfPrecision.f32ToBF16(1.0) == 0x3F80)
        #expect(HalfPrecision.bf16ToF32(0x4049) == 3.140625)
    }
}
