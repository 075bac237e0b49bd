#include "ckernels.h"
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BALCONY_X86 1
#endif

#define QK 32
#define BLOCK_BYTES 34

static float fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void gemv_portable(const uint8_t *w, size_t cols, const float *x, float *y, size_t r0, size_t r1) {
    size_t blocks = cols / QK;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *p = w + r * blocks * BLOCK_BYTES;
        float acc = 0;
        for (size_t b = 0; b < blocks; b++, p += BLOCK_BYTES) {
            uint16_t h;
            memcpy(&h, p, 2);
            const int8_t *q = (const int8_t *)(p + 2);
            const float *xb = x + b * QK;
            float s = 0;
            for (int j = 0; j < QK; j++) s += (float)q[j] * xb[j];
            acc += fp16_to_fp32(h) * s;
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
            float d = fp16_to_fp32(h);
            const int8_t *q = (const int8_t *)(p + 2);
            for (int j = 0; j < QK; j++) o[b * QK + j] = d * (float)q[j];
        }
    }
}

#ifdef BALCONY_X86
__attribute__((target("avx2,fma,f16c")))
static inline __m256 block_dot(const uint8_t *p, const float *xb) {
    const int8_t *q = (const int8_t *)(p + 2);
    __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 0)))), _mm256_loadu_ps(xb + 0));
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8)))), _mm256_loadu_ps(xb + 8), s);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 16)))), _mm256_loadu_ps(xb + 16), s);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 24)))), _mm256_loadu_ps(xb + 24), s);
    return s;
}

__attribute__((target("avx2,fma,f16c")))
static inline float hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/// Two rows at a time so each x block is loaded once for both.
__attribute__((target("avx2,fma,f16c")))
static void gemv_avx2(const uint8_t *w, size_t cols, const float *x, float *y, size_t r0, size_t r1) {
    size_t blocks = cols / QK;
    size_t rowBytes = blocks * BLOCK_BYTES;
    size_t r = r0;
    for (; r + 2 <= r1; r += 2) {
        const uint8_t *p0 = w + r * rowBytes, *p1 = p0 + rowBytes;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (size_t b = 0; b < blocks; b++, p0 += BLOCK_BYTES, p1 += BLOCK_BYTES) {
            const float *xb = x + b * QK;
            uint16_t h0, h1;
            memcpy(&h0, p0, 2);
            memcpy(&h1, p1, 2);
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(h0)), block_dot(p0, xb), a0);
            a1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(h1)), block_dot(p1, xb), a1);
        }
        y[r] = hsum(a0);
        y[r + 1] = hsum(a1);
    }
    for (; r < r1; r++) {
        const uint8_t *p = w + r * rowBytes;
        __m256 a = _mm256_setzero_ps();
        for (size_t b = 0; b < blocks; b++, p += BLOCK_BYTES) {
            uint16_t h;
            memcpy(&h, p, 2);
            a = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(h)), block_dot(p, x + b * QK), a);
        }
        y[r] = hsum(a);
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

static int has_avx2(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
}
#endif

void balcony_q8_0_gemv(const void *w, size_t cols, const float *x, float *y, size_t r0, size_t r1) {
#ifdef BALCONY_X86
    if (has_avx2()) { gemv_avx2((const uint8_t *)w, cols, x, y, r0, r1); return; }
#endif
    gemv_portable((const uint8_t *)w, cols, x, y, r0, r1);
}

void balcony_q8_0_dequantize_rows(const void *w, size_t cols, float *out, size_t r0, size_t r1) {
#ifdef BALCONY_X86
    if (has_avx2()) { dequantize_avx2((const uint8_t *)w, cols, out, r0, r1); return; }
#endif
    dequantize_portable((const uint8_t *)w, cols, out, r0, r1);
}

int balcony_q8_0_uses_avx2(void) {
#ifdef BALCONY_X86
    return has_avx2();
#else
    return 0;
#endif
}
