import Foundation

/// Where the Hub is, who the caller is, and where downloads are cached. Tests and embedders build
/// one explicitly; the CLI uses `fromEnvironment()`, which reads the same variables as
/// `huggingface_hub` so that an existing cache and login are reused.
public struct HubConfiguration: Sendable, Equatable {
    /// The public Hub.
    public static let defaultEndpoint = URL(string: "https://huggingface.co")!

    /// Base URL of the Hub (`HF_ENDPOINT`), e.g. a mirror or a local test server.
    public var endpoint: URL
    /// Access token sent as `Authorization: Bearer …` to the endpoint's host only (`HF_TOKEN`).
    public var token: String?
    /// Root of the cache (`HF_HUB_CACHE`), holding one `models--OWNER--NAME` folder per repository.
    public var cacheDirectory: URL
    /// Resolve from the cache only and never touch the network (`HF_HUB_OFFLINE=1`).
    public var offline: Bool
    /// Seconds without any data before a request is abandoned.
    public var requestTimeout: TimeInterval
    /// How many times one file transfer is tried before giving up; later tries resume with
    /// `Range` where the earlier ones stopped.
    public var maxDownloadAttempts: Int

    public init(
        endpoint: URL = HubConfiguration.defaultEndpoint,
        cacheDirectory: URL,
        token: String? = nil,
        offline: Bool = false,
        requestTimeout: TimeInterval = 30,
        maxDownloadAttempts: Int = 5
    ) {
        self.endpoint = endpoint
        self.cacheDirectory = cacheDirectory
        self.token = token
        self.offline = offline
        self.requestTimeout = requestTimeout
        self.maxDownloadAttempts = max(1, maxDownloadAttempts)
    }

    /// The configuration `huggingface_hub` would use with these environment variables:
    ///
    /// - `HF_ENDPOINT`: the Hub's URL (default https://huggingface.co; an unparsable value is ignored).
    /// - `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`); without it, the token file written by
    ///   `huggingface-cli login`, at `HF_TOKEN_PATH` or `HF_HOME/token`.
    /// - `HF_HUB_CACHE`; else `HF_HOME/hub`; `HF_HOME` defaults to `XDG_CACHE_HOME/huggingface`,
    ///   and that to `~/.cache/huggingface`.
    /// - `HF_HUB_OFFLINE`: `1`, `true`, `yes` or `on` (any case) turns offline mode on.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> HubConfiguration {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else {
                return nil
            }
            return v
        }
        func path(_ text: String) -> URL {
            URL(fileURLWithPath: NSString(string: text).expandingTildeInPath, isDirectory: true)
        }

        let home = value("HOME").map(path) ?? URL(fileURLWithPath: NSHomeDirectory(), isDirectory: true)
        let cacheHome = value("XDG_CACHE_HOME").map(path) ?? home.appendingPathComponent(".cache", isDirectory: true)
        let hfHome = value("HF_HOME").map(path) ?? cacheHome.appendingPathComponent("huggingface", isDirectory: true)
        let cache = value("HF_HUB_CACHE").map(path) ?? hfHome.appendingPathComponent("hub", isDirectory: true)

        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil {
            let tokenFile = value("HF_TOKEN_PATH").map { URL(fileURLWithPath: NSString(string: $0).expandingTildeInPath) }
                ?? hfHome.appendingPathComponent("token")
            token = (try? String(contentsOf: tokenFile, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if token?.isEmpty == true { token = nil }
        }

        let offlineValues: Set<String> = ["1", "TRUE", "YES", "ON"]
        return HubConfiguration(
            endpoint: value("HF_ENDPOINT").flatMap { URL(string: $0) } ?? defaultEndpoint,
            cacheDirectory: cache,
            token: token,
            offline: value("HF_HUB_OFFLINE").map { offlineValues.contains($0.uppercased()) } ?? false
        )
    }
}
