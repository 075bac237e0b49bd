#ifndef BALCONY_SIMD_X86_H
#define BALCONY_SIMD_X86_H

/// What the decode kernels share on x86-64: the run-time CPU check and the horizontal sum.
/// Kernels are compiled for AVX2/FMA/F16C with target attributes and chosen at run time, so one
/// binary runs on any x86-64 CPU (portable C otherwise).

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BALCONY_X86 1

/// 1 when the CPU has AVX2, FMA and F16C (every AVX2 CPU in practice).
static inline int balcony_has_avx2(void) {
    static int cached = -1;
    // Read and written atomically: threads may ask at once (ThreadSanitizer flagged the plain int);
    // every writer stores the same value, so relaxed order is enough.
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/// Sum of the eight lanes: halves, then pairs, then the last two.
__attribute__((target("avx2,fma,f16c")))
static inline float balcony_hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
#endif

#endif
