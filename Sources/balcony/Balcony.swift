import ArgumentParser
import BalconyCore

@main
struct BalconyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "balcony",
        abstract: "Dynamic-depth inference for LLaMA-family models."
    )
}
