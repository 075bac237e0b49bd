#include "quants_impl.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "half_convert.h"
#include "simd_x86.h"

/// The k-quants (Q2_K ... Q6_K) and IQ4_XS: 256-value super-blocks multiplied with Q8_K activations,
/// with llama.cpp's arithmetic. Per super-block the dot product is exact integer sums (each
/// sub-block's int8 dot times its integer scale) in eight int32 lanes, scaled in float by the
/// super-block scales; the types with a minimum subtract it through the activations' sums of 16
/// (bsums), so the minimum never touches the inner loop.
///
/// Results are llama.cpp's bit for bit: dequantization is ggml's dequantize_row_*, the Q8_K
/// activations are quantize_row_q8_K_ref's, and the dot products are those of llama.cpp's AVX2
/// kernels (ggml_vec_dot_*_q8_K in ggml-cpu/arch/x86/quants.c): the same integers in the same
/// lanes, the same fused multiply-adds and the same order of float sums. The portable kernels
/// reproduce the AVX2 ones operation for operation, so they give the same bits too.
///
/// So every float operation is written as the operation it must be: fused ones with fmaf or
/// the FMA intrinsics, unfused ones (dequantization's d * q, then - m) kept apart. Clang contracts
/// a * b + c only within one expression under its default, and the pragma turns even that off;
/// the AVX2 dequantizers also keep GCC (which contracts across statements where FMA is enabled)
/// from fusing, with an empty asm between the product and the subtraction.
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define QK_K 256

/// Byte layouts (ggml-common.h), as offsets into a block; F16 fields are read with memcpy, so no
/// block needs any alignment (Q3_K blocks are 110 bytes).
enum {
    Q8K_D = 0, Q8K_QS = 4, Q8K_BSUMS = 260, Q8K_BYTES = 292,              // f32 d, int8 qs[256], int16 bsums[16]
    Q2K_SCALES = 0, Q2K_QS = 16, Q2K_D = 80, Q2K_DMIN = 82, Q2K_BYTES = 84,
    Q3K_HMASK = 0, Q3K_QS = 32, Q3K_SCALES = 96, Q3K_D = 108, Q3K_BYTES = 110,
    Q4K_D = 0, Q4K_DMIN = 2, Q4K_SCALES = 4, Q4K_QS = 16, Q4K_BYTES = 144,
    Q5K_D = 0, Q5K_DMIN = 2, Q5K_SCALES = 4, Q5K_QH = 16, Q5K_QS = 48, Q5K_BYTES = 176,
    Q6K_QL = 0, Q6K_QH = 128, Q6K_SCALES = 192, Q6K_D = 208, Q6K_BYTES = 210,
    IQ4XS_D = 0, IQ4XS_SCALES_H = 2, IQ4XS_SCALES_L = 4, IQ4XS_QS = 8, IQ4XS_BYTES = 136,
};

/// IQ4_NL's 16 non-linear levels (kvalues_iq4nl), which IQ4_XS shares.
static const int8_t iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return balcony_fp16_to_fp32(h);
}

/// Little-endian, as GGUF and every CPU this runs on are.
static inline uint32_t u32_at(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int16_t i16_at(const uint8_t *p) {
    int16_t v;
    memcpy(&v, p, 2);
    return v;
}

/// Q4_K / Q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes (get_scale_min_k4). Bytes
/// 0-3 and 4-7 hold scales and mins 0-3 in their low six bits; scales and mins 4-7 take their low
/// four bits from the nibbles of bytes 8-11 and their top two from the top bits of bytes 0-3 /
/// 4-7. Done four bytes at a time (a word shift moves bits only within each byte once masked):
/// w[0], w[1] are scales 0-3, 4-7 and w[2], w[3] mins 0-3, 4-7, a byte each.
static inline void k4_scale_words(const uint8_t *s, uint32_t w[4]) {
    uint32_t a0 = u32_at(s), a1 = u32_at(s + 4), a2 = u32_at(s + 8);
    w[0] = a0 & 0x3f3f3f3f;
    w[1] = (a2 & 0x0f0f0f0f) | ((a0 >> 2) & 0x30303030);
    w[2] = a1 & 0x3f3f3f3f;
    w[3] = ((a2 >> 4) & 0x0f0f0f0f) | ((a1 >> 2) & 0x30303030);
}

static inline void unpack_k4_scales(const uint8_t *s, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t w[4];
    k4_scale_words(s, w);
    memcpy(sc, w, 8);
    memcpy(mn, w + 2, 8);
}

/// Q3_K: sixteen 6-bit scales in 12 bytes, stored biased by 32. Bytes 0-7 give the low four bits
/// (low nibbles: scales 0-7, high nibbles: scales 8-15); bytes 8-11 give the top two, scale i
/// taking bits 2*(i/4) of byte 8 + i%4. w[k] holds biased scales 4k .. 4k+3, a byte each.
static inline void q3k_scale_words(const uint8_t *s, uint32_t w[4]) {
    uint32_t a0 = u32_at(s), a1 = u32_at(s + 4), a2 = u32_at(s + 8);
    w[0] = (a0 & 0x0f0f0f0f) | ((a2 << 4) & 0x30303030);
    w[1] = (a1 & 0x0f0f0f0f) | ((a2 << 2) & 0x30303030);
    w[2] = ((a0 >> 4) & 0x0f0f0f0f) | (a2 & 0x30303030);
    w[3] = ((a1 >> 4) & 0x0f0f0f0f) | ((a2 >> 2) & 0x30303030);
}

static inline void unpack_q3k_scales(const uint8_t *s, int8_t out[16]) {
    uint32_t w[4];
    q3k_scale_words(s, w);
    uint8_t u[16];
    memcpy(u, w, 16);
    for (int i = 0; i < 16; i++) out[i] = (int8_t)(u[i] - 32);
}

/// IQ4_XS: eight 6-bit scales biased by 32, sub-block ib's low four bits the nibble ib of
/// scales_l (low nibble first), its top two bits pair ib of scales_h. Returned as eight bytes
/// (byte ib = biased scale ib), each field spread to its own byte by halving shifts.
static inline uint64_t iq4xs_scale_bytes(const uint8_t *p) {
    uint64_t lo = u32_at(p + IQ4XS_SCALES_L);
    lo = (lo | (lo << 16)) & 0x0000ffff0000ffffull;   // nibbles 0-3 | 4-7 in 32-bit halves
    lo = (lo | (lo << 8)) & 0x00ff00ff00ff00ffull;    // two nibbles per 16 bits
    lo = (lo | (lo << 4)) & 0x0f0f0f0f0f0f0f0full;    // one per byte
    uint16_t h16;
    memcpy(&h16, p + IQ4XS_SCALES_H, 2);
    uint64_t hi = h16;
    hi = (hi | (hi << 24)) & 0x000000ff000000ffull;   // pairs 0-3 | 4-7 in 32-bit halves
    hi = (hi | (hi << 12)) & 0x000f000f000f000full;   // two pairs per 16 bits
    hi = (hi | (hi << 6)) & 0x0303030303030303ull;    // one per byte
    return lo | (hi << 4);
}

static inline void unpack_iq4xs_scales(const uint8_t *p, int out[8]) {
    uint64_t b = iq4xs_scale_bytes(p);
    for (int ib = 0; ib < 8; ib++) out[ib] = (int)((b >> (8 * ib)) & 0xff) - 32;
}

// ---------------------------------------------------------------------------------------------
// Q8_K activations

/// quantize_row_q8_K_ref: the scale comes from the signed value of largest magnitude (the first
/// one), iscale = -127 / max, so that value lands on -127 and the rest within [-127, 127]; the
/// clamp to 127 guards the other sign's rounding. Rounding is ggml's nearest_int on the rounded
/// product (adding 1.5 * 2^23 leaves round-to-nearest-even of it in the low mantissa bits; the
/// add must not be fused with the product). An all-zero block gets d = 0, zero quants and zero
/// sums (ggml leaves its sums unset there).
static void quantize_q8k(const float *x, size_t cols, uint8_t *out) {
    for (size_t b = 0; b < cols / QK_K; b++, x += QK_K, out += Q8K_BYTES) {
        int8_t *q = (int8_t *)(out + Q8K_QS);
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++) {
            float a = x[j] < 0 ? -x[j] : x[j];
            if (a > amax) { amax = a; max = x[j]; }
        }
        float d = 0;
        if (amax == 0) {
            memset(q, 0, QK_K);
        } else {
            const float iscale = -127.f / max;
            for (int j = 0; j < QK_K; j++) {
                float v = iscale * x[j] + 12582912.f;
                int32_t bits;
                memcpy(&bits, &v, 4);
                int n = (bits & 0x007fffff) - 0x00400000;
                q[j] = (int8_t)(n > 127 ? 127 : n);
            }
            d = 1 / iscale;
        }
        memcpy(out + Q8K_D, &d, 4);
        for (int g = 0; g < 16; g++) {
            int16_t s = 0;
            for (int j = 0; j < 16; j++) s = (int16_t)(s + q[g * 16 + j]);
            memcpy(out + Q8K_BSUMS + 2 * g, &s, 2);
        }
    }
}

int balcony_q_k_quantize_activations(int dot_type, const float *x, size_t cols, void *out) {
    if (dot_type != BALCONY_GGML_Q8_K) return 0;
    quantize_q8k(x, cols, (uint8_t *)out);
    return 1;
}

// ---------------------------------------------------------------------------------------------
// Portable kernels. Each super-block is first decoded into its 256 integer values (byte loops
// that compilers vectorize, NEON included). The dot products then reproduce the AVX2 kernels
// below operation for operation: the same eight int32 lanes (lane l of each 32-value chunk
// holds the scaled products of its values 4l .. 4l+3, as maddubs + madd leave them), converted
// and accumulated per lane with fused multiply-adds, and summed in the same order. So the
// portable results are the AVX2 results (and llama.cpp's x86 results) bit for bit.

static inline float q8k_d(const uint8_t *xb) {
    float d;
    memcpy(&d, xb + Q8K_D, 4);
    return d;
}

/// Adds one super-block's scaled products to the eight lanes: chunk i (values 32i .. 32i+31)
/// puts values 4l .. 4l+3 into lane l, times scale[2i] for lanes 0-3 (the chunk's first 16
/// values) and scale[2i + 1] for lanes 4-7. Types with 32-value sub-blocks repeat each scale.
static void add_lanes(const int8_t *v, const int8_t *x, const int scale[16], int32_t lane[8]) {
    // In AVX2's stages, each over contiguous data (which vectorizes): int16 sums of pairs
    // (maddubs), int32 sums of pairs of those times the scale of their 16 values (madd), and
    // the lanes over the eight chunks. Integer sums are exact, so only the grouping matters.
    int16_t pair[128];
    int32_t quad[64];
    for (int k = 0; k < 128; k++) pair[k] = (int16_t)(v[2 * k] * x[2 * k] + v[2 * k + 1] * x[2 * k + 1]);
    for (int m = 0; m < 64; m++) quad[m] = scale[m / 4] * (pair[2 * m] + pair[2 * m + 1]);
    for (int i = 0; i < 8; i++)
        for (int l = 0; l < 8; l++) lane[l] += quad[8 * i + l];
}

/// acc[l] += d * lane[l], fused, per lane (_mm256_fmadd_ps on _mm256_cvtepi32_ps).
static inline void fma_lanes(float acc[8], float d, const int32_t lane[8]) {
    for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
}

/// The sum of the activations' bsums g and g + 1 times m, for each pair: madd's lanes.
static inline int32_t bsum_pair(const uint8_t *xb, int g, int m0, int m1) {
    return m0 * i16_at(xb + Q8K_BSUMS + 2 * g) + m1 * i16_at(xb + Q8K_BSUMS + 2 * g + 2);
}

/// Q2_K and Q3_K: value 128n + 32j + l is bits 2j, 2j+1 of qs[32n + l] (Q3_K: plus bit 4n + j of
/// hmask[l] as bit 2, the value being that 3-bit number minus 4).
static void decode_q2k(const uint8_t *p, int8_t v[QK_K]) {
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) v[128 * n + 32 * j + l] = (int8_t)((p[Q2K_QS + 32 * n + l] >> (2 * j)) & 3);
}

static void decode_q3k(const uint8_t *p, int8_t v[QK_K]) {
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                int lo = (p[Q3K_QS + 32 * n + l] >> (2 * j)) & 3, hi = (p[Q3K_HMASK + l] >> (4 * n + j)) & 1;
                v[128 * n + 32 * j + l] = (int8_t)((lo | (hi << 2)) - 4);
            }
}

/// Q4_K and Q5_K: each 32 bytes of qs hold sub-blocks 2j (low nibbles) and 2j+1 (high nibbles);
/// Q5_K's fifth bit of value l of sub-block k is bit k of qh[l].
static void decode_q45k(const uint8_t *qs, const uint8_t *qh, int8_t v[QK_K]) {
    for (int j = 0; j < 4; j++)
        for (int l = 0; l < 32; l++) {
            v[64 * j + l] = (int8_t)(qs[32 * j + l] & 15);
            v[64 * j + 32 + l] = (int8_t)(qs[32 * j + l] >> 4);
        }
    if (qh)
        for (int k = 0; k < 8; k++)
            for (int l = 0; l < 32; l++) v[32 * k + l] = (int8_t)(v[32 * k + l] | (((qh[l] >> k) & 1) << 4));
}

/// Q6_K: per 128 values n, ql[64n + l] holds values l (low nibble) and 64 + l (high), ql[64n +
/// 32 + l] values 32 + l and 96 + l; bit pairs 0, 2, 4, 6 of qh[32n + l] are the top bits of
/// values l, 32 + l, 64 + l, 96 + l. Decoded biased (0-63): the value is that minus 32.
static void decode_q6k_biased(const uint8_t *p, int8_t v[QK_K]) {
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = p + Q6K_QL + 64 * n, *qh = p + Q6K_QH + 32 * n;
        int8_t *o = v + 128 * n;
        for (int l = 0; l < 32; l++) {
            o[l] = (int8_t)((ql[l] & 15) | ((qh[l] & 3) << 4));
            o[32 + l] = (int8_t)((ql[32 + l] & 15) | (((qh[l] >> 2) & 3) << 4));
            o[64 + l] = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
            o[96 + l] = (int8_t)((ql[32 + l] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
    }
}

/// IQ4_XS: sub-block ib is the 16 bytes qs[16ib ...], low nibbles values 0-15, high nibbles
/// 16-31, each an index into the IQ4_NL table.
static void decode_iq4xs(const uint8_t *p, int8_t v[QK_K]) {
    for (int ib = 0; ib < 8; ib++)
        for (int l = 0; l < 16; l++) {
            uint8_t b = p[IQ4XS_QS + 16 * ib + l];
            v[32 * ib + l] = iq4nl_values[b & 15];
            v[32 * ib + 16 + l] = iq4nl_values[b >> 4];
        }
}

/// One super-block into a row's accumulators: acc (eight lanes) and, for Q4_K and Q5_K, accm
/// (the minimum's term: four lanes for Q4_K, lane 0 for Q5_K), as the AVX2 kernels keep them.
typedef void (*block_dot_fn)(const uint8_t *p, const uint8_t *xb, float acc[8], float accm[4]);

/// Q2_K: sub-block k (16 values) has scale scales[k] & 15 and min scales[k] >> 4; the mins'
/// lanes go into acc before the values'.
static void dot_q2k(const uint8_t *p, const uint8_t *xb, float acc[8], float accm[4]) {
    (void)accm;
    const int8_t *x = (const int8_t *)(xb + Q8K_QS);
    const uint8_t *s = p + Q2K_SCALES;
    int8_t v[QK_K];
    decode_q2k(p, v);
    int sc[16];
    int32_t lane[8] = {0}, mins[8];
    for (int k = 0; k < 16; k++) sc[k] = s[k] & 15;
    for (int l = 0; l < 8; l++) mins[l] = bsum_pair(xb, 2 * l, s[2 * l] >> 4, s[2 * l + 1] >> 4);
    add_lanes(v, x, sc, lane);
    float dx = q8k_d(xb);
    fma_lanes(acc, -half_at(p + Q2K_DMIN) * dx, mins);
    fma_lanes(acc, half_at(p + Q2K_D) * dx, lane);
}

/// Q3_K: signed 6-bit scales per 16 values, no min.
static void dot_q3k(const uint8_t *p, const uint8_t *xb, float acc[8], float accm[4]) {
    (void)accm;
    int8_t v[QK_K], s8[16];
    decode_q3k(p, v);
    unpack_q3k_scales(p + Q3K_SCALES, s8);
    int sc[16];
    int32_t lane[8] = {0};
    for (int k = 0; k < 16; k++) sc[k] = s8[k];
    add_lanes(v, (const int8_t *)(xb + Q8K_QS), sc, lane);
    fma_lanes(acc, half_at(p + Q3K_D) * q8k_d(xb), lane);
}

/// Q4_K and Q5_K: 6-bit scales and mins per 32 values. A min meets the sum of its sub-block's
/// two bsums; madd pairs those sums two sub-blocks to a lane (four lanes).
static void dot_q45k(const uint8_t *p, const uint8_t *xb, float acc[8], float accm[4], int five) {
    int8_t v[QK_K];
    decode_q45k(p + (five ? Q5K_QS : Q4K_QS), five ? p + Q5K_QH : NULL, v);
    uint8_t sc8[8], mn[8];
    unpack_k4_scales(p + Q4K_SCALES, sc8, mn);
    int sc[16];
    int32_t lane[8] = {0}, mins[4];
    for (int k = 0; k < 16; k++) sc[k] = sc8[k / 2];
    for (int l = 0; l < 4; l++) {
        int32_t s0 = bsum_pair(xb, 4 * l, 1, 1), s1 = bsum_pair(xb, 4 * l + 2, 1, 1);
        mins[l] = mn[2 * l] * s0 + mn[2 * l + 1] * s1;
    }
    add_lanes(v, (const int8_t *)(xb + Q8K_QS), sc, lane);
    float dx = q8k_d(xb);
    float neg_dmin = -half_at(p + Q4K_DMIN) * dx;
    if (five) {
        accm[0] = fmaf(neg_dmin, (float)(mins[0] + mins[1] + mins[2] + mins[3]), accm[0]);
    } else {
        for (int l = 0; l < 4; l++) accm[l] = fmaf(neg_dmin, (float)mins[l], accm[l]);
    }
    fma_lanes(acc, half_at(p + Q4K_D) * dx, lane);
}

static void dot_q4k(const uint8_t *p, const uint8_t *xb, float acc[8], float accm[4]) { dot_q45k(p, xb, acc, accm, 0); }
static void dot_q5k(const uint8_t *p, const uint8_t *xb, float acc[8], float accm[4]) { dot_q45k(p, xb, acc, accm, 1); }

/// Q6_K: signed 8-bit scales per 16 values. The lanes multiply the biased values (0-63); the bias
/// comes off as 32 * scale * bsum, madd's pairs of sub-blocks to a lane.
static void dot_q6k(const uint8_t *p, const uint8_t *xb, float acc[8], float accm[4]) {
    (void)accm;
    const int8_t *s8 = (const int8_t *)(p + Q6K_SCALES);
    int8_t v[QK_K];
    decode_q6k_biased(p, v);
    int sc[16];
    int32_t lane[8] = {0};
    for (int k = 0; k < 16; k++) sc[k] = s8[k];
    add_lanes(v, (const int8_t *)(xb + Q8K_QS), sc, lane);
    for (int l = 0; l < 8; l++) lane[l] -= 32 * bsum_pair(xb, 2 * l, sc[2 * l], sc[2 * l + 1]);
    fma_lanes(acc, half_at(p + Q6K_D) * q8k_d(xb), lane);
}

/// IQ4_XS: 6-bit scales per 32 values, table values.
static void dot_iq4xs(const uint8_t *p, const uint8_t *xb, float acc[8], float accm[4]) {
    (void)accm;
    int8_t v[QK_K];
    decode_iq4xs(p, v);
    int ls[8], sc[16];
    int32_t lane[8] = {0};
    unpack_iq4xs_scales(p, ls);
    for (int k = 0; k < 16; k++) sc[k] = ls[k / 2];
    add_lanes(v, (const int8_t *)(xb + Q8K_QS), sc, lane);
    fma_lanes(acc, half_at(p + IQ4XS_D) * q8k_d(xb), lane);
}

/// The row loop; the row's value is acc summed as balcony_hsum8 sums (halves, pairs, the last
/// two), plus accm's lanes summed the same way.
static void gemv_portable(block_dot_fn dot, size_t bytes, const uint8_t *w, size_t cols, const uint8_t *xq, float *y,
                          size_t r0, size_t r1, int with_accm) {
    size_t nb = cols / QK_K;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * nb * bytes;
        float acc[8] = {0}, accm[4] = {0};
        for (size_t b = 0; b < nb; b++) dot(p + b * bytes, xq + b * Q8K_BYTES, acc, accm);
        float h[4];
        for (int l = 0; l < 4; l++) h[l] = acc[l] + acc[l + 4];
        float s = (h[0] + h[2]) + (h[1] + h[3]);
        if (with_accm) s += (accm[0] + accm[2]) + (accm[1] + accm[3]);
        y[r] = s;
    }
}

// Portable dequantization: ggml-quants.c's dequantize_row_*, one super-block each, from the same
// decoded values: y = (d * scale) * q, rounded, then - dmin * min, rounded. The product and the
// subtraction are separate statements so that no compiler fuses them.

static void deq_q2k(const uint8_t *p, float *y) {
    float d = half_at(p + Q2K_D), dmin = half_at(p + Q2K_DMIN);
    int8_t v[QK_K];
    decode_q2k(p, v);
    for (int k = 0; k < 16; k++) {
        uint8_t s = p[Q2K_SCALES + k];
        float dl = d * (float)(s & 15), ml = dmin * (float)(s >> 4);
        for (int l = 0; l < 16; l++) {
            float t = dl * (float)v[16 * k + l];
            y[16 * k + l] = t - ml;
        }
    }
}

static void deq_q3k(const uint8_t *p, float *y) {
    float d = half_at(p + Q3K_D);
    int8_t v[QK_K], sc[16];
    decode_q3k(p, v);
    unpack_q3k_scales(p + Q3K_SCALES, sc);
    for (int k = 0; k < 16; k++) {
        float dl = d * (float)sc[k];
        for (int l = 0; l < 16; l++) y[16 * k + l] = dl * (float)v[16 * k + l];
    }
}

static void deq_q45k(const uint8_t *p, float *y, int five) {
    float d = half_at(p + Q4K_D), dmin = half_at(p + Q4K_DMIN);
    int8_t v[QK_K];
    decode_q45k(p + (five ? Q5K_QS : Q4K_QS), five ? p + Q5K_QH : NULL, v);
    uint8_t sc[8], mn[8];
    unpack_k4_scales(p + Q4K_SCALES, sc, mn);
    for (int k = 0; k < 8; k++) {
        float dl = d * (float)sc[k], ml = dmin * (float)mn[k];
        for (int l = 0; l < 32; l++) {
            float t = dl * (float)v[32 * k + l];
            y[32 * k + l] = t - ml;
        }
    }
}

static void deq_q4k(const uint8_t *p, float *y) { deq_q45k(p, y, 0); }
static void deq_q5k(const uint8_t *p, float *y) { deq_q45k(p, y, 1); }

static void deq_q6k(const uint8_t *p, float *y) {
    float d = half_at(p + Q6K_D);
    const int8_t *sc = (const int8_t *)(p + Q6K_SCALES);
    int8_t v[QK_K];
    decode_q6k_biased(p, v);
    for (int k = 0; k < 16; k++) {
        float dl = d * (float)sc[k];
        for (int l = 0; l < 16; l++) y[16 * k + l] = dl * (float)(v[16 * k + l] - 32);
    }
}

static void deq_iq4xs(const uint8_t *p, float *y) {
    float d = half_at(p + IQ4XS_D);
    int8_t v[QK_K];
    decode_iq4xs(p, v);
    int ls[8];
    unpack_iq4xs_scales(p, ls);
    for (int ib = 0; ib < 8; ib++) {
        float dl = d * (float)ls[ib];
        for (int l = 0; l < 32; l++) y[32 * ib + l] = dl * (float)v[32 * ib + l];
    }
}

typedef void (*block_deq_fn)(const uint8_t *p, float *y);

static void dequantize_rows(block_deq_fn deq, size_t bytes, const uint8_t *w, size_t cols, float *out, size_t r0,
                            size_t r1) {
    size_t nb = cols / QK_K;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * nb * bytes;
        float *o = out + (r - r0) * cols;
        for (size_t b = 0; b < nb; b++) deq(p + b * bytes, o + b * QK_K);
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2

#ifdef BALCONY_X86
#define TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

/// How far ahead of the super-block being multiplied to prefetch, every cache line of it. The rows
/// are walked one after another as a single stream, so the prefetch runs on across row ends.
/// From memory (a 38 MB Q4_K matrix, one thread, Zen 3) no prefetch gave about 11 GB/s, 1 KiB
/// ahead 12.6, 2 KiB 13.6, 3 KiB 14.5; 4 KiB was no better.
#define PREFETCH_BYTES 3072

TARGET_AVX2 static inline float half_avx2(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/// Sixteen int16 copies of 16-bit element k of each 128-bit lane (k in 0-7), for madd with
/// per-sub-block scales held as eight int16 per lane.
TARGET_AVX2 static inline __m256i pick16(__m256i v, int k) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(0x0100 + 0x0202 * k)));
}

/// Element a in the low lane and element b in the high lane: the scales of the two 16-value
/// sub-blocks that one 32-byte vector of a 16-value-sub-block type spans.
TARGET_AVX2 static inline __m256i pick16_pair(__m256i v, int a, int b) {
    __m128i lo = _mm_set1_epi16((short)(0x0100 + 0x0202 * a)), hi = _mm_set1_epi16((short)(0x0100 + 0x0202 * b));
    return _mm256_shuffle_epi8(v, _mm256_set_m128i(hi, lo));
}

/// Eight bytes widened to int16, repeated in both 128-bit lanes.
TARGET_AVX2 static inline __m256i widen8_twice_u8(uint64_t b) { return _mm256_cvtepu8_epi16(_mm_set1_epi64x((long long)b)); }

TARGET_AVX2 static inline __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
TARGET_AVX2 static inline __m128i load16(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/// Each super-block adds d_w * d_x * (its scaled integer sums, eight int32 lanes) into the eight
/// float lanes of acc; the minimum's term (-dmin_w * d_x * mins against bsums) goes where llama.cpp's
/// AVX2 kernel puts it: into acc first (Q2_K), four lanes of accm (Q4_K) or lane 0 of accm (Q5_K).
/// The lanes hold the same integers as llama.cpp's and are summed in the same order, so the
/// results are llama.cpp's x86 results bit for bit.
///
/// The loops over the sub-blocks of a super-block are unrolled (so the shuffle masks are
/// constants); clang does it by itself at -O3, GCC at -O2 only when asked.

TARGET_AVX2 static inline __m256 dx_times(const uint8_t *xb, float dw) {
    float dx;
    memcpy(&dx, xb + Q8K_D, 4);
    return _mm256_set1_ps(dw * dx);
}

/// Q2_K: 32 bytes of qs hold four vectors of 2-bit values (shifts 0, 2, 4, 6); the vector for
/// shift j of half n spans sub-blocks 8n + 2j (low lane) and 8n + 2j + 1 (high lane).
TARGET_AVX2 static inline void block_q2k_avx2(const uint8_t *p, const uint8_t *xb, __m256 *acc, __m256 *accm) {
    (void)accm;
    const int8_t *x = (const int8_t *)(xb + Q8K_QS);
    const __m256i m3 = _mm256_set1_epi8(3);
    __m128i packed = load16(p + Q2K_SCALES);
    __m128i sc8 = _mm_and_si128(packed, _mm_set1_epi8(15));
    __m128i mn8 = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(15));
    __m256i mins = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mn8), load32(xb + Q8K_BSUMS));
    *acc = _mm256_fmadd_ps(dx_times(xb, -half_avx2(p + Q2K_DMIN)), _mm256_cvtepi32_ps(mins), *acc);
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int n = 0; n < 2; n++) {
        __m256i sc = _mm256_cvtepu8_epi16(n ? _mm_unpackhi_epi64(sc8, sc8) : _mm_unpacklo_epi64(sc8, sc8));
        __m256i q = load32(p + Q2K_QS + 32 * n);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
            __m256i prod = _mm256_maddubs_epi16(v, load32(x + 128 * n + 32 * j));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(prod, pick16_pair(sc, 2 * j, 2 * j + 1)));
        }
    }
    *acc = _mm256_fmadd_ps(dx_times(xb, half_avx2(p + Q2K_D)), _mm256_cvtepi32_ps(sumi), *acc);
}

/// Q3_K: maddubs takes the two low bits (unsigned) and, separately, 4 where the high bit is clear;
/// the difference of the two int16 pair sums is the signed value's.
TARGET_AVX2 static inline void block_q3k_avx2(const uint8_t *p, const uint8_t *xb, __m256 *acc, __m256 *accm) {
    (void)accm;
    const int8_t *x = (const int8_t *)(xb + Q8K_QS);
    const __m256i m3 = _mm256_set1_epi8(3);
    uint32_t w[4];
    q3k_scale_words(p + Q3K_SCALES, w);
    __m128i s8 = _mm_sub_epi8(_mm_setr_epi32((int)w[0], (int)w[1], (int)w[2], (int)w[3]), _mm_set1_epi8(32));
    __m256i h = load32(p + Q3K_HMASK);
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int n = 0; n < 2; n++) {
        __m256i sc = _mm256_cvtepi8_epi16(n ? _mm_unpackhi_epi64(s8, s8) : _mm_unpacklo_epi64(s8, s8));
        __m256i q = load32(p + Q3K_QS + 32 * n);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            // 4 where bit g of the hmask byte is clear: the bit, inverted and masked, moved to bit 2
            // (it stays within its byte).
            const int g = 4 * n + j;
            __m256i four = _mm256_andnot_si256(h, _mm256_set1_epi8((char)(1 << g)));
            four = g >= 2 ? _mm256_srli_epi16(four, g - 2) : _mm256_slli_epi16(four, 2 - g);
            __m256i xv = load32(x + 128 * n + 32 * j);
            __m256i low = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3), xv);
            __m256i prod = _mm256_sub_epi16(low, _mm256_maddubs_epi16(four, xv));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(prod, pick16_pair(sc, 2 * j, 2 * j + 1)));
        }
    }
    *acc = _mm256_fmadd_ps(dx_times(xb, half_avx2(p + Q3K_D)), _mm256_cvtepi32_ps(sumi), *acc);
}

/// Q4_K and Q5_K share this: 32 bytes of nibbles are sub-blocks 2j (low) and 2j+1 (high), which
/// line up with 64 consecutive activations; Q5_K ors in the fifth bit from qh (bits 2j, 2j+1).
/// The mins meet the bsums summed in pairs (a sum of 32 per sub-block), four int32 lanes.
TARGET_AVX2 static inline void block_q45k_avx2(const uint8_t *p, const uint8_t *xb, __m256 *acc, __m256 *accm, int five) {
    const int8_t *x = (const int8_t *)(xb + Q8K_QS);
    const __m256i m15 = _mm256_set1_epi8(15);
    // k4_scale_words on the four 32-bit lanes of the block's first 16 bytes (d, dmin and the
    // scale words a0 a1 a2): lanes [a0, a2, a1, a2 >> 4] and [a0, a0, a1, a1] >> 2 give the
    // low and high parts of [scales 0-3, scales 4-7, mins 0-3, mins 4-7].
    __m128i head = load16(p);
    __m128i lowp = _mm_srlv_epi32(_mm_shuffle_epi32(head, _MM_SHUFFLE(3, 2, 3, 1)), _mm_setr_epi32(0, 0, 0, 4));
    lowp = _mm_and_si128(lowp, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    __m128i highp = _mm_srli_epi32(_mm_shuffle_epi32(head, _MM_SHUFFLE(2, 2, 1, 1)), 2);
    highp = _mm_and_si128(highp, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    __m128i scmn = _mm_or_si128(lowp, highp);                                    // 8 scales, 8 mins
    __m256i sc = _mm256_cvtepu8_epi16(_mm_unpacklo_epi64(scmn, scmn));           // scales 0-7 in each lane
    __m256i bs = load32(xb + Q8K_BSUMS);
    __m128i sums32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    __m128i mins = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_unpackhi_epi64(scmn, scmn)), sums32);
    // d_w * d_x and -dmin_w * d_x from one conversion of the two halves.
    float dx;
    memcpy(&dx, xb + Q8K_D, 4);
    __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)u32_at(p + Q4K_D))), _mm_set1_ps(dx));
    __m128 neg_dmin = _mm_xor_ps(_mm_shuffle_ps(dd, dd, 0x55), _mm_set1_ps(-0.0f));
    if (five) {
        // Q5_K: one int32 (the lanes' sum) and a scalar accumulator.
        __m128i t = _mm_add_epi32(mins, _mm_unpackhi_epi64(mins, mins));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
        __m128 m = _mm_fmadd_ss(neg_dmin, _mm_cvtepi32_ps(t), _mm256_castps256_ps128(*accm));
        *accm = _mm256_castps128_ps256(_mm_blend_ps(_mm_setzero_ps(), m, 1));
    } else {
        __m128 m = _mm_fmadd_ps(neg_dmin, _mm_cvtepi32_ps(mins), _mm256_castps256_ps128(*accm));
        *accm = _mm256_castps128_ps256(m);
    }
    const uint8_t *qs = p + (five ? Q5K_QS : Q4K_QS);
    __m256i qh = five ? load32(p + Q5K_QH) : _mm256_setzero_si256();
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i q = load32(qs + 32 * j);
        __m256i lo = _mm256_and_si256(q, m15), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
        if (five) {
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(qh, 4), _mm256_set1_epi8(16)));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(qh, 3), _mm256_set1_epi8(16)));
            qh = _mm256_srli_epi16(qh, 2);
        }
        __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(x + 64 * j)), pick16(sc, 2 * j));
        __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(x + 64 * j + 32)), pick16(sc, 2 * j + 1));
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
    }
    *acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), *acc);
}

TARGET_AVX2 static inline void block_q4k_avx2(const uint8_t *p, const uint8_t *xb, __m256 *acc, __m256 *accm) {
    block_q45k_avx2(p, xb, acc, accm, 0);
}

TARGET_AVX2 static inline void block_q5k_avx2(const uint8_t *p, const uint8_t *xb, __m256 *acc, __m256 *accm) {
    block_q45k_avx2(p, xb, acc, accm, 1);
}

/// Q6_K: the value plus 32 is an unsigned 6-bit number for maddubs; 32 * scale * bsum comes off.
/// Per half n, ql's two 32-byte vectors give values 0-31 / 32-63 (low nibbles) and 64-95 /
/// 96-127 (high nibbles), qh's bit pairs 0, 2, 4, 6 their top bits.
TARGET_AVX2 static inline void block_q6k_avx2(const uint8_t *p, const uint8_t *xb, __m256 *acc, __m256 *accm) {
    (void)accm;
    const int8_t *x = (const int8_t *)(xb + Q8K_QS);
    const __m256i m15 = _mm256_set1_epi8(15), m48 = _mm256_set1_epi8(48);
    __m128i s8 = load16(p + Q6K_SCALES);
    __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(s8), load32(xb + Q8K_BSUMS)), 5);
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int n = 0; n < 2; n++) {
        __m256i sc = _mm256_cvtepi8_epi16(n ? _mm_unpackhi_epi64(s8, s8) : _mm_unpacklo_epi64(s8, s8));
        __m256i l0 = load32(p + Q6K_QL + 64 * n), l1 = load32(p + Q6K_QL + 64 * n + 32);
        __m256i h = load32(p + Q6K_QH + 32 * n);
        __m256i u[4] = {
            _mm256_or_si256(_mm256_and_si256(l0, m15), _mm256_and_si256(_mm256_slli_epi16(h, 4), m48)),
            _mm256_or_si256(_mm256_and_si256(l1, m15), _mm256_and_si256(_mm256_slli_epi16(h, 2), m48)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m15), _mm256_and_si256(h, m48)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m15), _mm256_and_si256(_mm256_srli_epi16(h, 2), m48)),
        };
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            __m256i prod = _mm256_maddubs_epi16(u[m], load32(x + 128 * n + 32 * m));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(prod, pick16_pair(sc, 2 * m, 2 * m + 1)));
        }
    }
    sumi = _mm256_sub_epi32(sumi, offset);
    *acc = _mm256_fmadd_ps(dx_times(xb, half_avx2(p + Q6K_D)), _mm256_cvtepi32_ps(sumi), *acc);
}

/// IQ4_XS: a sub-block's 16 bytes are loaded into both lanes, the low lane keeps the low nibbles
/// (values 0-15) and the high lane the high ones (16-31), so the 32 table values line up with 32
/// consecutive activations; the table lookup is pshufb. Weights are signed, so maddubs takes
/// |w| and the activations with w's sign.
TARGET_AVX2 static inline void block_iq4xs_avx2(const uint8_t *p, const uint8_t *xb, __m256 *acc, __m256 *accm) {
    (void)accm;
    const int8_t *x = (const int8_t *)(xb + Q8K_QS);
    const __m256i table = _mm256_broadcastsi128_si256(load16(iq4nl_values));
    const __m256i m15 = _mm256_set1_epi8(15), lane_shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    __m256i sc = _mm256_sub_epi16(widen8_twice_u8(iq4xs_scale_bytes(p)), _mm256_set1_epi16(32));
    __m256i sumi = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int ib = 0; ib < 8; ib++) {
        __m256i q = _mm256_broadcastsi128_si256(load16(p + IQ4XS_QS + 16 * ib));
        __m256i w = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srlv_epi32(q, lane_shift), m15));
        __m256i prod = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(load32(x + 32 * ib), w));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(prod, pick16(sc, ib)));
    }
    *acc = _mm256_fmadd_ps(dx_times(xb, half_avx2(p + IQ4XS_D)), _mm256_cvtepi32_ps(sumi), *acc);
}

typedef void (*block_avx2_fn)(const uint8_t *p, const uint8_t *xb, __m256 *acc, __m256 *accm);

/// The row loop, inlined into one kernel per type below with its block kernel (a constant, so
/// the compiler inlines that too). Every row gets the same operations, so its result never
/// depends on the row range.
TARGET_AVX2 __attribute__((always_inline)) static inline void gemv_rows_avx2(block_avx2_fn block, size_t bytes,
                                                                      int with_accm, const uint8_t *w,
                                                                      size_t cols, const uint8_t *xq, float *y,
                                                                      size_t r0, size_t r1) {
    size_t nb = cols / QK_K;
    const uint8_t *p = w + r0 * nb * bytes;
    for (size_t r = r0; r < r1; r++) {
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        for (size_t b = 0; b < nb; b++, p += bytes) {
            // Written out here: in a helper of its own, GCC took the helper for side-effect free and dropped it.
            for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(p + PREFETCH_BYTES + o), _MM_HINT_T0);
            block(p, xq + b * Q8K_BYTES, &acc, &accm);
        }
        float s = balcony_hsum8(acc);
        if (with_accm) {
            __m128 m = _mm256_castps256_ps128(accm);
            m = _mm_add_ps(m, _mm_movehl_ps(m, m));
            m = _mm_add_ss(m, _mm_movehdup_ps(m));
            s += _mm_cvtss_f32(m);
        }
        y[r] = s;
    }
}

typedef void (*gemv_avx2_fn)(const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1);

TARGET_AVX2 static void gemv_q2k_avx2(const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1) {
    gemv_rows_avx2(block_q2k_avx2, Q2K_BYTES, 0, w, cols, xq, y, r0, r1);
}
TARGET_AVX2 static void gemv_q3k_avx2(const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1) {
    gemv_rows_avx2(block_q3k_avx2, Q3K_BYTES, 0, w, cols, xq, y, r0, r1);
}
TARGET_AVX2 static void gemv_q4k_avx2(const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1) {
    gemv_rows_avx2(block_q4k_avx2, Q4K_BYTES, 1, w, cols, xq, y, r0, r1);
}
TARGET_AVX2 static void gemv_q5k_avx2(const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1) {
    gemv_rows_avx2(block_q5k_avx2, Q5K_BYTES, 1, w, cols, xq, y, r0, r1);
}
TARGET_AVX2 static void gemv_q6k_avx2(const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1) {
    gemv_rows_avx2(block_q6k_avx2, Q6K_BYTES, 0, w, cols, xq, y, r0, r1);
}
TARGET_AVX2 static void gemv_iq4xs_avx2(const uint8_t *w, size_t cols, const uint8_t *xq, float *y, size_t r0, size_t r1) {
    gemv_rows_avx2(block_iq4xs_avx2, IQ4XS_BYTES, 0, w, cols, xq, y, r0, r1);
}

/// Dequantization, eight values at a time: dl * q, rounded, then - ml, rounded, as ggml does. The
/// empty asm keeps the product a separate value, so no compiler fuses it into the subtraction.
TARGET_AVX2 static inline void put8(float *o, __m256i q32, float dl, float ml, int has_min) {
    __m256 t = _mm256_mul_ps(_mm256_set1_ps(dl), _mm256_cvtepi32_ps(q32));
    if (has_min) {
        __asm__("" : "+x"(t));
        t = _mm256_sub_ps(t, _mm256_set1_ps(ml));
    }
    _mm256_storeu_ps(o, t);
}

/// Sixteen values (bytes, signed or not) of one sub-block scale.
TARGET_AVX2 static inline void put16(float *o, __m128i q, int is_signed, float dl, float ml, int has_min) {
    __m128i q_hi = _mm_srli_si128(q, 8);
    put8(o, is_signed ? _mm256_cvtepi8_epi32(q) : _mm256_cvtepu8_epi32(q), dl, ml, has_min);
    put8(o + 8, is_signed ? _mm256_cvtepi8_epi32(q_hi) : _mm256_cvtepu8_epi32(q_hi), dl, ml, has_min);
}

TARGET_AVX2 static inline __m128i lo128(__m256i v) { return _mm256_castsi256_si128(v); }
TARGET_AVX2 static inline __m128i hi128(__m256i v) { return _mm256_extracti128_si256(v, 1); }

TARGET_AVX2 static void deq_q2k_avx2(const uint8_t *p, float *y) {
    float d = half_avx2(p + Q2K_D), dmin = half_avx2(p + Q2K_DMIN);
    float dl[16], ml[16];
    for (int k = 0; k < 16; k++) {
        dl[k] = d * (float)(p[Q2K_SCALES + k] & 15);
        ml[k] = dmin * (float)(p[Q2K_SCALES + k] >> 4);
    }
    for (int n = 0; n < 2; n++) {
        __m256i q = load32(p + Q2K_QS + 32 * n);
        for (int j = 0; j < 4; j++, q = _mm256_srli_epi16(q, 2)) {
            __m256i v = _mm256_and_si256(q, _mm256_set1_epi8(3));
            int k = 8 * n + 2 * j;
            put16(y + 16 * k, lo128(v), 0, dl[k], ml[k], 1);
            put16(y + 16 * k + 16, hi128(v), 0, dl[k + 1], ml[k + 1], 1);
        }
    }
}

TARGET_AVX2 static void deq_q3k_avx2(const uint8_t *p, float *y) {
    float d = half_avx2(p + Q3K_D);
    int8_t s[16];
    unpack_q3k_scales(p + Q3K_SCALES, s);
    float dl[16];
    for (int k = 0; k < 16; k++) dl[k] = d * (float)s[k];
    __m256i h = load32(p + Q3K_HMASK);
    for (int n = 0; n < 2; n++) {
        __m256i q = load32(p + Q3K_QS + 32 * n);
        for (int j = 0; j < 4; j++) {
            __m256i u = _mm256_or_si256(_mm256_and_si256(q, _mm256_set1_epi8(3)),
                                        _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(1)), 2));
            __m256i v = _mm256_sub_epi8(u, _mm256_set1_epi8(4));
            int k = 8 * n + 2 * j;
            put16(y + 16 * k, lo128(v), 1, dl[k], 0, 0);
            put16(y + 16 * k + 16, hi128(v), 1, dl[k + 1], 0, 0);
            q = _mm256_srli_epi16(q, 2);
            h = _mm256_srli_epi16(h, 1);
        }
    }
}

TARGET_AVX2 static inline void deq_q45k_avx2(const uint8_t *p, float *y, int five) {
    float d = half_avx2(p + Q4K_D), dmin = half_avx2(p + Q4K_DMIN);
    uint8_t sc[8], mn[8];
    unpack_k4_scales(p + Q4K_SCALES, sc, mn);
    const uint8_t *qs = p + (five ? Q5K_QS : Q4K_QS);
    __m256i qh = five ? load32(p + Q5K_QH) : _mm256_setzero_si256();
    const __m256i m15 = _mm256_set1_epi8(15);
    for (int j = 0; j < 4; j++) {
        __m256i q = load32(qs + 32 * j);
        __m256i v[2] = {_mm256_and_si256(q, m15), _mm256_and_si256(_mm256_srli_epi16(q, 4), m15)};
        if (five) {
            v[0] = _mm256_or_si256(v[0], _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(1)), 4));
            v[1] = _mm256_or_si256(v[1], _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(2)), 3));
            qh = _mm256_srli_epi16(qh, 2);
        }
        for (int h = 0; h < 2; h++) {
            int k = 2 * j + h;
            float dl = d * (float)sc[k], ml = dmin * (float)mn[k];
            put16(y + 32 * k, lo128(v[h]), 0, dl, ml, 1);
            put16(y + 32 * k + 16, hi128(v[h]), 0, dl, ml, 1);
        }
    }
}

TARGET_AVX2 static void deq_q4k_avx2(const uint8_t *p, float *y) { deq_q45k_avx2(p, y, 0); }
TARGET_AVX2 static void deq_q5k_avx2(const uint8_t *p, float *y) { deq_q45k_avx2(p, y, 1); }

TARGET_AVX2 static void deq_q6k_avx2(const uint8_t *p, float *y) {
    float d = half_avx2(p + Q6K_D);
    const int8_t *sc = (const int8_t *)(p + Q6K_SCALES);
    const __m256i m15 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3), b32 = _mm256_set1_epi8(32);
    for (int n = 0; n < 2; n++) {
        __m256i l0 = load32(p + Q6K_QL + 64 * n), l1 = load32(p + Q6K_QL + 64 * n + 32);
        __m256i h = load32(p + Q6K_QH + 32 * n);
        __m256i lows[4] = {_mm256_and_si256(l0, m15), _mm256_and_si256(l1, m15),
                           _mm256_and_si256(_mm256_srli_epi16(l0, 4), m15),
                           _mm256_and_si256(_mm256_srli_epi16(l1, 4), m15)};
        for (int m = 0; m < 4; m++) {
            __m256i hi = _mm256_slli_epi16(_mm256_and_si256(h, m3), 4);
            h = _mm256_srli_epi16(h, 2);
            __m256i v = _mm256_sub_epi8(_mm256_or_si256(lows[m], hi), b32);
            int k = 8 * n + 2 * m;
            put16(y + 16 * k, lo128(v), 1, d * (float)sc[k], 0, 0);
            put16(y + 16 * k + 16, hi128(v), 1, d * (float)sc[k + 1], 0, 0);
        }
    }
}

TARGET_AVX2 static void deq_iq4xs_avx2(const uint8_t *p, float *y) {
    float d = half_avx2(p + IQ4XS_D);
    const __m256i table = _mm256_broadcastsi128_si256(load16(iq4nl_values));
    const __m256i m15 = _mm256_set1_epi8(15), lane_shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    int ls[8];
    unpack_iq4xs_scales(p, ls);
    for (int ib = 0; ib < 8; ib++) {
        __m256i q = _mm256_broadcastsi128_si256(load16(p + IQ4XS_QS + 16 * ib));
        __m256i w = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srlv_epi32(q, lane_shift), m15));
        float dl = d * (float)ls[ib];
        put16(y + 32 * ib, lo128(w), 1, dl, 0, 0);
        put16(y + 32 * ib + 16, hi128(w), 1, dl, 0, 0);
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// Dispatch

/// The six types in one order: block bytes and portable kernels, and (on x86) the AVX2 kernels.
typedef struct {
    size_t bytes;
    block_dot_fn dot;
    block_deq_fn deq;
    int with_accm;
} k_type;

static const k_type k_types[6] = {
    {Q2K_BYTES, dot_q2k, deq_q2k, 0}, {Q3K_BYTES, dot_q3k, deq_q3k, 0},       {Q4K_BYTES, dot_q4k, deq_q4k, 1},
    {Q5K_BYTES, dot_q5k, deq_q5k, 1}, {Q6K_BYTES, dot_q6k, deq_q6k, 0}, {IQ4XS_BYTES, dot_iq4xs, deq_iq4xs, 0},
};

#ifdef BALCONY_X86
static const gemv_avx2_fn k_gemv_avx2[6] = {gemv_q2k_avx2, gemv_q3k_avx2, gemv_q4k_avx2,
                                            gemv_q5k_avx2, gemv_q6k_avx2, gemv_iq4xs_avx2};
static const block_deq_fn k_deq_avx2[6] = {deq_q2k_avx2, deq_q3k_avx2, deq_q4k_avx2,
                                           deq_q5k_avx2, deq_q6k_avx2, deq_iq4xs_avx2};
#endif

static int k_index(int type) {
    switch (type) {
    case BALCONY_GGML_Q2_K: return 0;
    case BALCONY_GGML_Q3_K: return 1;
    case BALCONY_GGML_Q4_K: return 2;
    case BALCONY_GGML_Q5_K: return 3;
    case BALCONY_GGML_Q6_K: return 4;
    case BALCONY_GGML_IQ4_XS: return 5;
    default: return -1;
    }
}

int balcony_q_k_gemv(int type, const void *w, size_t cols, const void *xq, float *y, size_t r0, size_t r1,
                     int portable) {
    int i = k_index(type);
    if (i < 0) return 0;
#ifdef BALCONY_X86
    if (!portable && balcony_has_avx2()) {
        k_gemv_avx2[i]((const uint8_t *)w, cols, (const uint8_t *)xq, y, r0, r1);
        return 1;
    }
#endif
    (void)portable;
    gemv_portable(k_types[i].dot, k_types[i].bytes, (const uint8_t *)w, cols, (const uint8_t *)xq, y, r0, r1,
                  k_types[i].with_accm);
    return 1;
}

int balcony_q_k_dequantize(int type, const void *w, size_t cols, float *out, size_t r0, size_t r1, int portable) {
    int i = k_index(type);
    if (i < 0) return 0;
    block_deq_fn deq = k_types[i].deq;
#ifdef BALCONY_X86
    if (!portable && balcony_has_avx2()) deq = k_deq_avx2[i];
#endif
    (void)portable;
    dequantize_rows(deq, k_types[i].bytes, (const uint8_t *)w, cols, out, r0, r1);
    return 1;
}
