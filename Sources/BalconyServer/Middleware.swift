import BalconyCore
import Foundation
import Hummingbird
import NIOCore

/// Turns every error into an OpenAI-style JSON error body and counts every answer in the metrics.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServingMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let endpoint = Self.endpoint(request.uri.path)
        let response: Response
        do {
            response = try await next(request, context)
        } catch let e as APIError {
            response = jsonResponse(e.body, status: .init(code: e.status))
        } catch let e as HTTPError {
            let message = e.body ?? (e.status == .notFound ? "no route \(request.method) \(request.uri.path)" : e.status.reasonPhrase)
            let type = e.status.code >= 500 ? "server_error" : "invalid_request_error"
            let code = e.status == .notFound ? "not_found" : nil
            response = jsonResponse(APIError(status: e.status.code, message: message, type: type, code: code).body, status: e.status)
        } catch is NIOTooManyBytesError {
            response = jsonResponse(APIError(status: 413, message: "the request body is too large", code: "request_too_large").body,
                                    status: .contentTooLarge)
        } catch {
            response = jsonResponse(APIError(status: 500, message: "\(error)", type: "server_error").body, status: .internalServerError)
        }
        metrics.request(endpoint: endpoint, status: response.status.code)
        return response
    }

    /// The route a path belongs to, for metric labels (unknown paths share one label).
    static func endpoint(_ path: String) -> String {
        let known = ["/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"]
        let p = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        return known.contains(p) ? p : "other"
    }
}

/// `Authorization: Bearer KEY` on every `/v1` route when the server has an API key.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let apiKey: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let key = apiKey else { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), constantTimeEqual(String(header.dropFirst(7)), key) else {
            throw APIError(status: 401, message: header.isEmpty ? "missing API key: send Authorization: Bearer KEY"
                                                                : "incorrect API key provided",
                           code: "invalid_api_key")
        }
        return try await next(request, context)
    }
}

/// Compares without returning early, so the time taken does not tell how much of a key matched.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
    return diff == 0
}
