#include "ckernels.h"
#include <stdint.h>
#include <string.h>
#include <math.h>

#include "half_convert.h"
#include "simd_x86.h"

#define QK 32
#define BLOCK_BYTES 34

/// Activations quantized like GGML's Q8_0 reference: d = max|x| / 127, q = round(x / d).
void balcony_q8_0_quantize_activations(const float *x, size_t cols, int8_t *q, float *d) {
    for (size_t b = 0; b < cols / QK; b++) {
        const float *xb = x + b * QK;
        float amax = 0;
        for (int j = 0; j < QK; j++) { float a = xb[j] < 0 ? -xb[j] : xb[j]; if (a > amax) amax = a; }
        float db = amax / 127.0f;
        float id = db != 0 ? 1.0f / db : 0.0f;
        d[b] = db;
        for (int j = 0; j < QK; j++) q[b * QK + j] = (int8_t)roundf(xb[j] * id);
    }
}

/// Per block: an exact int32 dot of the two int8 vectors, scaled by both blocks' scales.
static void gemv_q8_portable(const uint8_t *w, size_t cols, const int8_t *xq, const float *xd, float *y, size_t r0, size_t r1) {
    size_t blocks = cols / QK;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * blocks * BLOCK_BYTES;
        float acc = 0;
        for (size_t b = 0; b < blocks; b++, p += BLOCK_BYTES) {
            uint16_t h;
            memcpy(&h, p, 2);
            const int8_t *q = (const int8_t *)(p + 2);
            const int8_t *xb = xq + b * QK;
            int32_t s = 0;
            for (int j = 0; j < QK; j++) s += (int32_t)q[j] * (int32_t)xb[j];
            acc += balcony_fp16_to_fp32(h) * xd[b] * (float)s;
        }
        y[r] = acc;
    }
}

static void dequantize_portable(const uint8_t *w, size_t cols, float *out, size_t r0, size_t r1) {
    size_t blocks = cols / QK;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * blocks * BLOCK_BYTES;
        float *o = out + (r - r0) * cols;
        for (size_t b = 0; b < blocks; b++, p += BLOCK_BYTES) {
            uint16_t h;
            memcpy(&h, p, 2);
            float d = balcony_fp16_to_fp32(h);
            const int8_t *q = (const int8_t *)(p + 2);
            for (int j = 0; j < QK; j++) o[b * QK + j] = d * (float)q[j];
        }
    }
}

#ifdef BALCONY_X86
/// Eight int32 partial sums of the 32 products w[j] * x[j], as floats (the sign trick lets
/// maddubs multiply signed by signed: |w| * (x * sign(w)); no saturation, |x| <= 127).
__attribute__((target("avx2,fma,f16c")))
static inline __m256 block_dot_i8(const uint8_t *p, const int8_t *xb) {
    __m256i w = _mm256_loadu_si256((const __m256i *)(p + 2));
    __m256i x = _mm256_loadu_si256((const __m256i *)xb);
    __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

__attribute__((target("avx2,fma,f16c")))
static inline __m256 block_step(const uint8_t *p, const int8_t *xb, float dx, __m256 acc) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(h) * dx), block_dot_i8(p, xb), acc);
}

/// How far ahead of the current block to prefetch. Rows are short (816 bytes for 768 columns), so
/// the hardware prefetcher barely ramps up within one; walking rows one after another as a single
/// sequential stream and prefetching ahead doubled the single-thread rate from memory (3.0 to
/// 6.7 GB/s here; four rows interleaved, the previous layout, made four short streams).
#define PREFETCH_BYTES 1024

/// One row at a time, two accumulators (even and odd blocks) to overlap the FMA latency. Every row
/// gets the same sequence of operations, so its result never depends on which rows are computed
/// with it.
__attribute__((target("avx2,fma,f16c")))
static void gemv_q8_avx2(const uint8_t *w, size_t cols, const int8_t *xq, const float *xd, float *y, size_t r0, size_t r1) {
    size_t blocks = cols / QK;
    size_t rowBytes = blocks * BLOCK_BYTES;
    const uint8_t *p = w + r0 * rowBytes;
    for (size_t r = r0; r < r1; r++, p += rowBytes) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t b = 0;
        for (; b + 2 <= blocks; b += 2) {
            _mm_prefetch((const char *)(p + b * BLOCK_BYTES + PREFETCH_BYTES), _MM_HINT_T0);
            a0 = block_step(p + b * BLOCK_BYTES, xq + b * QK, xd[b], a0);
            a1 = block_step(p + (b + 1) * BLOCK_BYTES, xq + (b + 1) * QK, xd[b + 1], a1);
        }
        if (b < blocks) a0 = block_step(p + b * BLOCK_BYTES, xq + b * QK, xd[b], a0);
        y[r] = balcony_hsum8(_mm256_add_ps(a0, a1));
    }
}

__attribute__((target("avx2,fma,f16c")))
static void dequantize_avx2(const uint8_t *w, size_t cols, float *out, size_t r0, size_t r1) {
    size_t blocks = cols / QK;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * blocks * BLOCK_BYTES;
        float *o = out + (r - r0) * cols;
        for (size_t b = 0; b < blocks; b++, p += BLOCK_BYTES) {
            uint16_t h;
            memcpy(&h, p, 2);
            __m256 d = _mm256_set1_ps(_cvtsh_ss(h));
            const int8_t *q = (const int8_t *)(p + 2);
            for (int k = 0; k < QK; k += 8) {
                __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + k))));
                _mm256_storeu_ps(o + b * QK + k, _mm256_mul_ps(d, v));
            }
        }
    }
}

#endif

void balcony_q8_0_gemv_q8(const void *w, size_t cols, const int8_t *xq, const float *xd, float *y, size_t r0, size_t r1) {
#ifdef BALCONY_X86
    if (balcony_has_avx2()) { gemv_q8_avx2((const uint8_t *)w, cols, xq, xd, y, r0, r1); return; }
#endif
    gemv_q8_portable((const uint8_t *)w, cols, xq, xd, y, r0, r1);
}

void balcony_q8_0_dequantize_rows(const void *w, size_t cols, float *out, size_t r0, size_t r1) {
#ifdef BALCONY_X86
    if (balcony_has_avx2()) { dequantize_avx2((const uint8_t *)w, cols, out, r0, r1); return; }
#endif
    dequantize_portable((const uint8_t *)w, cols, out, r0, r1);
}
