import Foundation

/// Where balcony tensors live in safetensors files — one place for names, shapes and the q/k row
/// order, shared by balcony files and training states (docs/balcony-files.md).
///
/// A *group* is a list of `BalconyParameters` (balconies, or optimizer moments of the same
/// shapes) written under one prefix: set `i` of group `p` holds tensors `p + "\(i)." + name`,
/// `name` from `BalconyParameters.tensorNames`/`biasNames`. Files always hold Hugging Face q/k row
/// order; values in memory are in the base model's order (`LlamaConfig.ropeStyle`).
enum BalconyTensorLayout {
    /// The authors' prefix of the balconies (`NestedLlamaForCausalLM`'s `model.exit_modules`).
    static let balconyPrefix = "model.exit_modules."

    /// Relative tensor names with PyTorch shapes for one balcony of a model shaped `c`.
    static func shapes(_ c: LlamaConfig) -> [(String, [Int])] {
        var out: [(String, [Int])] = [
            ("0.input_layernorm.weight", [c.dim]),
            ("0.self_attn.q_proj.weight", [c.qDim, c.dim]),
            ("0.self_attn.k_proj.weight", [c.kvDim, c.dim]),
            ("0.self_attn.v_proj.weight", [c.kvDim, c.dim]),
            ("0.self_attn.o_proj.weight", [c.dim, c.qDim]),
            ("0.post_attention_layernorm.weight", [c.dim]),
            ("0.mlp.gate_proj.weight", [c.hiddenDim, c.dim]),
            ("0.mlp.up_proj.weight", [c.hiddenDim, c.dim]),
            ("0.mlp.down_proj.weight", [c.dim, c.hiddenDim]),
            ("1.weight", [c.dim]),
        ]
        if c.attentionBias {
            out += [("0.self_attn.q_proj.bias", [c.qDim]), ("0.self_attn.k_proj.bias", [c.kvDim]),
                    ("0.self_attn.v_proj.bias", [c.kvDim])]
        }
        return out
    }

    /// Heads and values per row of the tensors whose rows follow the RoPE pairing (q/k weights and
    /// biases); nil for every other tensor.
    static func ropeRows(_ name: String, _ c: LlamaConfig) -> (heads: Int, cols: Int)? {
        switch name {
        case "0.self_attn.q_proj.weight": return (c.headCount, c.dim)
        case "0.self_attn.k_proj.weight": return (c.kvHeadCount, c.dim)
        case "0.self_attn.q_proj.bias": return (c.headCount, 1)
        case "0.self_attn.k_proj.bias": return (c.kvHeadCount, 1)
        default: return nil
        }
    }

    /// A tensor's values in file order (Hugging Face q/k rows).
    static func toFile(_ values: [Float], name: String, _ c: LlamaConfig) -> [Float] {
        guard let r = ropeRows(name, c) else { return values }
        return RopeRowOrder.toHuggingFace(values, style: c.ropeStyle, heads: r.heads, cols: r.cols)
    }

    /// A tensor's values in the base model's order.
    static func fromFile(_ values: [Float], name: String, _ c: LlamaConfig) -> [Float] {
        guard let r = ropeRows(name, c) else { return values }
        return RopeRowOrder.fromHuggingFace(values, style: c.ropeStyle, heads: r.heads, cols: r.cols)
    }

    /// The F32 tensors of `groups`, in the order they are given.
    static func tensors(_ groups: [(prefix: String, sets: [BalconyParameters])], _ c: LlamaConfig) -> [SafetensorsWriter.Tensor] {
        let shapes = shapes(c)
        var out: [SafetensorsWriter.Tensor] = []
        for g in groups {
            for i in g.sets.indices {
                for (name, shape) in shapes { out.append(.init(name: "\(g.prefix)\(i).\(name)", dtype: .f32, shape: shape)) }
            }
        }
        return out
    }

    /// Writes `groups` as one F32 safetensors file, atomically, converting q/k rows to Hugging
    /// Face order one tensor at a time (no second copy of everything in memory).
    static func write(_ groups: [(prefix: String, sets: [BalconyParameters])], config c: LlamaConfig,
                      metadata: [String: String], to url: URL) throws {
        // Tensor name -> (group, set, relative name), so the writer's callback can find values.
        var index: [String: (Int, Int, String)] = [:]
        for (g, group) in groups.enumerated() {
            for i in group.sets.indices {
                for (name, _) in shapes(c) { index["\(group.prefix)\(i).\(name)"] = (g, i, name) }
            }
        }
        try SafetensorsWriter.write(to: url, tensors: tensors(groups, c), metadata: metadata) { tensor in
            guard let (g, i, name) = index[tensor.name], let values = groups[g].sets[i].tensor(named: name) else { return [] }
            return toFile(values, name: name, c)
        }
    }

    /// Where a named tensor can be read from: one file, or the shards of a sharded checkpoint.
    struct Source {
        var files: [SafetensorsFile]
        var byName: [String: (SafetensorsFile, SafetensorsTensor)]

        init(_ files: [SafetensorsFile]) {
            self.files = files
            byName = [:]
            for f in files { for t in f.tensors { byName[t.name] = (f, t) } }
        }

        var names: [String] { byName.keys.sorted() }
    }

    /// Checks that `source` holds every tensor of `groups` (each with `counts[g]` sets) with the
    /// right shape, and nothing else except names `ignorable` accepts; throws the full list of
    /// problems otherwise.
    static func check(_ source: Source, groups: [(prefix: String, count: Int)], config c: LlamaConfig,
                      path: String, ignorable: (String) -> Bool = { _ in false }) throws {
        var expected: [String: [Int]] = [:]
        for g in groups {
            for i in 0..<g.count { for (name, shape) in shapes(c) { expected["\(g.prefix)\(i).\(name)"] = shape } }
        }
        var missing: [String] = [], wrongShape: [String] = []
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let (_, t) = source.byName[name] else { missing.append(name); continue }
            if t.shape != shape { wrongShape.append("\(name): found \(t.shape), expected \(shape)") }
            else if t.dtype.fileDType == nil {
                wrongShape.append("\(name): element type \(t.dtype.rawValue), expected F32, F16 or BF16")
            }
        }
        let unexpected = source.names.filter { expected[$0] == nil && !ignorable($0) }
        if !missing.isEmpty || !unexpected.isEmpty || !wrongShape.isEmpty {
            throw BalconyFileError.tensorSetMismatch(path, missing: missing, unexpected: unexpected, wrongShape: wrongShape)
        }
    }

    /// Reads `count` sets under `prefix` (already checked), in the base model's row order, with
    /// the given exit depths.
    static func read(_ source: Source, prefix: String, exits: [Int], config c: LlamaConfig) throws -> [BalconyParameters] {
        try exits.enumerated().map { i, exit in
            var p = BalconyParameters.empty(exit: exit, bias: c.attentionBias)
            for (name, _) in shapes(c) {
                guard let (file, t) = source.byName["\(prefix)\(i).\(name)"] else {
                    throw BalconyFileError.tensorSetMismatch(source.files.first?.path ?? "balcony file",
                                                             missing: ["\(prefix)\(i).\(name)"], unexpected: [], wrongShape: [])
                }
                p.setTensor(named: name, to: fromFile(try file.floats(of: t), name: name, c))
            }
            return p
        }
    }
}

extension BalconyParameters {
    /// A balcony with empty tensors (filled by a reader).
    static func empty(exit: Int, bias: Bool) -> BalconyParameters {
        BalconyParameters(exit: exit, attentionNorm: [], wq: [], wk: [], wv: [], wo: [], bq: bias ? [] : nil,
                          bk: bias ? [] : nil, bv: bias ? [] : nil, ffnNorm: [], gate: [], up: [], down: [], norm: [])
    }

    /// The tensor with relative name `name` (`BalconyParameters.tensorNames`/`biasNames`).
    func tensor(named name: String) -> [Float]? {
        if let kp = Self.tensorNames.first(where: { $0.0 == name })?.1 { return self[keyPath: kp] }
        if let kp = Self.biasNames.first(where: { $0.0 == name })?.1 { return self[keyPath: kp] }
        return nil
    }

    mutating func setTensor(named name: String, to values: [Float]) {
        if let kp = Self.tensorNames.first(where: { $0.0 == name })?.1 { self[keyPath: kp] = values }
        else if let kp = Self.biasNames.first(where: { $0.0 == name })?.1 { self[keyPath: kp] = values }
    }
}
