import Synchronization

/// The server-wide budget of KV-cache memory, so that admitting a request never overcommits it.
///
/// Every request reserves, before any model work, the cache rows it may fill: its prompt plus its `max_tokens`
/// (new caches are allocated at exactly that capacity, so a request never grows past its reservation). When the
/// rows of the requests already admitted leave too little, the new one is refused at once with
/// `AdmissionError.kvCacheFull` (HTTP 503 with `Retry-After`) instead of exhausting memory mid-generation; a
/// request that could not fit even into an empty budget is refused with `.exceedsKVBudget` (400). The prefix
/// cache's entries are not counted here: they live under the prefix cache's own byte budget.
public final class KVBudget: Sendable {
    public let capacityBytes: Int
    public let bytesPerToken: Int
    private let used = Mutex(0)

    public init(capacityBytes: Int, bytesPerToken: Int) {
        self.capacityBytes = max(0, capacityBytes)
        self.bytesPerToken = max(1, bytesPerToken)
    }

    /// Bytes reserved by requests in flight.
    public var usedBytes: Int { used.withLock { $0 } }

    /// Reserves room for `tokens` cache rows, or throws when it is not there.
    public func reserve(tokens: Int) throws(AdmissionError) -> Reservation {
        let (bytes, overflow) = tokens.multipliedReportingOverflow(by: bytesPerToken)
        guard !overflow, bytes <= capacityBytes else {
            throw .exceedsKVBudget(neededBytes: overflow ? .max : bytes, budgetBytes: capacityBytes)
        }
        let free = used.withLock { value -> Int? in
            guard value + bytes <= capacityBytes else { return capacityBytes - value }
            value += bytes
            return nil
        }
        if let free { throw .kvCacheFull(neededBytes: bytes, freeBytes: free, budgetBytes: capacityBytes) }
        return Reservation(budget: self, bytes: bytes)
    }

    fileprivate func release(_ bytes: Int) { used.withLock { $0 -= bytes } }

    /// Held for the life of a request; the rows go back to the budget when it is released.
    public final class Reservation: Sendable {
        private let budget: KVBudget
        public let bytes: Int
        fileprivate init(budget: KVBudget, bytes: Int) {
            self.budget = budget
            self.bytes = bytes
        }
        deinit { budget.release(bytes) }
    }
}

/// Why the engine would not take a request now.
public enum AdmissionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The requests in flight hold the KV budget; retry shortly.
    case kvCacheFull(neededBytes: Int, freeBytes: Int, budgetBytes: Int)
    /// The request alone needs more KV cache than the whole budget.
    case exceedsKVBudget(neededBytes: Int, budgetBytes: Int)

    public var description: String {
        func mb(_ bytes: Int) -> String { bytes == .max ? "more than 8 EB" : "\((bytes + (1 << 20) - 1) >> 20) MiB" }
        switch self {
        case .kvCacheFull(let needed, let free, let budget):
            return "the KV cache budget (\(mb(budget))) is in use by other requests: this one needs \(mb(needed)), \(mb(free)) are free; retry shortly"
        case .exceedsKVBudget(let needed, let budget):
            return "the prompt plus max_tokens needs \(mb(needed)) of KV cache, more than the server's whole budget of \(mb(budget)); lower max_tokens or shorten the prompt"
        }
    }
}
