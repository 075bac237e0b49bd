import Foundation

/// How a served request picks its exit.
public enum ExitRequest: Sendable, Equatable {
    /// The server's policy decides (full depth under `fixed`, load-dependent under `slo`).
    case auto
    /// An explicit exit (`{"exit": K | "full"}`, or a `{"budget": F}` mapped through the cost model).
    case fixed(ExitChoice)
    /// A per-token latency target of this request's own: decided like the `slo` policy, with this target.
    case latency(ms: Double)
}

/// One generation request, already tokenized and validated by the HTTP layer.
public struct ServingRequest: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Texts that end the generation; the output stops before the first one.
    public var stop: [String]
    public var exit: ExitRequest

    public init(prompt: [Int], maxTokens: Int, sampling: SamplingParameters = .greedy, stop: [String] = [], exit: ExitRequest = .auto) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.exit = exit
    }
}

/// Why a generation ended, in OpenAI's words.
public enum FinishReason: String, Sendable, Codable {
    /// EOS or a stop sequence.
    case stop
    /// `max_tokens` reached, or the context is full.
    case length
}

/// Tokens served at one exit within a request.
public struct ExitUsage: Sendable, Equatable, Codable {
    public var exit: String
    public var tokens: Int
}

/// The summary of a finished request.
public struct ServingCompletion: Sendable {
    public var finishReason: FinishReason
    public var promptTokens: Int
    public var completionTokens: Int
    /// Exits in the order they were first used, with how many tokens each produced.
    public var exits: [ExitUsage]
    /// Generated ids (EOS excluded).
    public var tokens: [Int]
}

/// What a request's stream carries.
public enum ServingEvent: Sendable {
    /// New output text (never splits a UTF-8 character; held back while it may start a stop sequence)
    /// and the exit that produced the latest token.
    case text(String, exit: ExitChoice)
    case finished(ServingCompletion)
    case failed(String)
}

/// Errors of submitting work to the engine.
public enum ServingError: LocalizedError, Equatable {
    case shuttingDown
    case tooManyRequests(limit: Int)
    case invalidRequest(String)

    public var errorDescription: String? {
        switch self {
        case .shuttingDown: return "the server is shutting down"
        case let .tooManyRequests(limit): return "the server is at its limit of \(limit) concurrent requests; retry later"
        case let .invalidRequest(why): return why
        }
    }
}

/// A submitted request: its events, and a way to abandon it (a client that went away).
public final class ServingHandle: Sendable {
    public let events: AsyncStream<ServingEvent>
    let ticket: ServingTicket

    init(events: AsyncStream<ServingEvent>, ticket: ServingTicket) {
        self.events = events
        self.ticket = ticket
    }

    /// Frees the request's slot at the next step; no further events are produced.
    public func cancel() { ticket.cancel() }
}

/// The engine's side of a request: the continuation it yields to and the cancelled flag the HTTP
/// side sets (from any thread).
final class ServingTicket: @unchecked Sendable {
    let request: ServingRequest
    let continuation: AsyncStream<ServingEvent>.Continuation
    let submitted = Date()
    private let lock = NSLock()
    private var cancelledFlag = false

    init(request: ServingRequest, continuation: AsyncStream<ServingEvent>.Continuation) {
        self.request = request
        self.continuation = continuation
    }

    var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelledFlag
    }

    func cancel() {
        lock.lock(); cancelledFlag = true; lock.unlock()
    }
}
