import CKernels

/// A lossless packed copy of an F32 weight matrix for decode (`CKernels/packed_f32.c`): 28 bits
/// a weight instead of 32. Decode reads every weight once per token and is bound by memory
/// bandwidth, so reading 12 % fewer bytes makes it faster. Unpacking is exact, and products give
/// bit for bit the F32 kernel's results: packing changes the speed, never a number.
///
/// Trained and random weights alike sit within a few binary orders of magnitude of their row's
/// largest, so fifteen exponents per row cover all but about one weight in ten thousand; those
/// are kept in full beside the stream and put back in place as each row is decoded.
public final class PackedF32Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// Weights kept in full because their exponent is below their row's window.
    public let exceptionCount: Int
    let descriptor: balcony_packed_f32
    private let groups: UnsafeMutableRawPointer
    private let top: UnsafeMutablePointer<UInt8>
    private let exceptionStart: UnsafeMutablePointer<UInt32>
    private let exceptionColumn: UnsafeMutablePointer<UInt32>
    private let exceptionValue: UnsafeMutablePointer<Float>

    /// Rows whose length is a multiple of this can be packed.
    public static let columnMultiple = 32

    /// More exceptions than one weight in this many makes the packed form no smaller in practice
    /// (each costs 8 bytes), a sign of unusual weights: such matrices stay plain F32.
    static let maximumExceptionShare = 64

    /// Packs `w[rows, cols]`; nil when `cols` is not a multiple of 32 or the weights have too
    /// many exceptions to gain.
    public static func pack(_ w: UnsafePointer<Float>, rows: Int, cols: Int) -> PackedF32Matrix? {
        guard rows > 0, cols > 0, cols % columnMultiple == 0 else { return nil }
        let top = UnsafeMutablePointer<UInt8>.allocate(capacity: rows)
        let start = UnsafeMutablePointer<UInt32>.allocate(capacity: rows + 1)
        parallelChunks(rows, minimumPerThread: 256) { r in
            balcony_packed_f32_scan(w, cols, r.lowerBound, r.upperBound, top, start)
        }
        // Counts to offsets: row r's exceptions begin where row r-1's end.
        var total = 0
        for r in 0..<rows {
            let n = Int(start[r])
            start[r] = UInt32(truncatingIfNeeded: total)
            total += n
        }
        guard total <= rows * cols / maximumExceptionShare else {
            top.deallocate(); start.deallocate()
            return nil
        }
        start[rows] = UInt32(total)
        let groups = UnsafeMutableRawPointer.allocate(byteCount: rows * balcony_packed_f32_row_bytes(cols), alignment: 64)
        let column = UnsafeMutablePointer<UInt32>.allocate(capacity: max(total, 1))
        let value = UnsafeMutablePointer<Float>.allocate(capacity: max(total, 1))
        let g = groups.assumingMemoryBound(to: UInt8.self)
        parallelChunks(rows, minimumPerThread: 256) { r in
            balcony_packed_f32_pack_rows(w, cols, r.lowerBound, r.upperBound, top, start, g, column, value)
        }
        return PackedF32Matrix(rows: rows, cols: cols, exceptions: total, groups: groups, top: top,
                               start: start, column: column, value: value)
    }

    private init(rows: Int, cols: Int, exceptions: Int, groups: UnsafeMutableRawPointer, top: UnsafeMutablePointer<UInt8>,
                 start: UnsafeMutablePointer<UInt32>, column: UnsafeMutablePointer<UInt32>, value: UnsafeMutablePointer<Float>) {
        self.rows = rows
        self.cols = cols
        self.exceptionCount = exceptions
        self.groups = groups
        self.top = top
        self.exceptionStart = start
        self.exceptionColumn = column
        self.exceptionValue = value
        descriptor = balcony_packed_f32(groups: groups.assumingMemoryBound(to: UInt8.self), top: top,
                                        exception_start: start, exception_column: column,
                                        exception_value: value, cols: cols)
    }

    deinit {
        groups.deallocate()
        top.deallocate()
        exceptionStart.deallocate()
        exceptionColumn.deallocate()
        exceptionValue.deallocate()
    }

    /// Bytes a product with every row reads: the groups, each row's exponent and exception range,
    /// and the exceptions.
    public var byteCount: Int { rows * (balcony_packed_f32_row_bytes(cols) + 1 + 4) + exceptionCount * 8 }

    /// `y[t, r] = W[r, :] · x[t, :]` for the `tokens` rows of `x` and `r` in `range` (`y` rows are
    /// `rows` apart): bit for bit the F32 row kernel's results on the unpacked weights.
    func gemv(x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, rows range: Range<Int>) {
        withUnsafePointer(to: descriptor) {
            balcony_packed_f32_gemv($0, x, tokens, y, rows, range.lowerBound, range.upperBound)
        }
    }

    /// `gemv` through the portable C kernel whatever the CPU (tests).
    func gemvPortable(x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, rows range: Range<Int>) {
        withUnsafePointer(to: descriptor) {
            balcony_packed_f32_gemv_portable($0, x, tokens, y, rows, range.lowerBound, range.upperBound)
        }
    }

    /// The matrix back as F32, bit for bit.
    public func unpacked() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * cols) { buffer, n in
            withUnsafePointer(to: descriptor) { balcony_packed_f32_unpack_rows($0, buffer.baseAddress!, 0, rows) }
            n = rows * cols
        }
    }
}

/// When F32 weights get a packed copy for decode.
public enum F32Packing: String, Sendable, CaseIterable {
    /// When the model's F32 matrices are too large for the CPU's cache (at least `autoBytes`) and
    /// the CPU has AVX2. A model that fits in cache decodes faster from plain F32: there the
    /// unpacking, not memory, is the limit.
    case auto
    /// Every F32 matrix whose rows are a multiple of 32 long, on any CPU (tests, measurements).
    case on
    /// Never; decode reads the F32 weights where they are (no extra memory).
    case off

    /// F32 matrix bytes from which `auto` packs: twice the last-level cache a core sees, and at
    /// least 64 MiB (twice the 32 MiB of this machine's and most desktop CPUs' L3) where the
    /// system does not say. A model under twice the cache is partly served from it, where plain
    /// F32 reads faster.
    public static var autoBytes: Int { autoBytes(lastLevelCache: CacheTopology.lastLevelBytes) }

    static func autoBytes(lastLevelCache: Int?) -> Int { max(64 << 20, 2 * (lastLevelCache ?? 0)) }

    /// Whether the CPU has the instructions the packed kernel needs to be fast.
    public static var cpuSupportsFastUnpacking: Bool { balcony_cpu_has_avx2() != 0 }
}
