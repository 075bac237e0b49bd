#include "ckernels.h"
#include "half_convert.h"
#include "simd_x86.h"

/// F16 and BF16 weights kept in their 16 bits (half the bytes of F32 for decode to stream).
/// Every 16-bit value widens to a float exactly, and the row kernels below do gemv_f32.c's
/// arithmetic on the widened values, in the same order, so each result is bit for bit what
/// balcony_f32_gemv gives on the weights widened to F32 beforehand.

static inline float widen_one(const uint16_t *w, size_t i, int bf16) {
    return bf16 ? balcony_bf16_to_fp32(w[i]) : balcony_fp16_to_fp32(w[i]);
}

/// gemv_f32.c's portable row kernel on widened weights.
static void gemv_portable(const uint16_t *w, int bf16, size_t cols, const float *x, float *y, size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *wr = w + r * cols;
        float acc[8] = {0};
        size_t i = 0;
        for (; i + 8 <= cols; i += 8)
            for (int j = 0; j < 8; j++) acc[j] += widen_one(wr, i + j, bf16) * x[i + j];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < cols; i++) s += widen_one(wr, i, bf16) * x[i];
        y[r] = s;
    }
}

static void widen_portable(const uint16_t *w, int bf16, size_t cols, float *out, size_t r0, size_t r1) {
    for (size_t i = r0 * cols; i < r1 * cols; i++) out[i - r0 * cols] = widen_one(w, i, bf16);
}

#ifdef BALCONY_X86
__attribute__((target("avx2,fma,f16c")))
static inline __m256 widen8(const uint16_t *p, int bf16) {
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    if (bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/// gemv_f32.c's AVX2 row kernel (four accumulators over 32 columns, then 8, then one at a
/// time) on weights widened eight at a time. `bf16` is the same for the whole call, so the
/// branch in widen8 is hoisted out by the compiler or predicted every time.
__attribute__((target("avx2,fma,f16c")))
static void gemv_avx2(const uint16_t *w, int bf16, size_t cols, const float *x, float *y, size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
        const uint16_t *wr = w + r * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        size_t i = 0;
        for (; i + 32 <= cols; i += 32) {
            a0 = _mm256_fmadd_ps(widen8(wr + i, bf16), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(widen8(wr + i + 8, bf16), _mm256_loadu_ps(x + i + 8), a1);
            a2 = _mm256_fmadd_ps(widen8(wr + i + 16, bf16), _mm256_loadu_ps(x + i + 16), a2);
            a3 = _mm256_fmadd_ps(widen8(wr + i + 24, bf16), _mm256_loadu_ps(x + i + 24), a3);
        }
        for (; i + 8 <= cols; i += 8) a0 = _mm256_fmadd_ps(widen8(wr + i, bf16), _mm256_loadu_ps(x + i), a0);
        float s = balcony_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; i < cols; i++) s += widen_one(wr, i, bf16) * x[i];
        y[r] = s;
    }
}

__attribute__((target("avx2,fma,f16c")))
static void widen_avx2(const uint16_t *w, int bf16, size_t cols, float *out, size_t r0, size_t r1) {
    size_t n = (r1 - r0) * cols, i = 0;
    const uint16_t *src = w + r0 * cols;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, widen8(src + i, bf16));
    for (; i < n; i++) out[i] = widen_one(src, i, bf16);
}
#endif

void balcony_half_gemv(const uint16_t *w, int bf16, size_t cols, const float *x, float *y, size_t row_begin, size_t row_end) {
#ifdef BALCONY_X86
    if (balcony_has_avx2()) { gemv_avx2(w, bf16, cols, x, y, row_begin, row_end); return; }
#endif
    gemv_portable(w, bf16, cols, x, y, row_begin, row_end);
}

void balcony_half_widen_rows(const uint16_t *w, int bf16, size_t cols, float *out, size_t row_begin, size_t row_end) {
#ifdef BALCONY_X86
    if (balcony_has_avx2()) { widen_avx2(w, bf16, cols, out, row_begin, row_end); return; }
#endif
    widen_portable(w, bf16, cols, out, row_begin, row_end);
}

void balcony_half_gemv_portable(const uint16_t *w, int bf16, size_t cols, const float *x, float *y, size_t row_begin, size_t row_end) {
    gemv_portable(w, bf16, cols, x, y, row_begin, row_end);
}
