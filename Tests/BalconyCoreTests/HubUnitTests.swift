import Foundation
import Testing
@testable import BalconyCore

/// The parts of the Hub client that need no server: patterns, file selection, references,
/// configuration, and the checks on what a server sends.
@Suite struct HubUnitTests {
    /// Expected values are Python's `fnmatch.fnmatchcase(path, pattern)`.
    @Test(arguments: [
        ("*.json", "config.json", true),
        ("*.json", "sub/config.json", true),  // `*` crosses `/`, as in fnmatch
        ("*.json", "config.jsonl", false),
        ("config.json", "config.json", true),
        ("config.json", "Config.json", false),
        ("model-0000?-of-00002.safetensors", "model-00001-of-00002.safetensors", true),
        ("model-0000?-of-00002.safetensors", "model-00010-of-00002.safetensors", false),
        ("*Q[48]_0.gguf", "llama-Q8_0.gguf", true),
        ("*Q[48]_0.gguf", "llama-Q5_0.gguf", false),
        ("*Q[!48]_0.gguf", "llama-Q5_0.gguf", true),
        ("[a-c]*", "bert", true),
        ("[a-c]*", "dog", false),
        ("[]]x", "]x", true),
        ("[!]]x", "ax", true),
        ("[-a]", "-", true),
        ("[a-]", "-", true),
        ("[z-a]", "m", false),  // a reversed range is empty
        ("[abc", "[abc", true),  // no closing bracket: literal
        ("a\\*b", "a\\xyzb", true),  // backslash is an ordinary character
        ("stories/", "stories/model.bin", true),  // a folder pattern
        ("*", "", true),
        ("?", "", false),
        ("**a*b*", "xaxxbx", true),
        ("*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false),
        ("é?.bin", "éx.bin", true),
    ])
    func globMatchesLikeFnmatch(_ pattern: String, _ path: String, _ expected: Bool) {
        #expect(HubGlob(pattern).matches(path) == expected)
    }

    static let repoFiles = [
        ".gitattributes", "README.md", "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "tokenizer.json",
        "tokenizer.model", "tokenizer_config.json", "original/params.json", "original/tokenizer.model",
        "llama-Q8_0.gguf", "stories/stories.bin", "stories/tok512.bin", "stories/tok512.model", "stories/model.pt",
    ]

    @Test func defaultSelectionTakesModelFiles() {
        #expect(HubFileSelection().select(Self.repoFiles) == [
            "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
            "tokenizer.model", "tokenizer_config.json",
        ])
        // Without safetensors, .bin files are the weights.
        #expect(HubFileSelection().select(["config.json", "pytorch_model.bin", "x.gguf"])
            == ["config.json", "pytorch_model.bin"])
        #expect(HubFileSelection(scope: "stories").select(Self.repoFiles) == ["stories/stories.bin", "stories/tok512.bin"])
        #expect(HubFileSelection(scope: "stories/").select(Self.repoFiles) == ["stories/stories.bin", "stories/tok512.bin"])
    }

    @Test func patternsAndFileScopes() {
        #expect(HubFileSelection(include: ["*.gguf"]).select(Self.repoFiles) == ["llama-Q8_0.gguf"])
        #expect(HubFileSelection(include: ["original/"]).select(Self.repoFiles)
            == ["original/params.json", "original/tokenizer.model"])
        // Patterns are relative to the scope.
        #expect(HubFileSelection(scope: "stories", include: ["tok512.*"]).select(Self.repoFiles)
            == ["stories/tok512.bin", "stories/tok512.model"])
        // A scope that names a file selects it, whatever the patterns.
        #expect(HubFileSelection(scope: "llama-Q8_0.gguf").select(Self.repoFiles) == ["llama-Q8_0.gguf"])
        #expect(HubFileSelection(scope: "missing").select(Self.repoFiles).isEmpty)
    }

    @Test(arguments: [
        ("hf:karpathy/tinyllamas", "karpathy/tinyllamas", nil, "main"),
        ("hf:karpathy/tinyllamas/stories260K", "karpathy/tinyllamas", "stories260K", "main"),
        ("hf:karpathy/tinyllamas/stories260K/", "karpathy/tinyllamas", "stories260K", "main"),
        ("hf://owner/name/a/b.gguf@v1.0", "owner/name", "a/b.gguf", "v1.0"),
        ("hf:owner/name@refs/pr/3", "owner/name", nil, "refs/pr/3"),
        ("  meta-llama/Llama-3.2-1B  ", "meta-llama/Llama-3.2-1B", nil, "main"),
        ("TinyLlama/TinyLlama_v1.1@0123456789abcdef0123456789abcdef01234567",
         "TinyLlama/TinyLlama_v1.1", nil, "0123456789abcdef0123456789abcdef01234567"),
    ] as [(String, String, String?, String)])
    func parsesReferences(_ text: String, _ repo: String, _ path: String?, _ revision: String) throws {
        let reference = try HubModelReference(parsing: text)
        #expect(reference.repo == repo)
        #expect(reference.path == path)
        #expect(reference.revision == revision)
        #expect(try HubModelReference(parsing: reference.description) == reference)
    }

    @Test(arguments: [
        "hf:", "hf:owner", "owner", "owner/name/sub", "hf:owner/name@", "hf:own er/name", "hf:owner/../name",
        "hf:owner/name/../../etc", "hf:owner/name//x", "hf:-owner/name", "hf:owner/name.", "hf:ow--ner/name",
        "hf:owner/name@../../x", "hf:owner/name@a b",
    ])
    func rejectsMalformedReferences(_ text: String) {
        #expect(throws: HubError.self) { try HubModelReference(parsing: text) }
    }

    @Test func malformedReferenceMessageShowsTheForm() {
        let error = #expect(throws: HubError.self) { try HubModelReference(parsing: "hf:justaname") }
        #expect(error?.localizedDescription.contains("hf:OWNER/NAME") == true)
    }

    @Test func configurationFromEnvironment() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-home-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }

        let plain = HubConfiguration.fromEnvironment(["HOME": home.path])
        #expect(plain.endpoint == HubConfiguration.defaultEndpoint)
        #expect(plain.cacheDirectory.path == home.path + "/.cache/huggingface/hub")
        #expect(plain.token == nil)
        #expect(!plain.offline)

        let hfHome = HubConfiguration.fromEnvironment(["HOME": home.path, "HF_HOME": "/data/hf", "HF_HUB_OFFLINE": "1",
                                                       "HF_TOKEN": " hf_abc\n", "HF_ENDPOINT": "http://mirror.local:8080"])
        #expect(hfHome.cacheDirectory.path == "/data/hf/hub")
        #expect(hfHome.offline)
        #expect(hfHome.token == "hf_abc")
        #expect(hfHome.endpoint.absoluteString == "http://mirror.local:8080")

        let explicit = HubConfiguration.fromEnvironment(["HOME": home.path, "HF_HOME": "/data/hf",
                                                         "HF_HUB_CACHE": "/fast/cache", "HF_HUB_OFFLINE": "no"])
        #expect(explicit.cacheDirectory.path == "/fast/cache")
        #expect(!explicit.offline)
        #expect(HubConfiguration.fromEnvironment(["HOME": home.path, "XDG_CACHE_HOME": "/xdg"]).cacheDirectory.path
            == "/xdg/huggingface/hub")
        #expect(HubConfiguration.fromEnvironment(["HOME": home.path, "HF_HUB_OFFLINE": "True"]).offline)

        // The token file `huggingface-cli login` writes is used when HF_TOKEN is unset.
        let tokenFile = home.appendingPathComponent(".cache/huggingface/token")
        try FileManager.default.createDirectory(at: tokenFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        try "hf_from_file\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        #expect(HubConfiguration.fromEnvironment(["HOME": home.path]).token == "hf_from_file")
        #expect(HubConfiguration.fromEnvironment(["HOME": home.path, "HF_TOKEN": "hf_env"]).token == "hf_env")
    }

    @Test func listingDecodingChecksServerNames() throws {
        let url = URL(string: "http://hub.test/api/models/a/b/revision/main")!
        let good = #"{"sha": "0123456789abcdef0123456789abcdef01234567", "siblings": [{"rfilename": "config.json", "size": 10}, {"rfilename": "w/model.safetensors", "size": 5, "lfs": {"sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "size": 99}}]}"#
        let listing = try HubClient.decodeListing(Data(good.utf8), url: url)
        #expect(listing.commit == "0123456789abcdef0123456789abcdef01234567")
        #expect(listing.files == [
            HubRepoFile(path: "config.json", size: 10),
            HubRepoFile(path: "w/model.safetensors", size: 99,
                        sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ])

        for bad in [
            #"{"sha": "abc", "siblings": [{"rfilename": "../../outside"}]}"#,
            #"{"sha": "abc", "siblings": [{"rfilename": "/etc/passwd"}]}"#,
            #"{"sha": "abc", "siblings": [{"rfilename": "a//b"}]}"#,
            #"{"sha": "../x", "siblings": []}"#,
            #"{"siblings": []}"#,
            "<html>not json</html>",
        ] {
            #expect(throws: HubError.self) { try HubClient.decodeListing(Data(bad.utf8), url: url) }
        }
    }

    @Test func etagNormalization() {
        #expect(HubClient.normalizeETag(#"W/"abc123""#) == "abc123")
        #expect(HubClient.normalizeETag(#""e3b0c442""#) == "e3b0c442")
        #expect(HubCache.isSafeComponent("e3b0c442-x_y.z"))
        #expect(!HubCache.isSafeComponent(".."))
        #expect(!HubCache.isSafeComponent("a/b"))
    }

    @Test func errorMessagesSayWhatToDo() {
        let url = URL(string: "https://huggingface.co/api/models/a/b/revision/main")!
        let endpoint = HubConfiguration.defaultEndpoint
        let notFound = HubError.from(status: 401, errorCode: "RepositoryNotFound", serverMessage: nil, repo: "a/b",
                                     revision: "main", path: nil, url: url, endpoint: endpoint, tokenSent: false)
        #expect(notFound == .repositoryNotFound(repo: "a/b", endpoint: "https://huggingface.co"))
        let gated = HubError.from(status: 403, errorCode: nil, serverMessage: "Access restricted", repo: "a/b",
                                  revision: "main", path: nil, url: url, endpoint: endpoint, tokenSent: false)
        #expect(gated.localizedDescription.contains("set HF_TOKEN"))
        #expect(gated.localizedDescription.contains("Access restricted"))
        let server = HubError.from(status: 503, errorCode: nil, serverMessage: nil, repo: "a/b",
                                   revision: "main", path: nil, url: url, endpoint: endpoint, tokenSent: false)
        #expect(server == .httpStatus(url: url.absoluteString, status: 503, serverMessage: nil))
        #expect(HubError.disk(path: "/x", reason: "No space left on device").localizedDescription.contains("HF_HUB_CACHE"))
    }
}
