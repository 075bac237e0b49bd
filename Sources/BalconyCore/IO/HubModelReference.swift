import Foundation

/// A model on the Hugging Face Hub as users write it:
///
/// - `hf:OWNER/NAME` — a repository (its model files, see `HubFileSelection`);
/// - `hf:OWNER/NAME/SUBFOLDER…` — a folder inside it, e.g. `hf:karpathy/tinyllamas/stories260K`,
///   or one file, e.g. `hf:OWNER/NAME-GGUF/model-Q8_0.gguf`;
/// - `…@REVISION` — a branch, tag or commit instead of `main`;
/// - `OWNER/NAME` (no prefix, no subfolder) — also accepted, since users copy ids from the Hub.
///   That form looks like a relative path, so callers should check for a local file first.
public struct HubModelReference: Sendable, Hashable, CustomStringConvertible {
    /// `OWNER/NAME`.
    public var repo: String
    /// A folder or file inside the repository, or nil for its root.
    public var path: String?
    /// Branch, tag or commit hash.
    public var revision: String

    /// - Throws: `HubError.invalidReference` when a part is malformed.
    public init(repo: String, path: String? = nil, revision: String = "main") throws {
        try Self.validate(repo: repo, revision: revision)
        var trimmed = path
        while trimmed?.hasSuffix("/") == true { trimmed?.removeLast() }
        if let trimmed, !trimmed.isEmpty, !HubCache.isSafeRelativePath(trimmed) {
            throw HubError.invalidReference(trimmed, reason: "a path inside the repository may not have "
                + "empty, '.' or '..' parts")
        }
        self.repo = repo
        self.path = trimmed?.isEmpty == false ? trimmed : nil
        self.revision = revision
    }

    /// Parses `hf:OWNER/NAME[/PATH…][@REVISION]` (also `hf://…`) or `OWNER/NAME[@REVISION]`.
    /// - Throws: `HubError.invalidReference` naming what is wrong.
    public init(parsing text: String) throws {
        var body = Substring(text.trimmingCharacters(in: .whitespaces))
        let prefixed = body.hasPrefix("hf:")
        if prefixed {
            body = body.dropFirst(3)
            while body.hasPrefix("/") { body = body.dropFirst() }
        }
        var revision = "main"
        if let at = body.lastIndex(of: "@") {
            revision = String(body[body.index(after: at)...])
            body = body[..<at]
            guard !revision.isEmpty else { throw HubError.invalidReference(text, reason: "nothing after '@'") }
        }
        if body.hasSuffix("/") { body = body.dropLast() }
        let parts = body.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2 else { throw HubError.invalidReference(text, reason: "expected OWNER/NAME") }
        guard prefixed || parts.count == 2 else {
            throw HubError.invalidReference(text, reason: "a path inside the repository needs the hf: prefix")
        }
        do {
            try self.init(repo: parts[0] + "/" + parts[1],
                          path: parts.count > 2 ? parts[2...].joined(separator: "/") : nil,
                          revision: revision)
        } catch let HubError.invalidReference(_, reason) {
            throw HubError.invalidReference(text, reason: reason)
        }
    }

    /// Whether `text` is explicitly a Hub reference (starts with `hf:`).
    public static func hasHubPrefix(_ text: String) -> Bool {
        text.trimmingCharacters(in: .whitespaces).hasPrefix("hf:")
    }

    /// The canonical `hf:` form.
    public var description: String {
        "hf:" + repo + (path.map { "/" + $0 } ?? "") + (revision == "main" ? "" : "@" + revision)
    }

    // MARK: - Resolving

    /// Downloads what the reference names (unless cached, or offline) and returns its local path:
    /// the named file; for a subfolder holding exactly one model file (`.gguf`, or `.bin` other
    /// than a llama2.c tokenizer `tokenizer.bin`/`tokNNN.bin`) and no `config.json`, that file;
    /// otherwise the folder.
    public func resolve(
        using client: HubClient = HubClient(), include: [String] = [],
        progress: (@Sendable (HubProgress) -> Void)? = nil
    ) async throws -> URL {
        let snapshot = try await client.download(repo: repo, revision: revision, subfolder: path,
                                                 include: include, progress: progress)
        guard let path else { return snapshot }
        let target = snapshot.appendingPathComponent(path)
        if HubCache.fileSize(target) != nil { return target }
        return Self.singleModelFile(in: target) ?? target
    }

    /// Parses `text` and resolves it; see `init(parsing:)` and `resolve(using:include:progress:)`.
    public static func resolve(
        _ text: String, client: HubClient = HubClient(), include: [String] = [],
        progress: (@Sendable (HubProgress) -> Void)? = nil
    ) async throws -> URL {
        try await HubModelReference(parsing: text).resolve(using: client, include: include, progress: progress)
    }

    /// `resolve(using:include:progress:)` for synchronous code that runs outside Swift
    /// concurrency (a plain thread, a C callback). It blocks the calling thread until the download
    /// ends, so it must not be called from an async context, where it could starve the
    /// cooperative thread pool that the download itself needs; the compiler enforces this.
    @available(*, noasync, message: "blocks the thread; use resolve(using:include:progress:) in async code")
    public func resolveBlocking(
        using client: HubClient = HubClient(), include: [String] = [],
        progress: (@Sendable (HubProgress) -> Void)? = nil
    ) throws -> URL {
        let outcome = BlockingOutcome()
        let semaphore = DispatchSemaphore(value: 0)
        let reference = self
        Task.detached {
            do {
                outcome.set(.success(try await reference.resolve(using: client, include: include, progress: progress)))
            } catch {
                outcome.set(.failure(error))
            }
            semaphore.signal()
        }
        semaphore.wait()
        return try outcome.get()
    }

    // MARK: - Helpers

    /// Checks a repository id the way `huggingface_hub` does (`OWNER/NAME` or a legacy `NAME`;
    /// letters, digits, `_`, `-`, `.`; parts begin and end with a letter, digit or `_`; no `--`
    /// or `..`; at most 96 characters) and a revision (a relative name that cannot escape
    /// `refs/`). Both become paths in the cache, so this is also what keeps them inside it.
    static func validate(repo: String, revision: String) throws {
        func isWordChar(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
        }
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
        let valid = !repo.isEmpty && repo.count <= 96 && parts.count <= 2
            && !repo.contains("--") && !repo.contains("..")
            && parts.allSatisfy { part in
                guard let first = part.unicodeScalars.first, let last = part.unicodeScalars.last else { return false }
                return isWordChar(first) && isWordChar(last)
                    && part.unicodeScalars.allSatisfy { isWordChar($0) || $0 == "-" || $0 == "." }
            }
        guard valid else {
            throw HubError.invalidReference(repo, reason: "a repository id is OWNER/NAME made of letters, digits, "
                + "'-', '_' and '.', without '--' or '..'")
        }
        guard revision.count <= 255, HubCache.isSafeRelativePath(revision),
              !revision.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 }) else {
            throw HubError.invalidReference(revision, reason: "not a usable revision name")
        }
    }

    /// The one model file directly in `folder`, when there is exactly one and the folder is not a
    /// Hugging Face model folder (no `config.json`).
    static func singleModelFile(in folder: URL) -> URL? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path),
              !names.contains("config.json") else { return nil }
        let models = names.filter { name in
            let lower = name.lowercased()
            if lower.hasSuffix(".gguf") { return true }
            return lower.hasSuffix(".bin") && !lower.hasPrefix("tok")
        }
        guard models.count == 1 else { return nil }
        let file = folder.appendingPathComponent(models[0])
        return HubCache.fileSize(file) != nil ? file : nil
    }
}

/// The result handed from the detached task to the blocked thread in `resolveBlocking`.
private final class BlockingOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<URL, Error>?

    func set(_ value: Result<URL, Error>) {
        lock.lock()
        result = value
        lock.unlock()
    }

    func get() throws -> URL {
        lock.lock()
        defer { lock.unlock() }
        guard let result else { throw CancellationError() }
        return try result.get()
    }
}
