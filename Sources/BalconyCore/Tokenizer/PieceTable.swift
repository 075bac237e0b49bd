/// A read-only hash map from byte strings to token ids, stored flat: all keys in one byte array,
/// open addressing over an `Int32` slot array.
///
/// Why not `[String: Int]`: the merge loops look up the bytes between two positions of the input
/// millions of times per megabyte, and a `String` (or `[UInt8]`) key would allocate on every
/// lookup. Here a lookup hashes the bytes in place and allocates nothing.
struct PieceTable: Sendable {
    private var keyBytes: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var values: [Int32] = []
    /// Entry index + 1, or 0 for an empty slot.
    private var slots: [Int32]
    private let mask: Int

    /// Builds the table. When a key occurs twice the later entry wins (llama.cpp's `token_to_id`
    /// behaves the same way).
    /// The most entries (and key bytes) a table holds: its offsets, lengths, ids and slots are
    /// `Int32`, and in release builds a conversion that does not fit wraps instead of trapping.
    static let maxEntries = 1 << 24
    static let maxKeyBytes = Int(Int32.max)

    /// - Throws: `TokenizerError.corrupt` naming `source` when the vocabulary is beyond the
    ///   table's `Int32` offsets (a damaged or hostile tokenizer file).
    init<S: Sequence>(_ entries: S, source: String) throws where S.Element == (key: [UInt8], value: Int) {
        let list = Array(entries)
        guard list.count <= Self.maxEntries else {
            throw TokenizerError.corrupt(source, "\(list.count) vocabulary entries; Balcony reads at most \(Self.maxEntries)")
        }
        var keyBytes = 0
        for (key, value) in list {
            keyBytes += key.count
            guard keyBytes <= Self.maxKeyBytes, key.count <= Self.maxKeyBytes, value >= 0, value <= Int(Int32.max) else {
                throw TokenizerError.corrupt(source, "the vocabulary's pieces total more than \(Self.maxKeyBytes) bytes, or an id is outside 0...\(Int32.max)")
            }
        }
        var capacity = 16
        while capacity < list.count * 2 { capacity <<= 1 }
        slots = [Int32](repeating: 0, count: capacity)
        mask = capacity - 1
        for (key, value) in list { insert(key, Int32(value)) }
    }

    var count: Int { values.count }

    private mutating func insert(_ key: [UInt8], _ value: Int32) {
        var slot = key.withUnsafeBufferPointer { Self.hash($0) } & mask
        while slots[slot] != 0 {
            let e = Int(slots[slot] - 1)
            if keyEquals(e, key) {
                values[e] = value
                return
            }
            slot = (slot + 1) & mask
        }
        keyStart.append(Int32(keyBytes.count))
        keyLength.append(Int32(key.count))
        keyBytes.append(contentsOf: key)
        values.append(value)
        slots[slot] = Int32(values.count)
    }

    private func keyEquals(_ e: Int, _ key: [UInt8]) -> Bool {
        let n = Int(keyLength[e])
        guard n == key.count else { return false }
        let s = Int(keyStart[e])
        for i in 0..<n where keyBytes[s + i] != key[i] { return false }
        return true
    }

    @inline(__always)
    static func hash(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        // FNV-1a, then a final mix so that the low bits used for the slot depend on every byte.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        h ^= h >> 29
        h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 32
        return Int(truncatingIfNeeded: h)
    }

    /// The id stored for exactly these bytes, or nil.
    func lookup(_ b: UnsafeBufferPointer<UInt8>) -> Int32? {
        var slot = Self.hash(b) & mask
        return keyBytes.withUnsafeBufferPointer { kb in
            while true {
                let s = slots[slot]
                if s == 0 { return nil }
                let e = Int(s - 1)
                let n = Int(keyLength[e])
                if n == b.count {
                    let start = Int(keyStart[e])
                    if n == 0 || memcmpEqual(kb.baseAddress! + start, b.baseAddress!, n) { return values[e] }
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func lookup(_ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBufferPointer { lookup($0) }
    }

    func lookup(_ s: String) -> Int32? {
        var s = s
        return s.withUTF8 { lookup($0) }
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    for i in 0..<n where a[i] != b[i] { return false }
    return true
}

/// A read-only hash map from a pair of token ids to a merge (its rank and the id it produces),
/// open addressing over flat arrays: the pair lookups of BPE merging must not allocate or hash
/// with SipHash.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var ranks: [Int32]
    private var results: [Int32]
    private let mask: Int
    private(set) var count = 0

    init(capacity n: Int) {
        var capacity = 16
        while capacity < n * 2 { capacity <<= 1 }
        keys = [UInt64](repeating: .max, count: capacity)
        ranks = [Int32](repeating: 0, count: capacity)
        results = [Int32](repeating: 0, count: capacity)
        mask = capacity - 1
    }

    @inline(__always)
    private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always)
    private static func slot(_ k: UInt64) -> Int {
        var h = k &* 0x9e37_79b9_7f4a_7c15
        h ^= h >> 31
        return Int(truncatingIfNeeded: h)
    }

    /// Adds a merge unless the pair already has one: the first (lowest-ranked) entry wins, as with
    /// llama.cpp's `bpe_ranks.emplace`. Real vocabularies never list a pair twice.
    mutating func insert(_ a: Int32, _ b: Int32, rank: Int32, result: Int32) {
        let k = Self.key(a, b)
        var s = Self.slot(k) & mask
        while keys[s] != .max {
            if keys[s] == k { return }
            s = (s + 1) & mask
        }
        keys[s] = k
        ranks[s] = rank
        results[s] = result
        count += 1
    }

    /// (rank, result id) of the merge of `a` followed by `b`, if any.
    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> (rank: Int32, result: Int32)? {
        let k = Self.key(a, b)
        var s = Self.slot(k) & mask
        while true {
            let stored = keys[s]
            if stored == k { return (ranks[s], results[s]) }
            if stored == .max { return nil }
            s = (s + 1) & mask
        }
    }
}
