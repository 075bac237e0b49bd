import CKernels
import Foundation

/// The element type balconies run in. Balconies are trained and stored in F32 (the authors'
/// layout stays the interchange format); at load they can be quantized to a GGML block type so that
/// an exit over a 4-bit base reads about one base layer's bytes more, not five (an F32 balcony over
/// SmolLM2's Q4_1 weighs as much as 5.3 of its layers, which would erase most of an exit's saving).
///
/// Only the types whose reference quantizer is a plain per-block rule are offered (llama.cpp's
/// `quantize_row_*_ref`: Q8_0, Q5_1, Q5_0, Q4_1, Q4_0); their blocks are bit for bit what llama.cpp
/// and gguf-py would write. A matrix whose rows are not whole 32-value blocks stays F32.
public enum BalconyWeightType: Sendable, Equatable, CustomStringConvertible {
    case f32
    case quantized(QuantizedType)
    /// The base model's most common quantized matrix type, when it is one of the above (else Q8_0).
    case base

    public static let quantizable: [QuantizedType] = [.q8_0, .q5_1, .q5_0, .q4_1, .q4_0]

    /// Parses `f32`, `base` or a block type name (`q8_0`, `Q4_0`, ...), case-insensitively.
    public init(parsing s: String) throws {
        let lower = s.lowercased()
        if lower == "f32" { self = .f32; return }
        if lower == "base" { self = .base; return }
        guard let q = Self.quantizable.first(where: { $0.rawValue.lowercased() == lower }) else {
            throw BalconyWeightTypeError.unsupported(s)
        }
        self = .quantized(q)
    }

    public var description: String {
        switch self {
        case .f32: return "F32"
        case let .quantized(q): return q.rawValue
        case .base: return "base"
        }
    }

    /// The concrete type for balconies over `base`: `.base` resolved to the base's dominant block type.
    public func resolved(for base: ModelWeights) -> BalconyWeightType {
        guard case .base = self else { return self }
        var counts: [QuantizedType: Int] = [:]
        for layer in base.layers {
            for m in layer.matrices { if let q = m.type.quantized { counts[q, default: 0] += 1 } }
        }
        let dominant = counts.max { a, b in a.value != b.value ? a.value < b.value : a.key.rawValue > b.key.rawValue }?.key
        if let dominant, Self.quantizable.contains(dominant) { return .quantized(dominant) }
        return .quantized(.q8_0)
    }
}

public enum BalconyWeightTypeError: LocalizedError, Equatable {
    case unsupported(String)

    public var errorDescription: String? {
        switch self {
        case let .unsupported(s):
            let names = (["F32", "base"] + BalconyWeightType.quantizable.map(\.rawValue)).joined(separator: ", ")
            return "balconies cannot run as '\(s)': choose one of \(names)"
        }
    }
}

extension WeightMatrix {
    /// This matrix's values requantized to `type` blocks (owned memory), or nil when its rows are
    /// not whole blocks of `type` or the reference quantizer does not make `type`.
    public func quantized(to type: QuantizedType) -> WeightMatrix? {
        guard balcony_quant_can_quantize(type.ggmlId) != 0, cols % type.blockValues == 0 else { return nil }
        let values = toFloats()
        let bytes = rows * type.rowBytes(cols: cols)
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        values.withUnsafeBufferPointer { v in
            balcony_quant_quantize_rows(type.ggmlId, v.baseAddress!, cols, p, rows)
        }
        let wt = WeightType(type)
        return WeightMatrix(rows: rows, cols: cols, type: wt, fileType: wt, data: UnsafeRawPointer(p), storage: WeightStorage(owning: p))
    }
}

extension LayerWeights {
    /// The layer with every product matrix in `type` where its shape allows; `keptF32` counts the
    /// matrices whose rows are not whole blocks and so stay as they were.
    func quantized(to type: QuantizedType) -> (layer: LayerWeights, keptF32: Int) {
        var kept = 0
        let layer = mapMatrices { m in
            if let q = m.quantized(to: type) { return q }
            kept += 1
            return m
        }
        return (layer, kept)
    }
}
