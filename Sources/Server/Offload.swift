import Dispatch

/// CPU-heavy work of a request — parsing its body, compiling its schema, decoding and resizing its images — runs
/// here, on threads of its own, never on Swift's cooperative pool: that pool has one thread per core and serves every
/// connection, so a few large requests parsed on it would hold up `/health`, refusals and every other answer.
enum Offload {
    private static let queue = DispatchQueue(label: "postlens.request-work", qos: .userInitiated, attributes: .concurrent)

    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}
