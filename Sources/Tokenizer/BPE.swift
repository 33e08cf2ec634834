import Synchronization

// Byte-level BPE over token ids. A piece's UTF-8 bytes start as the ids of the 256 single-byte tokens; the
// adjacent pair with the lowest merge rank (leftmost among equals) is merged until no pair has a merge.
// Ports tokenizers' `Word::merge_all` (models/bpe/word.rs): a min-heap of candidate merges with lazy
// deletion — a popped candidate is dropped when its left symbol was merged away or its right neighbour
// changed since it was pushed. O(n log n) per piece, so a 100k-letter run without spaces stays fast.

struct BPEModel: Sendable {
    /// byte -> id of the token for that byte, or -1 when the vocabulary lacks it (its bytes are then dropped,
    /// as tokenizers does for a BPE without unk token or byte fallback).
    let byteIDs: [Int32]
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    /// `model.ignore_merges`: a piece that is itself a vocabulary token is emitted whole.
    let ignoreMerges: Bool
    /// Byte-level string -> id, used only when `ignoreMerges` is set.
    let vocab: [String: Int]

    private let cache = PieceCache()

    init(byteIDs: [Int32], merges: [UInt64: UInt64], ignoreMerges: Bool, vocab: [String: Int]) {
        self.byteIDs = byteIDs
        self.merges = merges
        self.ignoreMerges = ignoreMerges
        self.vocab = ignoreMerges ? vocab : [:]
    }

    /// Appends the ids of one pre-tokenized piece (raw UTF-8 bytes) to `output`.
    func encode(_ piece: UnsafeBufferPointer<UInt8>, into output: inout [Int]) {
        if piece.count == 1 {
            let id = byteIDs[Int(piece[0])]
            if id >= 0 { output.append(Int(id)) }
            return
        }
        if ignoreMerges, let id = vocab[ByteLevel.encode(piece)] {
            output.append(id)
            return
        }
        let cacheable = piece.count <= PieceCache.maxPieceBytes
        if cacheable, let cached = cache.lookup(piece) {
            output.append(contentsOf: cached.lazy.map { Int($0) })
            return
        }
        let ids = mergeAll(piece)
        if cacheable { cache.store(piece, ids) }
        output.append(contentsOf: ids.lazy.map { Int($0) })
    }

    /// The BPE merge loop of one piece; returns its token ids.
    func mergeAll(_ piece: UnsafeBufferPointer<UInt8>) -> [Int32] {
        // Symbols as a doubly linked list over arrays; a merged-away symbol gets id -1.
        var ids: [Int32] = []
        ids.reserveCapacity(piece.count)
        for b in piece {
            let id = byteIDs[Int(b)]
            if id >= 0 { ids.append(id) }
        }
        let n = ids.count
        if n < 2 { return ids }
        var prev = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = Int32(i - 1) }
            count = n
        }
        var next = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = i + 1 < n ? Int32(i + 1) : -1 }
            count = n
        }
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            if let m = merges[pairKey(ids[i], ids[i + 1])] {
                heap.push(MergeCandidate(rank: UInt32(truncatingIfNeeded: m >> 32), pos: Int32(i), newID: Int32(truncatingIfNeeded: m)))
            }
        }
        while let top = heap.pop() {
            let pos = Int(top.pos)
            if ids[pos] < 0 { continue }
            let right = Int(next[pos])
            if right < 0 { continue }
            // Still the same pair as when pushed?
            guard let m = merges[pairKey(ids[pos], ids[right])], Int32(truncatingIfNeeded: m) == top.newID else { continue }
            ids[pos] = top.newID
            ids[right] = -1
            let after = next[right]
            next[pos] = after
            if after >= 0 { prev[Int(after)] = Int32(pos) }
            let before = prev[pos]
            if before >= 0, let m = merges[pairKey(ids[Int(before)], top.newID)] {
                heap.push(MergeCandidate(rank: UInt32(truncatingIfNeeded: m >> 32), pos: before, newID: Int32(truncatingIfNeeded: m)))
            }
            if after >= 0, let m = merges[pairKey(top.newID, ids[Int(after)])] {
                heap.push(MergeCandidate(rank: UInt32(truncatingIfNeeded: m >> 32), pos: Int32(pos), newID: Int32(truncatingIfNeeded: m)))
            }
        }
        var result: [Int32] = []
        result.reserveCapacity(n)
        var i: Int32 = 0
        while i >= 0 {
            result.append(ids[Int(i)])
            i = next[Int(i)]
        }
        return result
    }
}

@inline(__always)
func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
    UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
}

// MARK: - Merge heap

struct MergeCandidate {
    var rank: UInt32
    var pos: Int32
    var newID: Int32

    /// Lower rank first; among equal ranks the leftmost position (as tokenizers' `Merge` ordering).
    @inline(__always)
    func precedes(_ other: MergeCandidate) -> Bool {
        rank != other.rank ? rank < other.rank : pos < other.pos
    }
}

/// A binary min-heap of merge candidates.
struct MergeHeap {
    private var items: [MergeCandidate] = []

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var parent = 0
        let count = items.count
        while true {
            let left = 2 * parent + 1
            if left >= count { break }
            var best = left
            if left + 1 < count && items[left + 1].precedes(items[left]) { best = left + 1 }
            guard items[best].precedes(items[parent]) else { break }
            items.swapAt(best, parent)
            parent = best
        }
        return top
    }
}

// MARK: - Piece cache

/// Thread-safe memo of piece bytes -> ids. Cleared wholesale when full, which keeps memory bounded without
/// bookkeeping; social-media text repeats the same short pieces constantly.
final class PieceCache: Sendable {
    static let maxPieceBytes = 64
    static let capacity = 65_536
    private let storage = Mutex<[[UInt8]: [Int32]]>([:])

    func lookup(_ piece: UnsafeBufferPointer<UInt8>) -> [Int32]? {
        let key = Array(piece)
        return storage.withLock { $0[key] }
    }

    func store(_ piece: UnsafeBufferPointer<UInt8>, _ ids: [Int32]) {
        let key = Array(piece)
        storage.withLock { table in
            if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
            table[key] = ids
        }
    }
}
