import ArgumentParser
import BalconyCore
import Foundation

struct RandomModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "random-model",
        abstract: "Write a random-weight Hugging Face model folder of any shape (for benchmarks and tests).")

    @Option(help: "A Hugging Face config.json giving the shape.") var config: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Weight type: f32, f16 or bf16.") var dtype: String = "f32"
    @Flag(help: "Write into --out even when it already holds files (they may be overwritten).") var force = false

    func run() async throws {
        try await reportingErrors {
            guard let type = FileDType(rawValue: dtype.uppercased()), type.quantized == nil else {
                throw ValidationError("--dtype must be f32, f16 or bf16, got '\(dtype)'")
            }
            let hf = try HuggingFaceConfig.load(url: URL(fileURLWithPath: config))
            let c = try hf.llamaConfig(source: config)
            let dir = URL(fileURLWithPath: out)
            // A mistyped --out must not silently replace a real model's weights with random ones.
            if !force, let existing = try? FileManager.default.contentsOfDirectory(atPath: dir.path), !existing.isEmpty {
                throw ValidationError("\(dir.path) already exists and holds \(existing.count) file(s) (\(existing.sorted().prefix(3).joined(separator: ", "))); choose an empty or new --out, or pass --force to write into it")
            }
            try RandomModel.write(config: c, dtype: type, seed: seed, to: dir)
            printError("wrote \(dir.path): \(formatCount(c.parameterCount)) parameters, \(type.rawValue), seed \(seed)")
        }
    }
}
