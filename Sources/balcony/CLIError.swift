import ArgumentParser
import Foundation

/// Runs a command body so that any error becomes one line on stderr and exit code 1, never a
/// stack trace: users see "error: <what is wrong and what to do>".
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch let e as ValidationError {
        throw e
    } catch {
        printError("error: \(describe(error))")
        throw ExitCode(1)
    }
}

func describe(_ error: Error) -> String {
    if let e = error as? LocalizedError, let d = e.errorDescription { return d }
    return "\(error)"
}

func printError(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

/// Writes to stdout without buffering surprises (streamed tokens appear as they are made).
func writeOut(_ s: String) {
    FileHandle.standardOutput.write(s.data(using: .utf8)!)
}

/// Encodes a value as JSON with sorted keys, one line.
func jsonLine<T: Encodable>(_ value: T, pretty: Bool = true) throws -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try enc.encode(value), as: UTF8.self)
}
