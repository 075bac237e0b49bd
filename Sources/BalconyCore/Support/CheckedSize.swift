/// Sizes computed from numbers a file claims. In release the library builds with `-Ounchecked`,
/// where `a * b` wraps silently instead of trapping, so a crafted file could make a buffer's
/// computed size small while the loops that fill it run to the claimed sizes. Every product or sum
/// of file-claimed sizes goes through these, which return nil on overflow (or a negative operand)
/// so the caller can throw an error naming the file and the field.
enum CheckedSize {
    /// The product of `factors`, or nil when one is negative or the product exceeds `Int.max`.
    static func product(_ factors: Int...) -> Int? { product(factors) }

    static func product<S: Sequence>(_ factors: S) -> Int? where S.Element == Int {
        var result = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (p, overflow) = result.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            result = p
        }
        return result
    }

    /// The sum of `terms`, or nil when one is negative or the sum exceeds `Int.max`.
    static func sum(_ terms: Int...) -> Int? {
        var result = 0
        for t in terms {
            guard t >= 0 else { return nil }
            let (s, overflow) = result.addingReportingOverflow(t)
            if overflow { return nil }
            result = s
        }
        return result
    }

    /// Whether `n` bytes starting at `offset` lie inside a buffer of `count` bytes. Written as
    /// `n <= count - offset` because `offset + n` can wrap past `Int.max` to a small number.
    static func fits(_ n: Int, at offset: Int, in count: Int) -> Bool {
        n >= 0 && offset >= 0 && offset <= count && n <= count - offset
    }
}
