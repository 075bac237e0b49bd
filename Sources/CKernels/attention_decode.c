#include "ckernels.h"
#include "simd_x86.h"

// One query head against `length` cached keys and values, as decode (and every small batch, query
// by query) runs it. Swift's `dot += q[i] * k[i]` is a serial chain of dependent adds, which at a
// context of a few hundred tokens made attention a sixth of a 110M model's decode time; here the
// dot products and the weighted sum of values are 8-wide.

static float dot_portable(const float *a, const float *b, size_t n) {
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void attend_portable(const float *q, const float *keys, const float *values, size_t stride, size_t length,
                            size_t hd, float scale, float *scores, float *out) {
    for (size_t j = 0; j < length; j++) scores[j] = dot_portable(q, keys + j * stride, hd) * scale;
    balcony_softmax(scores, length);
    for (size_t i = 0; i < hd; i++) out[i] = 0;
    for (size_t j = 0; j < length; j++) {
        const float *v = values + j * stride;
        float p = scores[j];
        for (size_t i = 0; i < hd; i++) out[i] += p * v[i];
    }
}

#ifdef BALCONY_X86
__attribute__((target("avx2,fma,f16c")))
static float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    float s = balcony_hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma,f16c")))
static void attend_avx2(const float *q, const float *keys, const float *values, size_t stride, size_t length,
                        size_t hd, float scale, float *scores, float *out) {
    for (size_t j = 0; j < length; j++) scores[j] = dot_avx2(q, keys + j * stride, hd) * scale;
    balcony_softmax(scores, length);
    // out = sum_j p_j v_j, 64 output lanes (eight registers) per pass over the values.
    size_t i = 0;
    for (; i + 64 <= hd; i += 64) {
        __m256 o[8];
        for (int r = 0; r < 8; r++) o[r] = _mm256_setzero_ps();
        for (size_t j = 0; j < length; j++) {
            const float *v = values + j * stride + i;
            __m256 p = _mm256_set1_ps(scores[j]);
            for (int r = 0; r < 8; r++) o[r] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * r), o[r]);
        }
        for (int r = 0; r < 8; r++) _mm256_storeu_ps(out + i + 8 * r, o[r]);
    }
    for (; i + 8 <= hd; i += 8) {
        __m256 o = _mm256_setzero_ps();
        for (size_t j = 0; j < length; j++)
            o = _mm256_fmadd_ps(_mm256_set1_ps(scores[j]), _mm256_loadu_ps(values + j * stride + i), o);
        _mm256_storeu_ps(out + i, o);
    }
    for (; i < hd; i++) {
        float o = 0;
        for (size_t j = 0; j < length; j++) o += scores[j] * values[j * stride + i];
        out[i] = o;
    }
}
#endif

void balcony_attend_one(const float *q, const float *keys, const float *values, size_t stride, size_t length,
                        size_t head_dim, float scale, float *scores, float *out) {
    if (length == 0) return;
#ifdef BALCONY_X86
    if (balcony_has_avx2()) { attend_avx2(q, keys, values, stride, length, head_dim, scale, scores, out); return; }
#endif
    attend_portable(q, keys, values, stride, length, head_dim, scale, scores, out);
}
