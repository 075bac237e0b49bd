/// One candidate merge of two adjacent symbols.
struct MergeCandidate {
    /// Higher merges first: a SentencePiece score, or the negated rank of a BPE merge.
    var priority: Double
    /// Index of the left symbol; among equal priorities the leftmost merges first.
    var left: Int32
    var right: Int32
    /// What the candidate must still match when it is popped (a byte length or a token id),
    /// so that stale entries can be recognised and skipped.
    var check: Int32
    /// The merged token id, where the caller knows it.
    var result: Int32

    @inline(__always)
    func precedes(_ o: MergeCandidate) -> Bool {
        priority > o.priority || (priority == o.priority && left < o.left)
    }
}

/// A binary heap of merge candidates, best first: the priority queue of llama.cpp's
/// `llm_tokenizer_spm_session` / `llm_tokenizer_bpe_session` and of `tokenizers`' `Word::merge_all`.
/// Ordering is (priority descending, left index ascending), the tie rule all of them use.
struct MergeQueue {
    private var heap: [MergeCandidate] = []

    init(capacity: Int) { heap.reserveCapacity(capacity) }

    var isEmpty: Bool { heap.isEmpty }

    mutating func removeAll() { heap.removeAll(keepingCapacity: true) }

    mutating func push(_ c: MergeCandidate) {
        heap.append(c)
        heap.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard h[i].precedes(h[parent]) else { break }
                h.swapAt(i, parent)
                i = parent
            }
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        heap.withUnsafeMutableBufferPointer { h in
            h[0] = last
            var i = 0
            let n = h.count
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                var best = l
                if l + 1 < n && h[l + 1].precedes(h[l]) { best = l + 1 }
                guard h[best].precedes(h[i]) else { break }
                h.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}

/// A symbol of the doubly linked list that BPE merging works on: a byte range of the input and,
/// once known, its token id.
struct MergeSymbol {
    var start: Int32
    var length: Int32
    var prev: Int32
    var next: Int32
    var id: Int32
}

extension UnsafeMutableBufferPointer where Element == MergeSymbol {
    /// Merges symbol `left` with its right neighbour into token `result`, unlinking the neighbour.
    func mergeWithNext(_ left: Int32, result: Int32) {
        let r = self[Int(self[Int(left)].next)]
        self[Int(self[Int(left)].next)].length = 0
        self[Int(left)].length += r.length
        self[Int(left)].id = result
        self[Int(left)].next = r.next
        if r.next >= 0 { self[Int(r.next)].prev = left }
    }
}

/// Merges a linked list of symbols with ids by explicit merge ranks, lowest rank first, leftmost
/// among equals. Shared by the SentencePiece ranks rule and byte-level BPE.
func mergeByRank(_ symbols: inout [MergeSymbol], _ merges: PairTable) {
    guard symbols.count > 1 else { return }
    var queue = MergeQueue(capacity: symbols.count)
    symbols.withUnsafeMutableBufferPointer { sym in
        @inline(__always) func tryAdd(_ left: Int32, _ right: Int32) {
            guard left >= 0, right >= 0 else { return }
            if let m = merges.lookup(sym[Int(left)].id, sym[Int(right)].id) {
                queue.push(MergeCandidate(priority: -Double(m.rank), left: left, right: right, check: 0, result: m.result))
            }
        }
        for i in 1..<sym.count { tryAdd(Int32(i - 1), Int32(i)) }
        while let c = queue.pop() {
            let l = sym[Int(c.left)], r = sym[Int(c.right)]
            // Stale when either side was merged since: the pair no longer exists as queued.
            if l.length == 0 || r.length == 0 || l.next != c.right { continue }
            guard let m = merges.lookup(l.id, r.id), m.result == c.result else { continue }
            sym.mergeWithNext(c.left, result: c.result)
            tryAdd(l.prev, c.left)
            tryAdd(c.left, r.next)
        }
    }
}

@inline(__always)
func utf8Length(_ lead: UInt8) -> Int {
    // llama.cpp's `unicode_len_utf8`: continuation or invalid lead bytes count as one.
    if lead < 0x80 { return 1 }
    if lead & 0xE0 == 0xC0 { return 2 }
    if lead & 0xF0 == 0xE0 { return 3 }
    if lead & 0xF8 == 0xF0 { return 4 }
    return 1
}
