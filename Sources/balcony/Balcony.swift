import ArgumentParser
import BalconyCore
import Foundation

@main
struct BalconyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "balcony",
        abstract: "Dynamic-depth inference for LLaMA-family models on the CPU.",
        discussion: """
        MODEL is a llama2.c .bin, a .gguf file, a Hugging Face model folder, or hf:OWNER/NAME[/SUBFOLDER].
        Without MODEL, the default model (stories260K) is used: $BALCONY_DEFAULT_MODEL if set, else
        hf:karpathy/tinyllamas/stories260K from the Hugging Face Hub.
        """,
        subcommands: [
            InfoCommand.self, GenerateCommand.self, TokenizeCommand.self, TemplateCommand.self, ScoreCommand.self,
            TrainCommand.self, EvalCommand.self, BenchCommand.self, ServeCommand.self, DownloadCommand.self, RandomModelCommand.self,
        ]
    )
}
