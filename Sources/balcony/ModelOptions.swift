import ArgumentParser
import BalconyCore
import Foundation

/// The options every command that runs a model takes.
struct ModelOptions: ParsableArguments {
    @Argument(help: "Model: llama2.c .bin, .gguf, Hugging Face folder, or hf:OWNER/NAME. Default: stories260K.")
    var model: String?

    @Option(help: "Tokenizer file or folder (tokenizer.bin, tokenizer.json, tokenizer.model, .gguf).")
    var tokenizer: String?

    @Option(help: "Threads for compute (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("pack-f32"),
            help: ArgumentHelp("Decode F32 weights from a lossless packed copy, 12% fewer bytes a token: auto, on or off.",
                               discussion: "auto (the default; off for train) packs models whose F32 weights are over twice the CPU's last-level cache, and at least 64 MiB, on CPUs with AVX2. The copy takes about 7/8 of the F32 weights' size in memory."))
    var packF32: F32Packing?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// The model path to load: the argument, else the default model.
    var modelPath: String { model ?? DefaultModel.path }

    func applyThreads() {
        if let threads { ComputeThreads.set(threads) } else { ComputeThreads.set(ComputeThreads.count) }
    }

    /// Loads the model (downloading `hf:` references first) and its tokenizer.
    /// `packing` is the command's default for `--pack-f32`.
    func load(requireTokenizer: Bool = true, packing: F32Packing = .auto) async throws -> LoadedRuntime {
        applyThreads()
        let path = try await ModelPaths.resolve(modelPath)
        let loaded = try ModelLoader.load(path: path)
        let model = try LlamaModel(weights: loaded.weights.packingF32(packF32 ?? packing), source: path)
        var tok: (any Tokenizer)?
        if let t = tokenizer {
            tok = try TokenizerLoader.load(url: URL(fileURLWithPath: try await ModelPaths.resolve(t)))
        } else if let g = loaded.gguf {
            tok = try TokenizerLoader.load(gguf: g)
        } else if let hint = loaded.tokenizerHint {
            // A folder without tokenizer files is fine for commands that only run token ids.
            do { tok = try TokenizerLoader.load(url: hint) } catch { if requireTokenizer { throw error } }
        }
        if requireTokenizer && tok == nil { throw ModelFileError.missingTokenizer(path) }
        if let tok, tok.vocabularySize > model.config.vocabSize {
            throw ModelFileError.corrupt(path, "the tokenizer has \(tok.vocabularySize) tokens but the model only \(model.config.vocabSize); pass the model's own tokenizer with --tokenizer")
        }
        return LoadedRuntime(path: path, loaded: loaded, model: model, tokenizer: tok)
    }
}

extension F32Packing: ExpressibleByArgument {}

/// A loaded model ready to run.
struct LoadedRuntime {
    let path: String
    let loaded: LoadedModel
    let model: LlamaModel
    let tokenizer: (any Tokenizer)?

    var requiredTokenizer: any Tokenizer {
        get throws {
            guard let tokenizer else { throw ModelFileError.missingTokenizer(path) }
            return tokenizer
        }
    }
}

/// Where the default model comes from.
enum DefaultModel {
    static let hubReference = "hf:karpathy/tinyllamas/stories260K"

    /// `$BALCONY_DEFAULT_MODEL` (a local copy, for offline machines) or the Hub reference.
    static var path: String {
        if let p = ProcessInfo.processInfo.environment["BALCONY_DEFAULT_MODEL"], !p.isEmpty { return p }
        return hubReference
    }
}

/// Turns what the user typed into a local path: `hf:` references are downloaded into the cache.
enum ModelPaths {
    static func resolve(_ s: String) async throws -> String {
        guard HubModelReference.hasHubPrefix(s) else { return s }
        let bar = ProgressBar()
        let url = try await HubModelReference.resolve(s, client: HubClient(configuration: .fromEnvironment())) { p in
            bar.update("downloading \(p.file)", done: p.bytesDone, total: p.bytesTotal, force: p.bytesDone == p.bytesTotal)
        }
        return url.path
    }
}
