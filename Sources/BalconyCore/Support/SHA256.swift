import Foundation

/// SHA-256 (FIPS 180-4) in pure Swift, streaming: feed bytes with `update`, read the digest with
/// `finalize`. Used to verify Hub downloads and to fingerprint model files, so the block function
/// works on raw pointers and keeps the whole round state in registers.
///
/// ```swift
/// var hasher = SHA256()
/// hasher.update(Array("abc".utf8))
/// hasher.finalize().hex   // "ba7816bf…"
/// ```
public struct SHA256: Sendable {
    /// A 32-byte SHA-256 digest.
    public struct Digest: Sendable, Hashable, CustomStringConvertible {
        /// The 32 digest bytes, most significant first.
        public let bytes: [UInt8]

        /// The digest as 64 lowercase hexadecimal characters, as `sha256sum` and hashlib print it.
        public var hex: String {
            let digits = Array("0123456789abcdef".utf8)
            var out = [UInt8]()
            out.reserveCapacity(bytes.count * 2)
            for b in bytes {
                out.append(digits[Int(b >> 4)])
                out.append(digits[Int(b & 0x0f)])
            }
            return String(decoding: out, as: UTF8.self)
        }

        public var description: String { hex }
    }

    /// The chaining value H0…H7. A plain struct of scalars, not a SIMD vector: with SIMD8 the
    /// optimizer kept the working variables in vector lanes and ran 2.5× slower.
    private struct State: Sendable {
        var h0: UInt32 = 0x6a09_e667, h1: UInt32 = 0xbb67_ae85, h2: UInt32 = 0x3c6e_f372, h3: UInt32 = 0xa54f_f53a
        var h4: UInt32 = 0x510e_527f, h5: UInt32 = 0x9b05_688c, h6: UInt32 = 0x1f83_d9ab, h7: UInt32 = 0x5be0_cd19
    }

    private var state = State()
    /// Bytes of an incomplete block carried over between `update` calls (fewer than 64).
    private var pending: [UInt8] = []
    /// Total message length so far, in bytes.
    private var length: UInt64 = 0

    /// A hasher over the empty message.
    public init() {}

    /// Appends bytes to the message.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var n = bytes.count
        length &+= UInt64(n)
        if !pending.isEmpty {
            let take = min(64 - pending.count, n)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: take))
            p += take
            n -= take
            if pending.count < 64 { return }
            let block = pending
            block.withUnsafeBytes { SHA256.compress(&state, blocks: $0.baseAddress!, count: 1) }
            pending.removeAll(keepingCapacity: true)
        }
        let whole = n / 64
        if whole > 0 {
            SHA256.compress(&state, blocks: p, count: whole)
            p += whole * 64
            n -= whole * 64
        }
        if n > 0 {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
        }
    }

    /// Appends the bytes of any contiguous collection (`[UInt8]`, `Data`, a UTF-8 view).
    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if done == nil {
            // Non-contiguous sequences (rare: lazy views, some Data slices) go through a copy.
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The digest of everything passed to `update` so far. The hasher is left as it was, so more
    /// bytes may follow and `finalize` be called again for the longer message.
    public func finalize() -> Digest {
        var copy = self
        // Padding: 0x80, zeros up to 56 mod 64, then the bit length as a big-endian UInt64.
        let bitLength = length &* 8
        var tail: [UInt8] = [0x80]
        let afterMarker = (Int(length % 64) + 1) % 64
        tail.append(contentsOf: repeatElement(0, count: (56 - afterMarker + 64) % 64))
        for shift in stride(from: 56, through: 0, by: -8) {
            tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        copy.update(tail)
        var out = [UInt8]()
        out.reserveCapacity(32)
        let s = copy.state
        for word in [s.h0, s.h1, s.h2, s.h3, s.h4, s.h5, s.h6, s.h7] {
            out.append(contentsOf: [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16),
                                    UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)])
        }
        return Digest(bytes: out)
    }

    /// The digest of one message.
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> Digest where Bytes.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// The digest of a file's contents. The file is memory-mapped, so this reads it once and
    /// copies nothing.
    /// - Throws: `ModelFileError.cannotOpen` when the file cannot be opened or mapped.
    public static func hash(contentsOf url: URL) throws -> Digest {
        let file = try MappedFile(url: url)
        var hasher = SHA256()
        hasher.update(file.bytes)
        return hasher.finalize()
    }

    // MARK: - Block function

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

    /// One round, written so that eight calls with rotated arguments make eight rounds without
    /// the register shuffling of `h = g; g = f; …`.
    @inline(__always)
    private static func round(
        _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
        _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ kw: UInt32
    ) {
        let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ (g ^ (e & (f ^ g))) &+ kw
        let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) | (c & (a | b)))
        d &+= t1
        h = t1 &+ t2
    }

    /// Runs the compression function over `count` consecutive 64-byte blocks. Nearly all hashing
    /// time is spent here: the schedule lives in a stack buffer reused across blocks, the eight
    /// working variables stay in registers, and nothing is bounds-checked or allocated.
    private static func compress(_ state: inout State, blocks: UnsafeRawPointer, count: Int) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            sha256RoundConstants.withUnsafeBufferPointer { k in
                let w = w.baseAddress!, k = k.baseAddress!
                var s = state
                for blockIndex in 0..<count {
                    let block = blocks + blockIndex * 64
                    for i in 0..<16 {
                        w[i] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                    }
                    for i in 16..<64 {
                        let x = w[i - 15], y = w[i - 2]
                        let s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3)
                        let s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >> 10)
                        w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
                    }
                    var a = s.h0, b = s.h1, c = s.h2, d = s.h3, e = s.h4, f = s.h5, g = s.h6, h = s.h7
                    for i in stride(from: 0, to: 64, by: 8) {
                        round(a, b, c, &d, e, f, g, &h, k[i] &+ w[i])
                        round(h, a, b, &c, d, e, f, &g, k[i + 1] &+ w[i + 1])
                        round(g, h, a, &b, c, d, e, &f, k[i + 2] &+ w[i + 2])
                        round(f, g, h, &a, b, c, d, &e, k[i + 3] &+ w[i + 3])
                        round(e, f, g, &h, a, b, c, &d, k[i + 4] &+ w[i + 4])
                        round(d, e, f, &g, h, a, b, &c, k[i + 5] &+ w[i + 5])
                        round(c, d, e, &f, g, h, a, &b, k[i + 6] &+ w[i + 6])
                        round(b, c, d, &e, f, g, h, &a, k[i + 7] &+ w[i + 7])
                    }
                    s.h0 &+= a; s.h1 &+= b; s.h2 &+= c; s.h3 &+= d
                    s.h4 &+= e; s.h5 &+= f; s.h6 &+= g; s.h7 &+= h
                }
                state = s
            }
        }
    }
}

/// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
private let sha256RoundConstants: [UInt32] = [
    0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
    0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
    0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
    0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
    0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
    0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
    0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
    0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
]
