import BalconyCore
import Foundation

let rows = 2048, cols = 768
var v = [Float](repeating: 0, count: rows * cols)
var seed: UInt64 = 1
for i in 0..<v.count { seed = seed &* 6364136223846793005 &+ 1442695040888963407; v[i] = (Float(seed >> 40) / Float(1 << 24) - 0.5) }
let blocks = v.count / 32
let p = UnsafeMutableRawPointer.allocate(byteCount: blocks * 34, alignment: 64)
for b in 0..<blocks {
    var amax: Float = 0
    for j in 0..<32 { amax = max(amax, abs(v[b * 32 + j])) }
    let d = amax / 127; let id: Float = d == 0 ? 0 : 1 / d
    p.storeBytes(of: HalfPrecision.f32ToF16(d), toByteOffset: b * 34, as: UInt16.self)
    for j in 0..<32 { p.storeBytes(of: Int8((v[b * 32 + j] * id).rounded()), toByteOffset: b * 34 + 2 + j, as: Int8.self) }
}
let w = WeightMatrix(rows: rows, cols: cols, type: .q8_0, fileType: .q8_0, data: p, storage: WeightStorage(owning: p))
let f = WeightMatrix.owned(rows: rows, cols: cols, values: v)
let x = [Float](repeating: 0.5, count: cols)
var y = [Float](repeating: 0, count: rows)
ComputeThreads.set(1)
for (name, m) in [("q8", w), ("f32", f)] {
    let t = Date()
    for _ in 0..<200 { Linear.forward(m, x: x, tokens: 1, y: &y) }
    let dt = Date().timeIntervalSince(t) / 200
    print(name, String(format: "%.3f ms  %.2f GB/s", dt * 1000, Double(m.byteCount) / dt / 1e9))
}
