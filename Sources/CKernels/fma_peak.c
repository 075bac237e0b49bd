// The CPU's multiply-add peak, measured rather than looked up: ten independent chains of fused
// multiply-adds on the widest vectors the CPU runs. Ten chains cover the latency of every current
// FMA unit (4-5 cycles, two units), so the loop runs at the FMA throughput; `balcony bench`
// states SGEMM and prefill as fractions of it.

#include "ckernels.h"

#include "simd_x86.h"

typedef float f32x4 __attribute__((vector_size(16)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));

// x = x * m + c with m just below 1 and c small: the values stay finite for any iteration count.
// Each chain starts from a different value: chains computing the same thing would be merged into
// one by the compiler (a plain C version of this loop measured one chain, not ten).
#define FMA_CHAINS(VEC, FMA)                                                                                          \
    VEC m = (VEC){0} + 0.99999f, c = (VEC){0} + 1e-6f;                                                                \
    VEC x0 = m, x1 = m + 0.001f, x2 = m + 0.002f, x3 = m + 0.003f, x4 = m + 0.004f, x5 = m + 0.005f;               \
    VEC x6 = m + 0.006f, x7 = m + 0.007f, x8 = m + 0.008f, x9 = m + 0.009f;                                         \
    for (long i = 0; i < iterations; i++) {                                                                           \
        x0 = FMA(x0, m, c); x1 = FMA(x1, m, c); x2 = FMA(x2, m, c); x3 = FMA(x3, m, c); x4 = FMA(x4, m, c);         \
        x5 = FMA(x5, m, c); x6 = FMA(x6, m, c); x7 = FMA(x7, m, c); x8 = FMA(x8, m, c); x9 = FMA(x9, m, c);         \
    }                                                                                                                 \
    VEC s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) + (x8 + x9);                                          \
    return s[0];

#define PLAIN_FMA(a, b, c) ((a) * (b) + (c))

static float chains_portable(long iterations) { FMA_CHAINS(f32x4, PLAIN_FMA) }

#ifdef BALCONY_X86
__attribute__((target("avx2,fma"))) static float chains_avx2(long iterations) {
    FMA_CHAINS(f32x8, __builtin_elementwise_fma)
}

__attribute__((target("avx512f,avx2,fma"))) static float chains_avx512(long iterations) {
    FMA_CHAINS(f32x16, __builtin_elementwise_fma)
}
#endif

int balcony_fma_lanes(void) {
#ifdef BALCONY_X86
    if (balcony_sgemm_kernel_available(BALCONY_SGEMM_AVX512)) return 16;
    if (balcony_has_avx2()) return 8;
#endif
    return 4;
}

float balcony_fma_chains(long iterations) {
#ifdef BALCONY_X86
    if (balcony_sgemm_kernel_available(BALCONY_SGEMM_AVX512)) return chains_avx512(iterations);
    if (balcony_has_avx2()) return chains_avx2(iterations);
#endif
    return chains_portable(iterations);
}
