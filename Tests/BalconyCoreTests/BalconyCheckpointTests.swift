import Foundation
import Testing
@testable import BalconyCore

/// Balcony files: lossless round trips in both row conventions, the on-disk layout, every refusal,
/// and the authors' own PyTorch output (fixtures by scripts/make_balcony_fixtures.py).
@Suite struct BalconyCheckpointTests {
    /// A tiny interleaved base (llama2.c/GGUF convention) with GQA, optionally with q/k/v biases.
    static func base(bias: Bool = false, style: RopeStyle = .interleaved, layers: Int = 4, seed: UInt64 = 7) -> ModelWeights {
        var c = TinyModels.config(bias: bias, style: style)
        c.layerCount = layers
        return TinyModels.weights(c, seed: seed)
    }

    /// Random balconies (distinct rows everywhere, biases nonzero) at `exits`.
    static func balconies(_ base: ModelWeights, exits: [Int]) -> [BalconyParameters] {
        exits.map { exit in
            var b = BalconyParameters.randomInitialized(config: base.config, exit: exit, seed: 11)
            var g = TinyModels.LCG(state: UInt64(exit) * 977)
            b.forEachTensor { _, t in t = g.values(t.count, scale: 0.5) }
            return b
        }
    }

    static let training = TrainingConfiguration(exits: [1, 3], steps: 100, batchSize: 2, sequenceLength: 16,
                                                dataFiles: ["data/stories.txt"])

    static func info(_ base: ModelWeights, step: Int = 0) -> BalconyFileInfo {
        BalconyFileInfo(initialization: .random, base: base, name: "tiny.bin", training: training, step: step, tokensSeen: step * 32)
    }

    /// Rewrites a safetensors file with changed metadata and tensors (for damaged-file tests).
    static func rewrite(_ source: URL, to destination: URL, metadata change: (inout [String: String]) -> Void = { _ in },
                        tensors edit: (inout [(SafetensorsWriter.Tensor, [Float])]) -> Void = { _ in }) throws {
        let file = try SafetensorsFile(url: source)
        var metadata = file.metadata
        change(&metadata)
        var tensors = try file.tensors.map { t in
            (SafetensorsWriter.Tensor(name: t.name, dtype: .f32, shape: t.shape), try file.floats(of: t))
        }
        edit(&tensors)
        try SafetensorsWriter.write(to: destination, tensors: tensors, metadata: metadata)
    }

    // MARK: Round trips

    @Test(arguments: [(false, RopeStyle.interleaved), (true, .interleaved), (false, .halfSplit), (true, .halfSplit)])
    func roundTripIsLossless(_ bias: Bool, _ style: RopeStyle) throws {
        let base = Self.base(bias: bias, style: style)
        let balconies = Self.balconies(base, exits: [3, 1])
        let temp = try TemporaryDirectory()
        let url = temp.file(BalconyFile.fileName)
        try BalconyFile.write(balconies, info: Self.info(base, step: 5), config: base.config, to: url)
        let loaded = try BalconyFile.read(from: url, base: base)
        #expect(loaded.balconies == balconies)
        #expect(loaded.exits == [3, 1])
        #expect(loaded.layout == .balcony)
        #expect(loaded.notes.isEmpty)
        #expect(loaded.info == Self.info(base, step: 5))
        // A folder holding the file reads the same.
        #expect(try BalconyFile.read(from: temp.url, base: base).balconies == balconies)
    }

    @Test func fileHoldsHuggingFaceNamesAndRowOrder() throws {
        let base = Self.base(bias: true)
        let c = base.config
        let balconies = Self.balconies(base, exits: [1, 3])
        let temp = try TemporaryDirectory()
        let url = temp.file(BalconyFile.fileName)
        try BalconyFile.write(balconies, info: Self.info(base), config: c, to: url)
        let file = try SafetensorsFile(url: url)

        let expectedNames = Set((0..<2).flatMap { i in
            ["0.input_layernorm.weight", "0.self_attn.q_proj.weight", "0.self_attn.k_proj.weight", "0.self_attn.v_proj.weight",
             "0.self_attn.o_proj.weight", "0.self_attn.q_proj.bias", "0.self_attn.k_proj.bias", "0.self_attn.v_proj.bias",
             "0.post_attention_layernorm.weight", "0.mlp.gate_proj.weight", "0.mlp.up_proj.weight", "0.mlp.down_proj.weight",
             "1.weight"].map { "model.exit_modules.\(i).\($0)" }
        })
        #expect(Set(file.tensors.map(\.name)) == expectedNames)
        #expect(file.tensors.allSatisfy { $0.dtype == .f32 })
        #expect(file["model.exit_modules.1.0.self_attn.q_proj.weight"]?.shape == [c.qDim, c.dim])
        #expect(file["model.exit_modules.1.0.self_attn.k_proj.weight"]?.shape == [c.kvDim, c.dim])

        // q/k rows (and biases) in HF order, by the tests' own permutation helper; v unchanged.
        let b = balconies[1]
        func hf(_ v: [Float], rows: Int, cols: Int, heads: Int) -> [Float] {
            TinyModels.toHalfSplitRows(.owned(rows: rows, cols: cols, values: v), heads: heads).toFloats()
        }
        func stored(_ name: String) throws -> [Float] { try file.floats(of: try #require(file["model.exit_modules.1.\(name)"])) }
        #expect(try stored("0.self_attn.q_proj.weight") == hf(b.wq, rows: c.qDim, cols: c.dim, heads: c.headCount))
        #expect(try stored("0.self_attn.k_proj.weight") == hf(b.wk, rows: c.kvDim, cols: c.dim, heads: c.kvHeadCount))
        #expect(try stored("0.self_attn.q_proj.bias") == hf(b.bq!, rows: c.qDim, cols: 1, heads: c.headCount))
        #expect(try stored("0.self_attn.k_proj.bias") == hf(b.bk!, rows: c.kvDim, cols: 1, heads: c.kvHeadCount))
        #expect(try stored("0.self_attn.v_proj.weight") == b.wv)
        #expect(try stored("1.weight") == b.norm)

        let m = file.metadata
        #expect(m["format"] == "balcony")
        #expect(m["format_version"] == "1")
        #expect(m["exit_layer_indices"] == "[1, 3]")
        #expect(m["init"] == "random")
        #expect(m["base_fingerprint"] == ModelFingerprint.compute(base))
        #expect(m["base_architecture"] == "qwen2")
        #expect(m["step"] == "0" && m["tokens_seen"] == "0")
        let config = try TrainingConfiguration.decode(json: try #require(m["training_config"]))
        #expect(config == Self.training)
        // The JSON uses the familiar Hugging Face / PyTorch spellings.
        let keys = try #require(try JSONSerialization.jsonObject(with: Data(m["training_config"]!.utf8)) as? [String: Any]).keys
        for key in ["lr", "warmup_ratio", "max_grad_norm", "gradient_accumulation_steps", "ce_weight", "seed", "data_files"] {
            #expect(keys.contains(key), "training_config lacks \(key)")
        }
    }

    @Test func rowOrderHelpersInvertEachOther() {
        let v = (0..<(8 * 3)).map(Float.init)
        let hf = RopeRowOrder.toHalfSplit(v, heads: 2, cols: 3)
        // Head 0 of size 4: HF rows 0,1,2,3 hold interleaved rows 0,2,1,3.
        #expect(Array(hf[0..<12]) == [0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11])
        #expect(RopeRowOrder.toInterleaved(hf, heads: 2, cols: 3) == v)
    }

    // MARK: Refusals

    @Test func otherBaseModelIsRefused() throws {
        let base = Self.base()
        let temp = try TemporaryDirectory()
        let url = temp.file(BalconyFile.fileName)
        try BalconyFile.write(Self.balconies(base, exits: [1, 3]), info: Self.info(base), config: base.config, to: url)
        let other = Self.base(seed: 8)   // same shapes, other values
        do {
            _ = try BalconyFile.read(from: url, base: other)
            Issue.record("another base model was accepted")
        } catch let error as BalconyFileError {
            guard case .baseModelMismatch = error else { Issue.record("wrong error \(error)"); return }
            let message = error.localizedDescription
            #expect(message.contains("trained for base model tiny.bin"))
            #expect(message.contains(ModelFingerprint.short(ModelFingerprint.compute(base))))
            #expect(message.contains("pass the model it was trained on"))
            #expect(!message.contains("\n"))
        }
    }

    /// Runs `body`, expecting an error whose message mentions every string of `mentions`.
    func expectError(_ mentions: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error", sourceLocation: sourceLocation)
        } catch {
            let message = error.localizedDescription
            #expect(error is LocalizedError, sourceLocation: sourceLocation)
            #expect(!message.contains("\n"), "message spans lines: \(message)", sourceLocation: sourceLocation)
            for m in mentions {
                #expect(message.contains(m), "\"\(message)\" does not mention \"\(m)\"", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func damagedFilesAreRefused() throws {
        let base = Self.base()
        let temp = try TemporaryDirectory()
        let good = temp.file("good.safetensors")
        try BalconyFile.write(Self.balconies(base, exits: [1, 3]), info: Self.info(base), config: base.config, to: good)
        let size = try Data(contentsOf: good).count

        let truncated = try temp.truncatedCopy(of: good, length: size - 100, as: "truncated.safetensors")
        expectError(["truncated"]) { _ = try BalconyFile.read(from: truncated, base: base) }
        let headerOnly = try temp.truncatedCopy(of: good, length: 20, as: "header.safetensors")
        expectError(["truncated"]) { _ = try BalconyFile.read(from: headerOnly, base: base) }

        let gate = "model.exit_modules.0.0.mlp.gate_proj.weight"
        let badShape = temp.file("shape.safetensors")
        try Self.rewrite(good, to: badShape, tensors: { ts in
            let i = ts.firstIndex { $0.0.name == gate }!
            ts[i].0.shape = [ts[i].0.shape[1], ts[i].0.shape[0]]
        })
        expectError(["wrong shape", gate, "found [32, 64], expected [64, 32]"]) { _ = try BalconyFile.read(from: badShape, base: base) }

        let missing = temp.file("missing.safetensors")
        try Self.rewrite(good, to: missing, tensors: { ts in ts.removeAll { $0.0.name == "model.exit_modules.1.1.weight" } })
        expectError(["missing 1 tensor", "model.exit_modules.1.1.weight"]) { _ = try BalconyFile.read(from: missing, base: base) }

        let extra = temp.file("extra.safetensors")
        try Self.rewrite(good, to: extra, tensors: { ts in
            ts.append((.init(name: "model.exit_modules.2.1.weight", dtype: .f32, shape: [32]), [Float](repeating: 1, count: 32)))
        })
        expectError(["unexpected tensor", "model.exit_modules.2.1.weight"]) { _ = try BalconyFile.read(from: extra, base: base) }

        for (exits, bad) in [("[0, 3]", "exit 0"), ("[1, 4]", "exit 4")] {
            let url = temp.file("exits-\(bad).safetensors")
            try Self.rewrite(good, to: url, metadata: { $0["exit_layer_indices"] = exits })
            expectError([bad, "outside 1...3"]) { _ = try BalconyFile.read(from: url, base: base) }
        }
        let repeated = temp.file("repeated.safetensors")
        try Self.rewrite(good, to: repeated, metadata: { $0["exit_layer_indices"] = "[1, 1]" })
        expectError(["twice"]) { _ = try BalconyFile.read(from: repeated, base: base) }
        let garbled = temp.file("garbled.safetensors")
        try Self.rewrite(good, to: garbled, metadata: { $0["training_config"] = "{\"lr\": " })
        expectError(["training_config", "damaged"]) { _ = try BalconyFile.read(from: garbled, base: base) }
        let newer = temp.file("newer.safetensors")
        try Self.rewrite(good, to: newer, metadata: { $0["format_version"] = "99" })
        expectError(["version 99", "newer Balcony"]) { _ = try BalconyFile.read(from: newer, base: base) }
        expectError(["holds exits [1, 3]"]) { _ = try BalconyFile.read(from: good, base: base, exits: [1, 2]) }

        // A base model of another shape: the fingerprint already differs; without one the shapes do.
        var wider = base.config
        wider.hiddenDim = 96
        expectError(["wrong shape", "mlp.gate_proj"]) { _ = try BalconyFile.read(from: good, config: wider, fingerprint: nil) }
        var shallow = base.config
        shallow.layerCount = 3
        expectError(["exit 3", "3-layer"]) { _ = try BalconyFile.read(from: good, config: shallow, fingerprint: nil) }
        expectError(["no such file"]) { _ = try BalconyFile.read(from: temp.file("absent.safetensors"), base: base) }
    }

    @Test func writerRefusesBadBalconies() throws {
        let base = Self.base()
        let temp = try TemporaryDirectory()
        let url = temp.file(BalconyFile.fileName)
        expectError(["twice"]) { try BalconyFile.write(Self.balconies(base, exits: [2, 2]), info: Self.info(base), config: base.config, to: url) }
        expectError(["exit 4", "outside"]) { try BalconyFile.write(Self.balconies(base, exits: [4]), info: Self.info(base), config: base.config, to: url) }
        var short = Self.balconies(base, exits: [1])
        short[0].wq.removeLast()
        expectError(["q_proj"]) { try BalconyFile.write(short, info: Self.info(base), config: base.config, to: url) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.url.path).isEmpty, "a refused write left files behind")
    }

    // MARK: The authors' files (written by PyTorch)

    struct Expected: Decodable {
        struct Tensor: Decodable {
            var shape: [Int]
            var sum: Double
            var values: [Double]
            var bf16_values: [Double]
            var interleaved_values: [Double]?
        }
        struct Balcony: Decodable {
            var exit: Int
            var tensors: [String: Tensor]
        }
        var exits: [Int]
        var sample_indices: [Int]
        var balconies: [Balcony]
    }

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: BalconyTestSupport.fixtures.appendingPathComponent("expected.json")))
    }

    static func authorsConfig() throws -> LlamaConfig {
        try HuggingFaceConfig.load(url: BalconyTestSupport.fixtures.appendingPathComponent("authors/config.json"))
            .llamaConfig(source: "authors config.json")
    }

    /// Compares loaded balconies with expected.json: exact sampled values, float64 sums.
    func check(_ loaded: [BalconyParameters], _ e: Expected, values: KeyPath<Expected.Tensor, [Double]>,
               qkValues: KeyPath<Expected.Tensor, [Double]?>? = nil, sums: Bool = true) throws {
        #expect(loaded.map(\.exit) == e.exits)
        for (b, eb) in zip(loaded, e.balconies) {
            #expect(b.exit == eb.exit)
            for (name, et) in eb.tensors {
                let t = try #require(b.tensor(named: name), "no tensor \(name)")
                #expect(t.count == et.shape.reduce(1, *), "\(name)")
                var want = et[keyPath: values]
                if let qkValues, let inter = et[keyPath: qkValues] { want = inter }
                let indices = e.sample_indices.filter { $0 < t.count }
                #expect(indices.map { t[$0] } == want.map { Float($0) }, "exit \(b.exit) \(name)")
                if sums {
                    let sum = t.reduce(0.0) { $0 + Double($1) }
                    #expect(abs(sum - et.sum) <= 1e-4 * max(1, abs(et.sum)), "exit \(b.exit) \(name): sum \(sum) vs \(et.sum)")
                }
            }
        }
    }

    @Test func readsTheAuthorsSavePretrainedFolder() throws {
        let e = try Self.expected()
        let config = try Self.authorsConfig()
        let folder = BalconyTestSupport.fixtures.appendingPathComponent("authors")
        let loaded = try BalconyFile.read(from: folder, config: config, fingerprint: "0000")
        #expect(loaded.layout == .authors)
        #expect(loaded.notes.contains { $0.contains("fingerprint was not checked") })
        #expect(loaded.info.baseFingerprint == nil)
        try check(loaded.balconies, e, values: \.values)
        // The same file named directly, with config.json found beside it.
        let direct = try BalconyFile.read(from: folder.appendingPathComponent("model.safetensors"), config: config, fingerprint: nil)
        #expect(direct.balconies == loaded.balconies)
        for b in loaded.balconies { try b.validate(config: config, source: "authors") }
    }

    @Test func authorsRowsBecomeInterleavedForLlama2cAndGGUFBases() throws {
        let e = try Self.expected()
        var config = try Self.authorsConfig()
        config.ropeStyle = .interleaved
        let loaded = try BalconyFile.read(from: BalconyTestSupport.fixtures.appendingPathComponent("authors"), config: config, fingerprint: nil)
        try check(loaded.balconies, e, values: \.values, qkValues: \.interleaved_values)
    }

    @Test func readsTheAuthorsBF16TensorsWithAnExplicitExitList() throws {
        let e = try Self.expected()
        let config = try Self.authorsConfig()
        let url = BalconyTestSupport.fixtures.appendingPathComponent("authors-bf16-exits-only.safetensors")
        // Beside it is no config.json, so the list must be given.
        expectError(["exit depths are unknown", "exit_layer_indices"]) { _ = try BalconyFile.read(from: url, config: config, fingerprint: nil) }
        let loaded = try BalconyFile.read(from: url, config: config, fingerprint: nil, exits: [1, 3])
        try check(loaded.balconies, e, values: \.bf16_values, sums: false)
        // The list can come from the authors' config.json too.
        let viaConfig = try BalconyFile.read(from: url, config: config, fingerprint: nil,
                                             authorsConfig: BalconyTestSupport.fixtures.appendingPathComponent("authors/config.json"))
        #expect(viaConfig.balconies == loaded.balconies)
        #expect(try BalconyFile.exitLayerIndices(authorsConfig: BalconyTestSupport.fixtures.appendingPathComponent("authors/config.json")) == [1, 3])
        // A list of the wrong length leaves tensors unexplained.
        expectError(["unexpected tensor", "model.exit_modules.1."]) { _ = try BalconyFile.read(from: url, config: config, fingerprint: nil, exits: [2]) }
    }

    @Test func ourFileFromAnInterleavedBaseHoldsTheAuthorsExactTensors() throws {
        // Read the authors' balconies into an interleaved base, write them as Balcony does, and
        // compare the two files tensor by tensor: the writer restores the authors' HF row order.
        var config = try Self.authorsConfig()
        config.ropeStyle = .interleaved
        let authors = BalconyTestSupport.fixtures.appendingPathComponent("authors")
        let loaded = try BalconyFile.read(from: authors, config: config, fingerprint: nil)
        let temp = try TemporaryDirectory()
        let url = temp.file(BalconyFile.fileName)
        try BalconyFile.write(loaded.balconies, info: BalconyFileInfo(initialization: .copy), config: config, to: url)
        let ours = try SafetensorsFile(url: url)
        let theirs = try SafetensorsFile(url: authors.appendingPathComponent("model.safetensors"))
        #expect(ours.tensors.count == 20)
        for t in ours.tensors {
            let reference = try #require(theirs[t.name], "the authors' file has no \(t.name)")
            #expect(t.shape == reference.shape, "\(t.name)")
            #expect(try ours.floats(of: t) == theirs.floats(of: reference), "\(t.name)")
        }
    }

    @Test func aBaseModelIsNotTakenForBalconies() throws {
        let base = Self.base(style: .halfSplit)
        let temp = try TemporaryDirectory()
        try BalconyTestSupport.writeHuggingFaceFolder(base, to: temp.url)
        expectError(["no balcony tensors", "probably a base model"]) { _ = try BalconyFile.read(from: temp.url, base: base) }
    }

    @Test func authorsConfigThatDoesNotFitIsRefused() throws {
        let config = try Self.authorsConfig()
        let temp = try TemporaryDirectory()
        let folder = try temp.copy(BalconyTestSupport.fixtures.appendingPathComponent("authors"))
        var other = config
        other.layerCount = 6
        expectError(["num_hidden_layers 4", "pass the model it was trained on"]) {
            _ = try BalconyFile.read(from: folder, config: other, fingerprint: nil)
        }
        let configURL = folder.appendingPathComponent("config.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        json["tie_exit_lm_head"] = false
        try JSONSerialization.data(withJSONObject: json).write(to: configURL)
        expectError(["tie_exit_lm_head is false"]) { _ = try BalconyFile.read(from: folder, config: config, fingerprint: nil) }
        json["tie_exit_lm_head"] = true
        json["exit_decoder_layer"] = false
        try JSONSerialization.data(withJSONObject: json).write(to: configURL)
        expectError(["exit_decoder_layer is false"]) { _ = try BalconyFile.read(from: folder, config: config, fingerprint: nil) }
    }
}

/// Training states: exact resumption of a (toy) training loop, atomic replacement, and refusals.
@Suite struct BalconyTrainingStateTests {
    typealias Support = BalconyCheckpointTests

    static func data() throws -> TrainingData {
        var g = TinyModels.LCG(state: 5)
        let documents = (0..<12).map { d in (0..<(20 + d * 3)).map { _ in Int((g.next() + 1) * 31) % 64 } }
        return try TrainingData(documents: documents, separator: .bos(1), sequenceLength: 8, holdoutFraction: 0.1, seed: 3)
    }

    /// A stand-in for the trainer: AdamW with bias correction, warmup + cosine learning rate, a
    /// "gradient" that depends on the batch and on a random draw — everything the state must carry.
    struct ToyTrainer {
        var configuration: TrainingConfiguration
        var balconies: [BalconyParameters]
        var moments: OptimizerMoments
        var loader: TrainingDataLoader
        var rng: Xoshiro256StarStar
        var step = 0
        var tokensSeen = 0
        let fingerprint: String

        init(base: ModelWeights, configuration: TrainingConfiguration, data: TrainingData) throws {
            self.configuration = configuration
            balconies = Support.balconies(base, exits: configuration.exits)
            moments = OptimizerMoments.zeros(for: balconies, optimizer: configuration.optimizer)
            loader = try data.loader()
            rng = Xoshiro256StarStar(seed: configuration.seed)
            fingerprint = ModelFingerprint.compute(base)
        }

        init(resuming c: TrainingCheckpoint, data: TrainingData) throws {
            configuration = c.state.configuration
            balconies = c.balconies
            moments = c.moments
            loader = try data.loader(from: c.state.dataPosition)
            rng = try #require(Xoshiro256StarStar(stateWords: c.state.rngState))
            step = c.state.step
            tokensSeen = c.state.tokensSeen
            fingerprint = c.state.baseFingerprint
        }

        func learningRate(_ step: Int) -> Double {
            let c = configuration
            let warmup = Int((c.warmupFraction * Double(c.steps)).rounded(.up))
            if step < warmup { return c.learningRate * Double(step + 1) / Double(warmup) }
            let progress = Double(step - warmup) / Double(max(1, c.steps - warmup))
            return c.minLearningRate + (c.learningRate - c.minLearningRate) * 0.5 * (1 + cos(.pi * progress))
        }

        mutating func trainStep() {
            let batch = loader.nextBatch(size: configuration.batchSize)
            let signal = Float(batch.joined().reduce(0, +) % 97) / 97
            let noise = Float(rng.nextUnitDouble())
            let lr = Float(learningRate(step))
            let (b1, b2, eps) = (Float(configuration.beta1), Float(configuration.beta2), Float(configuration.epsilon))
            let t = Float(step + 1)
            for k in balconies.indices {
                var m = moments.first[k], v = moments.second[k]
                var p = balconies[k]
                var names: [String] = []
                p.visitTensors { name, _ in names.append(name) }
                for name in names {
                    var w = p.tensor(named: name)!, mt = m.tensor(named: name)!, vt = v.tensor(named: name)!
                    for j in w.indices {
                        let grad = sin(w[j] * 3 + signal) * noise + 0.01 * Float(j % 5)
                        mt[j] = b1 * mt[j] + (1 - b1) * grad
                        vt[j] = b2 * vt[j] + (1 - b2) * grad * grad
                        let mh = mt[j] / (1 - pow(b1, t)), vh = vt[j] / (1 - pow(b2, t))
                        w[j] -= lr * mh / (vh.squareRoot() + eps)
                    }
                    p.setTensor(named: name, to: w); m.setTensor(named: name, to: mt); v.setTensor(named: name, to: vt)
                }
                balconies[k] = p; moments.first[k] = m; moments.second[k] = v
            }
            step += 1
            tokensSeen += batch.count * configuration.sequenceLength
        }

        func checkpoint(data: TrainingData, base: ModelWeights) -> TrainingCheckpoint {
            let state = TrainingState(configuration: configuration, step: step, tokensSeen: tokensSeen, dataPosition: loader.position,
                                      rngState: rng.stateWords, baseFingerprint: fingerprint, dataDigest: data.digest,
                                      extra: ["loss_ema": 1.25])
            return TrainingCheckpoint(state: state, balconies: balconies, moments: moments,
                                      info: BalconyFileInfo(initialization: .random, base: base, name: "tiny.bin"))
        }
    }

    static let configuration = TrainingConfiguration(exits: [3, 1], learningRate: 1e-2, warmupFraction: 0.2, steps: 10,
                                                     batchSize: 3, sequenceLength: 8, seed: 99, dataFiles: ["a.txt"],
                                                     holdoutFraction: 0.1)

    @Test(arguments: [RopeStyle.interleaved, .halfSplit])
    func resumedRunIsBitIdentical(_ style: RopeStyle) throws {
        let base = Support.base(bias: true, style: style)
        let data = try Self.data()
        var straight = try ToyTrainer(base: base, configuration: Self.configuration, data: data)
        for _ in 0..<7 { straight.trainStep() }

        var first = try ToyTrainer(base: base, configuration: Self.configuration, data: data)
        for _ in 0..<3 { first.trainStep() }
        let temp = try TemporaryDirectory()
        let url = temp.file(TrainingStateFile.fileName)
        let saved = first.checkpoint(data: data, base: base)
        try TrainingStateFile.write(saved, config: base.config, to: url)
        let loaded = try TrainingStateFile.read(from: url, config: base.config, fingerprint: ModelFingerprint.compute(base),
                                                resuming: Self.configuration, dataDigest: data.digest)
        #expect(loaded.state == saved.state)
        #expect(loaded.balconies == saved.balconies)
        #expect(loaded.moments == saved.moments)
        var resumed = try ToyTrainer(resuming: loaded, data: data)
        for _ in 0..<4 { resumed.trainStep() }

        #expect(resumed.balconies == straight.balconies)
        #expect(resumed.moments == straight.moments)
        #expect(resumed.loader.position == straight.loader.position)
        #expect(resumed.rng.stateWords == straight.rng.stateWords)
        #expect(resumed.step == 7 && resumed.tokensSeen == straight.tokensSeen)
        // Moving the data files is allowed; the data themselves are compared by digest.
        var moved = Self.configuration
        moved.dataFiles = ["elsewhere/a.txt"]
        _ = try TrainingStateFile.read(from: url, config: base.config, fingerprint: ModelFingerprint.compute(base),
                                       resuming: moved, dataDigest: data.digest)
    }

    @Test func stateFileLayoutAndBalconyReading() throws {
        let base = Support.base()
        let data = try Self.data()
        var trainer = try ToyTrainer(base: base, configuration: Self.configuration, data: data)
        trainer.trainStep()
        let temp = try TemporaryDirectory()
        let url = temp.file(TrainingStateFile.fileName)
        try TrainingStateFile.write(trainer.checkpoint(data: data, base: base), config: base.config, to: url)
        let file = try SafetensorsFile(url: url)
        #expect(file.metadata["format"] == "balcony-training-state")
        #expect(file.metadata["step"] == "1")
        #expect(file["optimizer.exp_avg.0.0.self_attn.q_proj.weight"] != nil)
        #expect(file["optimizer.exp_avg_sq.1.1.weight"] != nil)
        #expect(file.tensors.count == 3 * 2 * 10)
        // A training state also reads as balconies (optimizer tensors skipped).
        let balconies = try BalconyFile.read(from: url, base: base)
        #expect(balconies.layout == .trainingState)
        #expect(balconies.balconies == trainer.balconies)
        #expect(balconies.info.step == 1)
        #expect(balconies.info.training == Self.configuration)
    }

    @Test func resumingWithOtherSettingsIsRefused() throws {
        let base = Support.base()
        let data = try Self.data()
        let fingerprint = ModelFingerprint.compute(base)
        let temp = try TemporaryDirectory()
        let url = temp.file(TrainingStateFile.fileName)
        try TrainingStateFile.write(try ToyTrainer(base: base, configuration: Self.configuration, data: data).checkpoint(data: data, base: base),
                                    config: base.config, to: url)
        var changed = Self.configuration
        changed.learningRate = 2e-2
        changed.batchSize = 4
        Support().expectError(["cannot resume", "lr: saved 0.01, now 0.02", "batch_size: saved 3, now 4", "without --resume"]) {
            _ = try TrainingStateFile.read(from: url, config: base.config, fingerprint: fingerprint, resuming: changed)
        }
        Support().expectError(["training data differ"]) {
            _ = try TrainingStateFile.read(from: url, config: base.config, fingerprint: fingerprint, resuming: Self.configuration,
                                           dataDigest: String(repeating: "0", count: 64))
        }
        Support().expectError(["trained for base model", "pass the model it was trained on"]) {
            _ = try TrainingStateFile.read(from: url, config: base.config, fingerprint: ModelFingerprint.compute(Support.base(seed: 3)))
        }
        let balconyFile = temp.file(BalconyFile.fileName)
        try BalconyFile.write(Support.balconies(base, exits: [1]), info: Support.info(base), config: base.config, to: balconyFile)
        Support().expectError(["is a balcony file", "--resume needs"]) {
            _ = try TrainingStateFile.read(from: balconyFile, config: base.config, fingerprint: fingerprint)
        }
        let truncated = try temp.truncatedCopy(of: url, length: 4096, as: "cut.safetensors")
        Support().expectError(["truncated"]) { _ = try TrainingStateFile.read(from: truncated, config: base.config, fingerprint: fingerprint) }
    }

    @Test func replacementIsAtomicAndKeepsThePreviousStateOnFailure() throws {
        let base = Support.base()
        let data = try Self.data()
        let fingerprint = ModelFingerprint.compute(base)
        let temp = try TemporaryDirectory()
        let url = temp.file(TrainingStateFile.fileName)
        var trainer = try ToyTrainer(base: base, configuration: Self.configuration, data: data)
        trainer.trainStep()
        try TrainingStateFile.write(trainer.checkpoint(data: data, base: base), config: base.config, to: url)

        var broken = trainer.checkpoint(data: data, base: base)
        broken.moments.second.removeLast()
        Support().expectError(["optimizer moments"]) { try TrainingStateFile.write(broken, config: base.config, to: url) }
        #expect(try TrainingStateFile.read(from: url, config: base.config, fingerprint: fingerprint).state.step == 1)

        trainer.trainStep()
        try TrainingStateFile.write(trainer.checkpoint(data: data, base: base), config: base.config, to: url)
        #expect(try TrainingStateFile.read(from: url, config: base.config, fingerprint: fingerprint).state.step == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.url.path) == [TrainingStateFile.fileName],
                "temporary files were left behind")
    }

    @Test func configurationValidationNamesTheSetting() throws {
        try Self.configuration.validate()
        try TrainingConfiguration(exits: [15, 18, 21], steps: 30_000).validate()
        let cases: [(String, (inout TrainingConfiguration) -> Void)] = [
            ("no exits", { $0.exits = [] }), ("twice", { $0.exits = [2, 2] }),
            ("learning rate", { $0.learningRate = 0 }), ("betas", { $0.beta2 = 1 }),
            ("warmup fraction", { $0.warmupFraction = 2 }), ("steps", { $0.steps = 0 }),
            ("gradient clip", { $0.gradientClip = -1 }), ("batch size", { $0.batchSize = 0 }),
            ("temperature", { $0.temperature = 0 }), ("loss weights", { $0.klWeight = 0; $0.crossEntropyWeight = 0 }),
            ("holdout fraction", { $0.holdoutFraction = 1 }),
        ]
        for (mention, change) in cases {
            var c = Self.configuration
            change(&c)
            Support().expectError([mention]) { try c.validate() }
        }
        // The JSON round trip is exact (what exact resumption compares).
        var odd = Self.configuration
        odd.learningRate = 0.1 + 0.2
        odd.seed = UInt64.max - 3
        #expect(try TrainingConfiguration.decode(json: odd.jsonString()) == odd)
        #expect(odd.differences(from: odd).isEmpty)
    }

    @Test func sgdStatesKeepMomentumBuffersOnly() throws {
        let base = Support.base()
        let data = try Self.data()
        var configuration = Self.configuration
        configuration.optimizer = .sgd
        configuration.momentum = 0.9
        let balconies = Support.balconies(base, exits: configuration.exits)
        var moments = OptimizerMoments.zeros(for: balconies, optimizer: .sgd, momentum: 0.9)
        moments.first[0].wq[3] = 0.5
        let state = TrainingState(configuration: configuration, step: 4, tokensSeen: 96, dataPosition: DataPosition(epoch: 1, index: 2),
                                  baseFingerprint: ModelFingerprint.compute(base), dataDigest: data.digest)
        let temp = try TemporaryDirectory()
        let url = temp.file(TrainingStateFile.fileName)
        try TrainingStateFile.write(TrainingCheckpoint(state: state, balconies: balconies, moments: moments,
                                                       info: BalconyFileInfo(initialization: .copy)), config: base.config, to: url)
        let file = try SafetensorsFile(url: url)
        #expect(file.tensors.filter { $0.name.hasPrefix("optimizer.momentum_buffer.") }.count == 20)
        #expect(!file.tensors.contains { $0.name.hasPrefix("optimizer.exp_avg") })
        let loaded = try TrainingStateFile.read(from: url, config: base.config, fingerprint: state.baseFingerprint)
        #expect(loaded.moments == moments)
        #expect(loaded.state == state)
    }
}
