import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Receives a response as it arrives. Called from the exchange's serial delegate queue, one call
/// at a time, and never after `HubHTTP.perform` has returned.
protocol HubBodySink: AnyObject {
    /// The final response's status and headers, before any body byte.
    func receive(_ response: HTTPURLResponse) throws
    /// The next piece of the body. Throwing cancels the transfer and `perform` rethrows the error.
    func receive(_ data: Data) throws
}

/// Collects a small body (a listing, an error message) in memory.
final class HubMemorySink: HubBodySink {
    private(set) var data = Data()
    private let limit: Int
    private let url: URL

    init(url: URL, limit: Int = 64 << 20) {
        self.url = url
        self.limit = limit
    }

    func receive(_ response: HTTPURLResponse) {}

    func receive(_ chunk: Data) throws {
        guard data.count + chunk.count <= limit else {
            throw HubError.badResponse(url: url.absoluteString, reason: "the answer is larger than \(limit >> 20) MiB")
        }
        data.append(chunk)
    }
}

/// What an exchange does with redirects.
enum HubRedirects: Sendable {
    /// Follow them all, keeping the request's headers, but sending `Authorization` only to the
    /// host it was meant for: file content lives on a CDN whose presigned URLs reject it.
    case follow
    /// Stop at a redirect that carries a file's metadata (`X-Linked-Etag`) or leaves the host,
    /// and return that redirect as the response: the Hub puts an LFS file's ETag, size and CDN
    /// location on its 302, not on the CDN's answer. Same-host redirects (renamed repositories)
    /// are still followed.
    case stopAtFileMetadata
}

/// HTTP over URLSession with a delegate, so that bodies stream into a sink instead of memory,
/// redirects are under our control, and the same code runs on Linux (FoundationNetworking has
/// no `bytes(for:)`). Each exchange uses its own session, invalidated when the task ends.
enum HubHTTP {
    /// Sends `request` and feeds the answer to `sink`; returns the final response, whatever its
    /// status.
    ///
    /// - Throws: `HubError.networkUnreachable` when no response arrived; `HubError.interrupted`
    ///   (with `label` as the file name) when the connection broke during the body; the sink's own
    ///   errors; `CancellationError` when the surrounding task is cancelled.
    static func perform(
        _ request: URLRequest, redirects: HubRedirects, sink: some HubBodySink, label: String
    ) async throws -> HTTPURLResponse {
        let delegate = ExchangeDelegate(request: request, redirects: redirects, sink: sink, label: label)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.timeoutIntervalForRequest = request.timeoutInterval
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: queue)
        defer { session.finishTasksAndInvalidate() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                delegate.start(in: session, continuation: continuation)
            }
        } onCancel: {
            delegate.cancel()
        }
    }
}

/// The delegate of one exchange. URLSession calls it on a serial queue, but `start` and `cancel`
/// come from other threads, so all state is guarded by `lock`.
private final class ExchangeDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private let request: URLRequest
    private let redirects: HubRedirects
    private let sink: any HubBodySink
    private let label: String

    private var continuation: CheckedContinuation<HTTPURLResponse, Error>?
    private var task: URLSessionDataTask?
    private var response: HTTPURLResponse?
    private var failure: Error?
    private var cancelled = false

    init(request: URLRequest, redirects: HubRedirects, sink: any HubBodySink, label: String) {
        self.request = request
        self.redirects = redirects
        self.sink = sink
        self.label = label
    }

    func start(in session: URLSession, continuation: CheckedContinuation<HTTPURLResponse, Error>) {
        lock.lock()
        defer { lock.unlock() }
        if cancelled {
            continuation.resume(throwing: CancellationError())
            return
        }
        self.continuation = continuation
        let task = session.dataTask(with: request)
        self.task = task
        task.resume()
    }

    func cancel() {
        lock.lock()
        cancelled = true
        let task = self.task
        lock.unlock()
        task?.cancel()
    }

    private func fail(_ error: Error, _ task: URLSessionTask) {
        lock.lock()
        if failure == nil { failure = error }
        lock.unlock()
        task.cancel()
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        // FoundationNetworking ignores the disposition, so failures cancel the task directly.
        completionHandler(.allow)
        guard let http = response as? HTTPURLResponse else {
            fail(HubError.badResponse(url: request.url?.absoluteString ?? "", reason: "not an HTTP response"), dataTask)
            return
        }
        lock.lock()
        self.response = http
        lock.unlock()
        do { try sink.receive(http) } catch { fail(error, dataTask) }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        let failed = failure != nil
        lock.unlock()
        guard !failed else { return }
        do { try sink.receive(data) } catch { fail(error, dataTask) }
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        let originalHost = request.url.map(Self.hostKey)
        let newHost = newRequest.url.map(Self.hostKey)
        if case .stopAtFileMetadata = redirects,
           response.value(forHTTPHeaderField: "X-Linked-Etag") != nil || newHost != originalHost {
            completionHandler(nil)
            return
        }
        // Rebuild from our request rather than trusting which headers the platform carries over.
        var next = request
        next.url = newRequest.url
        next.httpMethod = newRequest.httpMethod
        if newHost != originalHost {
            next.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        let failure = self.failure, response = self.response, cancelled = self.cancelled
        lock.unlock()
        guard let continuation else { return }

        if let failure {
            continuation.resume(throwing: failure)
        } else if cancelled {
            continuation.resume(throwing: CancellationError())
        } else if let error {
            let reason = Self.describe(error)
            if response == nil {
                let host = request.url?.host ?? request.url?.absoluteString ?? "the Hub"
                continuation.resume(throwing: HubError.networkUnreachable(host: host, reason: reason))
            } else {
                continuation.resume(throwing: HubError.interrupted(file: label, reason: reason))
            }
        } else if let response {
            continuation.resume(returning: response)
        } else {
            continuation.resume(throwing: HubError.badResponse(
                url: request.url?.absoluteString ?? "", reason: "the connection closed without an answer"))
        }
    }

    private static func hostKey(_ url: URL) -> String {
        "\(url.scheme ?? "")://\(url.host ?? ""):\(url.port.map(String.init) ?? "")"
    }

    private static func describe(_ error: Error) -> String {
        let ns = error as NSError
        return ns.localizedDescription.isEmpty ? "\(error)" : ns.localizedDescription
    }
}
