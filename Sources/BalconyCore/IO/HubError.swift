import Foundation

/// Errors raised while resolving, listing or downloading Hugging Face Hub repositories.
/// Each message says what went wrong and what to do about it.
public enum HubError: LocalizedError, Equatable, Sendable {
    /// A model reference or repository id that cannot be parsed (`hf:OWNER/NAME[/PATH][@REVISION]`).
    case invalidReference(String, reason: String)
    /// The Hub does not know the repository (or hides a private one from this caller).
    case repositoryNotFound(repo: String, endpoint: String)
    /// The repository exists but the branch, tag or commit does not.
    case revisionNotFound(repo: String, revision: String)
    /// The repository has no file at this path.
    case fileNotFound(repo: String, revision: String, path: String)
    /// HTTP 401/403: a private or gated repository, or a token without access.
    case accessDenied(repo: String, status: Int, tokenSent: Bool, serverMessage: String?)
    /// No connection to the endpoint could be made (no network, DNS failure, refused, timed out).
    case networkUnreachable(host: String, reason: String)
    /// A transfer broke off and retrying did not finish it; the partial file is kept for resuming.
    case interrupted(file: String, reason: String)
    /// Any other HTTP error status.
    case httpStatus(url: String, status: Int, serverMessage: String?)
    /// An answer that is not what a Hugging Face Hub sends (bad JSON, missing headers, unsafe paths).
    case badResponse(url: String, reason: String)
    /// A downloaded file whose SHA-256 differs from the one the Hub lists. The file was deleted.
    case checksumMismatch(file: String, expected: String, actual: String)
    /// A downloaded file whose size differs from the one the Hub lists. The file was deleted.
    case sizeMismatch(file: String, expected: Int64, actual: Int64)
    /// The include patterns (or the default model-file rule) selected nothing.
    case noMatchingFiles(repo: String, revision: String, patterns: [String])
    /// Offline mode, and the cache lacks the repository at this revision.
    case notInCache(repo: String, revision: String, cache: String)
    /// Reading or writing the cache failed.
    case disk(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .invalidReference(text, reason):
            return "'\(text)' is not a Hub model reference: \(reason); write hf:OWNER/NAME, "
                + "hf:OWNER/NAME/SUBFOLDER or hf:OWNER/NAME@REVISION"
        case let .repositoryNotFound(repo, endpoint):
            return "repository '\(repo)' was not found on \(endpoint): check the name, "
                + "or set HF_TOKEN for gated/private repos"
        case let .revisionNotFound(repo, revision):
            return "'\(repo)' has no revision '\(revision)': check the branch, tag or commit name"
        case let .fileNotFound(repo, revision, path):
            return "'\(repo)' has no file '\(path)' at revision '\(revision)': check the path "
                + "(the repository's files are listed on its Hub page)"
        case let .accessDenied(repo, status, tokenSent, serverMessage):
            let advice = tokenSent
                ? "the token in HF_TOKEN does not grant access: check that it is valid and can read "
                    + "this repository, and for a gated model accept its license on the model's Hub page"
                : "the repository is gated or private: set HF_TOKEN to a Hugging Face access token "
                    + "that can read it (for a gated model, accept its license on the model's Hub page first)"
            return "access to '\(repo)' was refused (HTTP \(status)): \(advice)" + Self.quote(serverMessage)
        case let .networkUnreachable(host, reason):
            return "cannot reach \(host) (\(reason)): check the connection and HF_ENDPOINT, "
                + "use HF_HUB_OFFLINE=1 with a populated cache, or pass a local path"
        case let .interrupted(file, reason):
            return "the download of \(file) was interrupted (\(reason)); run the command again "
                + "to resume where it stopped"
        case let .httpStatus(url, status, serverMessage):
            return "the Hub answered HTTP \(status) for \(url)" + Self.quote(serverMessage)
                + "; try again later"
        case let .badResponse(url, reason):
            return "unexpected answer from \(url): \(reason); check that HF_ENDPOINT names a Hugging Face Hub"
        case let .checksumMismatch(file, expected, actual):
            return "\(file) is corrupt: its SHA-256 is \(actual) but the Hub lists \(expected); "
                + "the download was deleted, run the command again to fetch it afresh"
        case let .sizeMismatch(file, expected, actual):
            return "\(file) is corrupt: it has \(actual) bytes but the Hub lists \(expected); "
                + "the download was deleted, run the command again to fetch it afresh"
        case let .noMatchingFiles(repo, revision, patterns):
            if patterns.isEmpty {
                return "'\(repo)' at '\(revision)' has no model files (*.json, *.safetensors, "
                    + "tokenizer.model, *.bin); choose files with --include, e.g. '*.gguf'"
            }
            return "no file of '\(repo)' at '\(revision)' matches \(patterns.joined(separator: ", ")); "
                + "patterns are fnmatch-style (*, ?, [...]) and match paths inside the repository"
        case let .notInCache(repo, revision, cache):
            return "'\(repo)' at '\(revision)' is not in the cache at \(cache) and HF_HUB_OFFLINE is set: "
                + "run once with network access (unset HF_HUB_OFFLINE) to download it, or pass a local path"
        case let .disk(path, reason):
            return "cannot write \(path): \(reason); check free space and permissions of the cache "
                + "(set HF_HUB_CACHE to move it)"
        }
    }

    private static func quote(_ message: String?) -> String {
        guard let message, !message.isEmpty else { return "" }
        return " (the Hub says: \(message))"
    }

    /// Maps an HTTP error answer to the most specific error. The Hub names the problem in the
    /// `X-Error-Code` header; it answers 401 rather than 404 for a repository that does not exist
    /// when no token is sent, so that private repositories cannot be probed.
    static func from(
        status: Int, errorCode: String?, serverMessage: String?,
        repo: String, revision: String, path: String?, url: URL, endpoint: URL, tokenSent: Bool
    ) -> HubError {
        switch errorCode {
        case "RepositoryNotFound":
            return .repositoryNotFound(repo: repo, endpoint: endpoint.absoluteString)
        case "RevisionNotFound":
            return .revisionNotFound(repo: repo, revision: revision)
        case "EntryNotFound" where path != nil:
            return .fileNotFound(repo: repo, revision: revision, path: path ?? "")
        case "GatedRepo":
            return .accessDenied(repo: repo, status: status, tokenSent: tokenSent, serverMessage: serverMessage)
        default:
            break
        }
        switch status {
        case 401, 403:
            return .accessDenied(repo: repo, status: status, tokenSent: tokenSent, serverMessage: serverMessage)
        case 404:
            if let path { return .fileNotFound(repo: repo, revision: revision, path: path) }
            return .repositoryNotFound(repo: repo, endpoint: endpoint.absoluteString)
        default:
            return .httpStatus(url: url.absoluteString, status: status, serverMessage: serverMessage)
        }
    }
}
