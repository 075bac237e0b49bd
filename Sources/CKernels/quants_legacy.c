#include "quants_impl.h"

#include <math.h>
#include <string.h>

#include "half_convert.h"
#include "simd_x86.h"

/// The "legacy" GGML block types: 32 values a block, one f16 scale (and for Q4_1 / Q5_1 an f16
/// minimum), quantized values in ggml-common.h's layouts:
///
///   Q4_0   (18 bytes)  d, qs[16]           value j = d * (nibble_j - 8)
///   Q4_1   (20 bytes)  d, m, qs[16]        value j = d * nibble_j + m
///   Q5_0   (22 bytes)  d, qh[4], qs[16]    value j = d * ((nibble_j | bit_j << 4) - 16)
///   Q5_1   (24 bytes)  d, m, qh[4], qs[16] value j = d * (nibble_j | bit_j << 4) + m
///   Q8_0   (34 bytes)  d, qs[32]           value j = d * qs[j]
///   IQ4_NL (18 bytes)  d, qs[16]           value j = d * iq4nl_values[nibble_j]
///
/// where nibble_j is the low nibble of qs[j] for j < 16 and the high nibble of qs[j - 16] after,
/// and bit_j is bit j of the little-endian 32-bit qh.
///
/// A gemv multiplies these blocks by activations quantized once per token to Q8_0 (f16 d, int8
/// qs[32]) or, for the types with a minimum, Q8_1 (f16 d, f16 s = d * sum(qs), int8 qs[32]); each
/// block's integer dot product is exact, then scaled by the two blocks' scales, as llama.cpp's
/// ggml_vec_dot_*_q8_* do. The minimum's share of a Q4_1 / Q5_1 block is m * s, which is why Q8_1
/// carries s.

enum { QK = 32 };

/// IQ4_NL's 16 levels (ggml-common.h's kvalues_iq4nl): a non-uniform grid, denser near zero.
static const int8_t iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

#define ALWAYS_INLINE inline __attribute__((always_inline))

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/// Half to float for the portable path. On 64-bit ARM (what runs it in practice) the hardware
/// converts (fcvt); the bit-twiddling conversion's branches in the block loop kept clang from
/// vectorizing the blocks' integer dot products there. Both are exact.
static inline float half_to_float(uint16_t h) {
#if defined(__aarch64__)
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
#else
    return balcony_fp16_to_fp32(h);
#endif
}

/// Where a weight type's fields sit in its block.
typedef struct {
    size_t bytes;  // block size
    int min;       // offset of the f16 minimum (Q4_1, Q5_1), or 0 for none
    int qh;        // offset of the four fifth-bit bytes (Q5_0, Q5_1), or 0 for none
    int qs;        // offset of the quantized values
} layout;

static ALWAYS_INLINE layout layout_of(int type) {
    switch (type) {
    case BALCONY_GGML_Q4_0: return (layout){18, 0, 0, 2};
    case BALCONY_GGML_Q4_1: return (layout){20, 2, 0, 4};
    case BALCONY_GGML_Q5_0: return (layout){22, 0, 2, 6};
    case BALCONY_GGML_Q5_1: return (layout){24, 2, 4, 8};
    case BALCONY_GGML_Q8_0: return (layout){34, 0, 0, 2};
    default: return (layout){18, 0, 0, 2}; // IQ4_NL
    }
}

static int is_legacy(int type) {
    return type == BALCONY_GGML_Q4_0 || type == BALCONY_GGML_Q4_1 || type == BALCONY_GGML_Q5_0 ||
           type == BALCONY_GGML_Q5_1 || type == BALCONY_GGML_Q8_0 || type == BALCONY_GGML_IQ4_NL;
}

/// The activation block a type multiplies: Q8_1 (36 bytes, int8 at offset 4) for the types with a
/// minimum, else Q8_0 (34 bytes, int8 at offset 2).
static ALWAYS_INLINE int takes_q8_1(int type) { return type == BALCONY_GGML_Q4_1 || type == BALCONY_GGML_Q5_1; }

// MARK: - Activations

/// Quantizes one block of 32 like llama.cpp's x86 quantize_row_q8_0 / q8_1 (the AVX/AVX2 path, the
/// one x86 builds run), which is not its reference quantize_row_q8_0_ref in two ways: the
/// multiplier is 127 / amax rather than 1 / (amax / 127), and values are rounded to nearest even
/// (vroundps) rather than half away from zero (roundf). Both change a q by one now and then. The
/// same results come from quantize_block_q8_avx2, so activations never depend on the machine.
/// Returns sum(q); *d is the unrounded scale amax / 127.
static int quantize_block_q8(const float *x, int8_t *q, float *d) {
    float amax = 0;
    for (int j = 0; j < QK; j++) {
        float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    *d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    uint32_t sum = 0;
    for (int j = 0; j < QK; j++) {
        float r = rintf(x[j] * id);
        // |r| <= 127 for any block of ordinary numbers. Otherwise vcvtps2dq's rules: NaN and values
        // beyond int32 become INT32_MIN (all 32 do when amax < 127 / FLT_MAX makes id infinite),
        // the packs saturate to int8, and llama.cpp's sum is of the int32s, wrapping.
        int32_t i = (r >= -2147483648.0f && r < 2147483648.0f) ? (int32_t)r : INT32_MIN;
        q[j] = (int8_t)(i < -128 ? -128 : i > 127 ? 127 : i);
        sum += (uint32_t)i;
    }
    return (int32_t)sum;
}

// MARK: - Portable C

/// A block's 32 values as the integers its dot product multiplies (Q4_0 -8...7, Q4_1 0...15,
/// Q5_0 -16...15, Q5_1 0...31, Q8_0 int8, IQ4_NL the table's levels), in element order. Inlined
/// with a constant type, the switch folds away.
static ALWAYS_INLINE void unpack_block(int type, const uint8_t *p, int8_t q[QK]) {
    layout L = layout_of(type);
    const uint8_t *qs = p + L.qs;
    if (type == BALCONY_GGML_Q8_0) {
        memcpy(q, qs, QK);
        return;
    }
    uint32_t qh = 0;
    if (L.qh) memcpy(&qh, p + L.qh, 4);
    for (int j = 0; j < QK / 2; j++) {
        int lo = qs[j] & 0x0F, hi = qs[j] >> 4;
        switch (type) {
        case BALCONY_GGML_Q4_0: lo -= 8; hi -= 8; break;
        case BALCONY_GGML_Q5_0:
            lo = (lo | (int)((qh >> j) & 1) << 4) - 16;
            hi = (hi | (int)((qh >> (j + 16)) & 1) << 4) - 16;
            break;
        case BALCONY_GGML_Q5_1:
            lo |= (int)((qh >> j) & 1) << 4;
            hi |= (int)((qh >> (j + 16)) & 1) << 4;
            break;
        case BALCONY_GGML_IQ4_NL: lo = iq4nl_values[lo]; hi = iq4nl_values[hi]; break;
        default: break; // Q4_1: the nibbles as they are
        }
        q[j] = (int8_t)lo;
        q[j + QK / 2] = (int8_t)hi;
    }
}

/// Per row: per block an exact int32 dot product, scaled by (weight d * activation d); the
/// minimum's share (m * s) summed apart and added at the end, as llama.cpp's x86 kernels do.
static ALWAYS_INLINE void gemv_rows_portable(int type, const uint8_t *w, size_t cols, const uint8_t *xq, float *y,
                                            size_t r0, size_t r1) {
    layout L = layout_of(type);
    size_t blocks = cols / QK, rowBytes = blocks * L.bytes;
    size_t xBytes = takes_q8_1(type) ? 36 : 34, xOff = xBytes - QK;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * rowBytes;
        float acc = 0, accMin = 0;
        for (size_t b = 0; b < blocks; b++, p += L.bytes) {
            const uint8_t *xb = xq + b * xBytes;
            int8_t q[QK];
            unpack_block(type, p, q);
            const int8_t *x = (const int8_t *)(xb + xOff);
            int32_t s = 0;
            for (int j = 0; j < QK; j++) s += (int32_t)q[j] * (int32_t)x[j];
            float d = half_to_float(load_u16(p)) * half_to_float(load_u16(xb));
            acc += d * (float)s;
            if (L.min) accMin += half_to_float(load_u16(p + L.min)) * half_to_float(load_u16(xb + 2));
        }
        y[r] = acc + accMin;
    }
}

/// Every value is d * q (+ m). q has at most 8 significant bits and d (a half) 11, so d * q is
/// exact in F32 and the result is ggml's whether or not the compiler fuses the multiply-add.
static ALWAYS_INLINE void dequantize_rows_portable(int type, const uint8_t *w, size_t cols, float *out, size_t r0,
                                                  size_t r1) {
    layout L = layout_of(type);
    size_t blocks = cols / QK;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * blocks * L.bytes;
        float *o = out + (r - r0) * cols;
        for (size_t b = 0; b < blocks; b++, p += L.bytes, o += QK) {
            int8_t q[QK];
            unpack_block(type, p, q);
            float d = half_to_float(load_u16(p));
            float m = L.min ? half_to_float(load_u16(p + L.min)) : 0.0f;
            for (int j = 0; j < QK; j++) o[j] = L.min ? d * (float)q[j] + m : d * (float)q[j];
        }
    }
}

// One specialization per type (the always-inlined bodies above with a constant type).
static void gemv_portable(int type, const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1) {
    switch (type) {
    case BALCONY_GGML_Q4_0: gemv_rows_portable(BALCONY_GGML_Q4_0, w, cols, xq, y, r0, r1); break;
    case BALCONY_GGML_Q4_1: gemv_rows_portable(BALCONY_GGML_Q4_1, w, cols, xq, y, r0, r1); break;
    case BALCONY_GGML_Q5_0: gemv_rows_portable(BALCONY_GGML_Q5_0, w, cols, xq, y, r0, r1); break;
    case BALCONY_GGML_Q5_1: gemv_rows_portable(BALCONY_GGML_Q5_1, w, cols, xq, y, r0, r1); break;
    case BALCONY_GGML_Q8_0: gemv_rows_portable(BALCONY_GGML_Q8_0, w, cols, xq, y, r0, r1); break;
    default: gemv_rows_portable(BALCONY_GGML_IQ4_NL, w, cols, xq, y, r0, r1); break;
    }
}

static void dequantize_portable(int type, const uint8_t *w, size_t cols, float *out, size_t r0, size_t r1) {
    switch (type) {
    case BALCONY_GGML_Q4_0: dequantize_rows_portable(BALCONY_GGML_Q4_0, w, cols, out, r0, r1); break;
    case BALCONY_GGML_Q4_1: dequantize_rows_portable(BALCONY_GGML_Q4_1, w, cols, out, r0, r1); break;
    case BALCONY_GGML_Q5_0: dequantize_rows_portable(BALCONY_GGML_Q5_0, w, cols, out, r0, r1); break;
    case BALCONY_GGML_Q5_1: dequantize_rows_portable(BALCONY_GGML_Q5_1, w, cols, out, r0, r1); break;
    case BALCONY_GGML_Q8_0: dequantize_rows_portable(BALCONY_GGML_Q8_0, w, cols, out, r0, r1); break;
    default: dequantize_rows_portable(BALCONY_GGML_IQ4_NL, w, cols, out, r0, r1); break;
    }
}

// MARK: - AVX2

#ifdef BALCONY_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))

/// The 32 nibbles of qs[16] as bytes in element order: low nibbles (elements 0...15) in the low
/// half, high nibbles (16...31) in the high half.
AVX2 static inline __m256i nibbles_avx2(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/// Q5's fifth bits: byte j is 0xFF when bit j of qh[4] is set, else 0. Each byte picks qh's byte
/// j / 8 (pshufb within each 128-bit half, where the broadcast put all four) and tests bit j % 8.
AVX2 static inline __m256i fifth_bits_avx2(const uint8_t *qh) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_broadcastd_epi32(_mm_loadu_si32(qh)), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/// The block's 32 values as bytes, the same integers unpack_block gives: signed for Q4_0, Q5_0,
/// Q8_0 and IQ4_NL, unsigned (0...31) for Q4_1 and Q5_1.
AVX2 static ALWAYS_INLINE __m256i weights_avx2(int type, const uint8_t *p) {
    layout L = layout_of(type);
    if (type == BALCONY_GGML_Q8_0) return _mm256_loadu_si256((const __m256i *)(p + L.qs));
    __m256i n = nibbles_avx2(p + L.qs);
    switch (type) {
    case BALCONY_GGML_Q4_0: return _mm256_sub_epi8(n, _mm256_set1_epi8(8));
    case BALCONY_GGML_Q4_1: return n;
    // Q5_0: a clear fifth bit means value - 16 < 0, i.e. the nibble with 0xF0 above it as int8.
    case BALCONY_GGML_Q5_0: return _mm256_or_si256(n, _mm256_andnot_si256(fifth_bits_avx2(p + L.qh), _mm256_set1_epi8((char)0xF0)));
    case BALCONY_GGML_Q5_1: return _mm256_or_si256(n, _mm256_and_si256(fifth_bits_avx2(p + L.qh), _mm256_set1_epi8(0x10)));
    default: {
        // IQ4_NL: pshufb looks each nibble up in the 16 levels (the same table in both halves).
        __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)iq4nl_values));
        return _mm256_shuffle_epi8(table, n);
    }
    }
}

/// A block's integer dot product with 32 activations x, as eight int32 partial sums in floats.
/// maddubs multiplies unsigned bytes by signed ones (adjacent pairs summed to int16, which never
/// saturates here: |x| <= 127), so each type goes in its cheapest unsigned form, n being the
/// nibbles and h the fifth bits:
///   Q4_1, Q5_1      n, n | 16 h are unsigned already
///   Q4_0            (n - 8) . x = n . x - 8 . x
///   Q5_0            (n + 16 h - 16) . x = n . x - (16 (1 - h)) . x
///   Q8_0, IQ4_NL    w . x = |w| . (x with w's sign)    (|w| <= 128)
/// The integer result is the same in every form.
AVX2 static ALWAYS_INLINE __m256 block_dot_avx2(int type, const uint8_t *p, __m256i x) {
    layout L = layout_of(type);
    __m256i pairs;
    switch (type) {
    case BALCONY_GGML_Q4_0:
        pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles_avx2(p + L.qs), x),
                                 _mm256_maddubs_epi16(_mm256_set1_epi8(8), x));
        break;
    case BALCONY_GGML_Q5_0: {
        __m256i low = _mm256_andnot_si256(fifth_bits_avx2(p + L.qh), _mm256_set1_epi8(16));
        pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles_avx2(p + L.qs), x), _mm256_maddubs_epi16(low, x));
        break;
    }
    case BALCONY_GGML_Q4_1: case BALCONY_GGML_Q5_1:
        pairs = _mm256_maddubs_epi16(weights_avx2(type, p), x);
        break;
    default: {
        __m256i w = weights_avx2(type, p);
        pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
        break;
    }
    }
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

/// The scales of two blocks at once: lanes 0 and 1 of the result are h[0] * h[2] and h[1] * h[3]
/// for the four halves a, b, c, d (h = a, b, c, d): the same floats as converting and multiplying
/// them one by one. Gathered with integer moves and widened by one vcvtph2ps, the two scales cost
/// under half the vector instructions; per block they were the largest part of a 4-bit block's
/// work (about 10 % faster overall).
AVX2 static ALWAYS_INLINE __m128 half_products2(const uint8_t *a, const uint8_t *b, const uint8_t *c, const uint8_t *d) {
    uint64_t h = (uint64_t)load_u16(a) | (uint64_t)load_u16(b) << 16 | (uint64_t)load_u16(c) << 32 |
                 (uint64_t)load_u16(d) << 48;
    __m128 f = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
    return _mm_mul_ps(f, _mm_movehl_ps(f, f));
}

/// acc + (m0 * s0, m1 * s1) in lanes 0 and 1 (lanes 2, 3 collect nothing of use); a NULL m1 and
/// s1 (the last block of an odd count) add 0 * 0 to lane 1.
AVX2 static ALWAYS_INLINE __m128 add_min_products2(const uint8_t *m0, const uint8_t *m1, const uint8_t *s0,
                                                   const uint8_t *s1, __m128 acc) {
    uint64_t h = (uint64_t)load_u16(m0) | (uint64_t)load_u16(s0) << 32;
    if (m1) h |= (uint64_t)load_u16(m1) << 16 | (uint64_t)load_u16(s1) << 48;
    __m128 f = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
    return _mm_fmadd_ps(f, _mm_movehl_ps(f, f), acc);
}

/// How far ahead to prefetch, as q8_0.c: rows are short, so walking them one after another as a
/// single stream and prefetching ahead beats waiting for the hardware prefetcher in each row.
#define PREFETCH_BYTES 1024

/// One row at a time, blocks in pairs: two accumulators (even and odd blocks) to overlap the FMA
/// latency, and the minimum's share (m * s, Q4_1 and Q5_1) in two lanes of its own, added at the
/// end as llama.cpp adds its `summs`. Every row gets the same sequence of operations, so its
/// result never depends on which rows are computed with it.
AVX2 static ALWAYS_INLINE void gemv_rows_avx2(int type, const uint8_t *w, size_t cols, const uint8_t *xq, float *y,
                                              size_t r0, size_t r1) {
    layout L = layout_of(type);
    size_t blocks = cols / QK, rowBytes = blocks * L.bytes;
    size_t xBytes = takes_q8_1(type) ? 36 : 34, xOff = xBytes - QK;
    const __m256i lane1 = _mm256_set1_epi32(1);
    const uint8_t *p = w + r0 * rowBytes;
    for (size_t r = r0; r < r1; r++, p += rowBytes) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m128 mins = _mm_setzero_ps();
        size_t b = 0;
        for (; b + 2 <= blocks; b += 2) {
            const uint8_t *w0 = p + b * L.bytes, *w1 = w0 + L.bytes;
            const uint8_t *x0 = xq + b * xBytes, *x1 = x0 + xBytes;
            _mm_prefetch((const char *)(w0 + PREFETCH_BYTES), _MM_HINT_T0);
            __m256 d = _mm256_castps128_ps256(half_products2(w0, w1, x0, x1));
            __m256 dot0 = block_dot_avx2(type, w0, _mm256_loadu_si256((const __m256i *)(x0 + xOff)));
            __m256 dot1 = block_dot_avx2(type, w1, _mm256_loadu_si256((const __m256i *)(x1 + xOff)));
            a0 = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm256_castps256_ps128(d)), dot0, a0);
            a1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(d, lane1), dot1, a1);
            if (L.min) mins = add_min_products2(w0 + L.min, w1 + L.min, x0 + 2, x1 + 2, mins);
        }
        if (b < blocks) {
            const uint8_t *w0 = p + b * L.bytes, *x0 = xq + b * xBytes;
            float d = _cvtsh_ss(load_u16(w0)) * _cvtsh_ss(load_u16(x0));
            __m256 dot0 = block_dot_avx2(type, w0, _mm256_loadu_si256((const __m256i *)(x0 + xOff)));
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(d), dot0, a0);
            if (L.min) mins = add_min_products2(w0 + L.min, NULL, x0 + 2, NULL, mins);
        }
        float sum = balcony_hsum8(_mm256_add_ps(a0, a1));
        if (L.min) sum += _mm_cvtss_f32(mins) + _mm_cvtss_f32(_mm_movehdup_ps(mins));
        y[r] = sum;
    }
}

/// Dequantization as the portable path: d * q (+ m) with d * q exact, so the same bits (fused or
/// not).
AVX2 static ALWAYS_INLINE void dequantize_rows_avx2(int type, const uint8_t *w, size_t cols, float *out, size_t r0,
                                                    size_t r1) {
    layout L = layout_of(type);
    size_t blocks = cols / QK;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * blocks * L.bytes;
        float *o = out + (r - r0) * cols;
        for (size_t b = 0; b < blocks; b++, p += L.bytes, o += QK) {
            __m256i q = weights_avx2(type, p);
            __m256 d = _mm256_set1_ps(_cvtsh_ss(load_u16(p)));
            __m256 m = _mm256_set1_ps(L.min ? _cvtsh_ss(load_u16(p + L.min)) : 0.0f);
            __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
            for (int k = 0; k < 4; k++) {
                __m128i eight = k & 1 ? _mm_srli_si128(halves[k >> 1], 8) : halves[k >> 1];
                __m256 v = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(eight)));
                if (L.min) v = _mm256_add_ps(v, m);
                _mm256_storeu_ps(o + 8 * k, v);
            }
        }
    }
}

AVX2 static void gemv_avx2(int type, const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1) {
    switch (type) {
    case BALCONY_GGML_Q4_0: gemv_rows_avx2(BALCONY_GGML_Q4_0, w, cols, xq, y, r0, r1); break;
    case BALCONY_GGML_Q4_1: gemv_rows_avx2(BALCONY_GGML_Q4_1, w, cols, xq, y, r0, r1); break;
    case BALCONY_GGML_Q5_0: gemv_rows_avx2(BALCONY_GGML_Q5_0, w, cols, xq, y, r0, r1); break;
    case BALCONY_GGML_Q5_1: gemv_rows_avx2(BALCONY_GGML_Q5_1, w, cols, xq, y, r0, r1); break;
    case BALCONY_GGML_Q8_0: gemv_rows_avx2(BALCONY_GGML_Q8_0, w, cols, xq, y, r0, r1); break;
    default: gemv_rows_avx2(BALCONY_GGML_IQ4_NL, w, cols, xq, y, r0, r1); break;
    }
}

AVX2 static void dequantize_avx2(int type, const uint8_t *w, size_t cols, float *out, size_t r0, size_t r1) {
    switch (type) {
    case BALCONY_GGML_Q4_0: dequantize_rows_avx2(BALCONY_GGML_Q4_0, w, cols, out, r0, r1); break;
    case BALCONY_GGML_Q4_1: dequantize_rows_avx2(BALCONY_GGML_Q4_1, w, cols, out, r0, r1); break;
    case BALCONY_GGML_Q5_0: dequantize_rows_avx2(BALCONY_GGML_Q5_0, w, cols, out, r0, r1); break;
    case BALCONY_GGML_Q5_1: dequantize_rows_avx2(BALCONY_GGML_Q5_1, w, cols, out, r0, r1); break;
    case BALCONY_GGML_Q8_0: dequantize_rows_avx2(BALCONY_GGML_Q8_0, w, cols, out, r0, r1); break;
    default: dequantize_rows_avx2(BALCONY_GGML_IQ4_NL, w, cols, out, r0, r1); break;
    }
}

/// quantize_block_q8 with eight lanes: the same operations on each value (max of |x|, the same
/// division, multiply, round to nearest even, convert), so the same bytes. The packs narrow int32
/// to int8 with saturation and interleave the four vectors' 128-bit halves; the permute puts the
/// 32 bytes back in order.
AVX2 static int quantize_block_q8_avx2(const float *x, int8_t *q, float *d) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float max = _mm_cvtss_f32(m4);
    *d = max / 127.0f;
    __m256 id = _mm256_set1_ps(max != 0.0f ? 127.0f / max : 0.0f);
    __m256i i[4];
    for (int k = 0; k < 4; k++)
        i[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i sum8 = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum8), _mm256_extracti128_si256(sum8, 1));
    s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
    __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
    bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, bytes);
    return _mm_cvtsi128_si32(s4);
}
#endif

// MARK: - Entry points

/// One block of activations, by the AVX2 quantizer where the CPU has it (the same bytes).
static int quantize_block(const float *x, int8_t *q, float *d, int avx2) {
#ifdef BALCONY_X86
    if (avx2) return quantize_block_q8_avx2(x, q, d);
#endif
    (void)avx2;
    return quantize_block_q8(x, q, d);
}

int balcony_q_legacy_gemv(int type, const void *w, size_t cols, const void *xq, float *y, size_t row_begin,
                          size_t row_end, int portable) {
    if (!is_legacy(type)) return 0;
#ifdef BALCONY_X86
    if (!portable && balcony_has_avx2()) {
        gemv_avx2(type, (const uint8_t *)w, cols, (const uint8_t *)xq, y, row_begin, row_end);
        return 1;
    }
#endif
    (void)portable;
    gemv_portable(type, (const uint8_t *)w, cols, (const uint8_t *)xq, y, row_begin, row_end);
    return 1;
}

int balcony_q_legacy_dequantize(int type, const void *w, size_t cols, float *out, size_t row_begin, size_t row_end,
                                int portable) {
    if (!is_legacy(type)) return 0;
#ifdef BALCONY_X86
    if (!portable && balcony_has_avx2()) {
        dequantize_avx2(type, (const uint8_t *)w, cols, out, row_begin, row_end);
        return 1;
    }
#endif
    (void)portable;
    dequantize_portable(type, (const uint8_t *)w, cols, out, row_begin, row_end);
    return 1;
}

int balcony_q_legacy_quantize_activations(int dot_type, const float *x, size_t cols, void *out) {
    if (dot_type != BALCONY_GGML_Q8_0 && dot_type != BALCONY_GGML_Q8_1) return 0;
    uint8_t *o = (uint8_t *)out;
#ifdef BALCONY_X86
    int avx2 = balcony_has_avx2();
#else
    int avx2 = 0;
#endif
    for (size_t b = 0; b < cols / QK; b++) {
        int8_t *q = (int8_t *)(o + (dot_type == BALCONY_GGML_Q8_0 ? 2 : 4));
        float d;
        int sum = quantize_block(x + b * QK, q, &d, avx2);
        if (dot_type == BALCONY_GGML_Q8_0) {
            uint16_t hd = balcony_fp32_to_fp16(d);
            memcpy(o, &hd, 2);
            o += 34;
        } else {
            // s is made from the unrounded d, as llama.cpp does (d * sum, then to f16).
            uint16_t hd = balcony_fp32_to_fp16(d), hs = balcony_fp32_to_fp16(d * (float)sum);
            memcpy(o, &hd, 2);
            memcpy(o + 2, &hs, 2);
            o += 36;
        }
    }
    return 1;
}
