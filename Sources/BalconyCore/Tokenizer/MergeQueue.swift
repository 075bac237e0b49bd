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
