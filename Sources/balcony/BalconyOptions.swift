import ArgumentParser
import BalconyCore
import Foundation

/// Options of commands that can run at an exit: which balconies, and which exit (or how to pick one).
struct BalconyOptions: ParsableArguments {
    @Option(help: "Balcony file (balconies.safetensors from 'balcony train', or the authors' safetensors).")
    var balconies: String?

    @Option(help: "Exit to run at: a trained exit depth, or 'full'.")
    var exit: String?

    @Option(help: "Cost budget as a fraction of the full model's per-token cost: the deepest exit that fits.")
    var budget: Double?

    @Option(help: "Per-token latency target in ms: the deepest exit whose measured decode time fits.")
    var latencyMs: Double?

    @Option(help: "Random balconies at these exits (comma-separated), for speed measurements without training.")
    var randomExits: String?

    @Option(help: ArgumentHelp("Run the balconies as F32 (as trained), as a block type (q8_0, q5_1, q5_0, q4_1, q4_0), or as the base model's own ('base').",
                               valueName: "type"))
    var balconyType: String = "f32"

    func validate() throws {
        let picks = [exit != nil, budget != nil, latencyMs != nil].filter { $0 }.count
        if picks > 1 { throw ValidationError("give at most one of --exit, --budget and --latency-ms") }
        if balconies != nil && randomExits != nil { throw ValidationError("give --balconies or --random-exits, not both") }
        do { _ = try BalconyWeightType(parsing: balconyType) } catch { throw ValidationError("--balcony-type: \(error.localizedDescription)") }
    }

    var wantsBalconies: Bool { balconies != nil || randomExits != nil }

    /// The balcony model, or nil when no balconies were given.
    func load(_ rt: LoadedRuntime) throws -> BalconyModel? {
        try Self.load(rt, balconies: balconies, randomExits: randomExits, weightType: BalconyWeightType(parsing: balconyType))
    }

    /// The balcony model from a balcony file or random balconies at listed exits; nil for neither.
    static func load(_ rt: LoadedRuntime, balconies: String?, randomExits: String?,
                     weightType: BalconyWeightType = .f32) throws -> BalconyModel? {
        if let file = balconies {
            let loaded = try BalconyFile.read(from: URL(fileURLWithPath: file), base: rt.model.weights)
            for note in loaded.notes { printError("note: \(note)") }
            return try noteKept(BalconyModel(base: rt.model, balconies: loaded.balconies, source: file, weightType: weightType))
        }
        if let list = randomExits {
            let exits = try parseExitList(list)
            let params = exits.map { BalconyParameters.randomInitialized(config: rt.model.config, exit: $0, seed: UInt64($0)) }
            return try noteKept(BalconyModel(base: rt.model, balconies: params, source: "--random-exits", weightType: weightType))
        }
        return nil
    }

    /// Says which balcony matrices could not take the asked block type (rows not whole blocks).
    static func noteKept(_ model: BalconyModel) -> BalconyModel {
        if model.matricesKeptF32 > 0 {
            printError("note: \(model.matricesKeptF32) balcony matrices stay F32: their rows are not whole \(model.weightType) blocks")
        }
        return model
    }

    /// The exit the user asked for, directly or through a budget. `measure` gives per-token decode
    /// milliseconds per exit, and is only called for `--latency-ms`.
    func choose(_ model: BalconyModel?, measure: (BalconyModel) throws -> [ExitChoice: Double]) throws -> ExitChoice {
        guard exit != nil || budget != nil || latencyMs != nil else { return .full }
        guard let model else {
            let what = exit.map { "--exit \($0)" } ?? (budget != nil ? "--budget" : "--latency-ms")
            throw ValidationError("\(what) needs trained balconies: pass --balconies FILE (made by 'balcony train')")
        }
        if let e = exit {
            let choice = try ExitChoice(parsing: e)
            try model.validate(choice)
            return choice
        }
        let costs = ExitCostModel(model)
        if let b = budget { return try costs.exit(forBudget: b) }
        return try costs.exit(forLatencyMs: latencyMs!, msPerToken: try measure(model))
    }
}

func parseExitList(_ s: String) throws -> [Int] {
    let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let exits = parts.compactMap { Int($0) }
    guard !parts.isEmpty, exits.count == parts.count else {
        throw ValidationError("'\(s)' is not a comma-separated list of exit depths, e.g. 1,2,3")
    }
    return exits
}
