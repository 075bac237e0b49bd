// Balcony's own single-threaded SGEMM (row-major), laid out like BLIS/GotoBLAS: C is computed in
// tiles of MR x NR held in registers (sgemm_microkernel.h); B is packed a block of KC x NC at a
// time into NR-column micro-panels that stay in L1 while a block of MC rows of A, packed into
// MR-row micro-panels, streams past them from L2. Callers split larger products over threads
// (BLAS.swift, PrefillGEMM).
//
// Why not OpenBLAS: the OpenBLAS these machines have (Debian's 0.3.21) is pinned to its Haswell
// kernels where OPENBLAS_CORETYPE=Haswell is set, and its threading yields the cores while it
// waits. The kernels here pick AVX-512, AVX2 or portable C at run time, like the decode kernels.

#include "ckernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "simd_x86.h"

typedef float f32x4 __attribute__((vector_size(16)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));

#define UK_NAME microkernel_portable
#define UK_ATTRIBUTES
#define UK_VEC f32x4
#define UK_VL 4
#define UK_NV 2
#define UK_MR 6
#define UK_FMA(a, b, c) ((a) * (b) + (c))
#include "sgemm_microkernel.h"
#define UK_NAME microkernel_portable_direct
#define UK_ATTRIBUTES 
#define UK_VEC f32x4
#define UK_VL 4
#define UK_NV 2
#define UK_MR 6
#define UK_DIRECT_A 1
#include "sgemm_microkernel.h"
#undef UK_FMA

#ifdef BALCONY_X86
#define UK_NAME microkernel_avx2
#define UK_ATTRIBUTES __attribute__((target("avx2,fma")))
#define UK_VEC f32x8
#define UK_VL 8
#define UK_NV 2
#define UK_MR 6
#define UK_FMA(a, b, c) __builtin_elementwise_fma(a, b, c)
#include "sgemm_microkernel.h"
#define UK_NAME microkernel_avx2_direct
#define UK_ATTRIBUTES __attribute__((target("avx2,fma")))
#define UK_VEC f32x8
#define UK_VL 8
#define UK_NV 2
#define UK_MR 6
#define UK_DIRECT_A 1
#include "sgemm_microkernel.h"

#define UK_NAME microkernel_avx512
#define UK_ATTRIBUTES __attribute__((target("avx512f,avx2,fma")))
#define UK_VEC f32x16
#define UK_VL 16
#define UK_NV 2
#define UK_MR 12
#include "sgemm_microkernel.h"
#define UK_NAME microkernel_avx512_direct
#define UK_ATTRIBUTES __attribute__((target("avx512f,avx2,fma")))
#define UK_VEC f32x16
#define UK_VL 16
#define UK_NV 2
#define UK_MR 12
#define UK_DIRECT_A 1
#include "sgemm_microkernel.h"

// The AVX-512 kernel's tile shape and blocking compiled for AVX2 (each 16-float vector becomes two
// registers): what the tests run on machines without AVX-512 to check the logic that kernel uses.
#define UK_NAME microkernel_avx512_shape_on_avx2
#define UK_ATTRIBUTES __attribute__((target("avx2,fma")))
#define UK_VEC f32x16
#define UK_VL 16
#define UK_NV 2
#define UK_MR 12
#include "sgemm_microkernel.h"
#define UK_NAME microkernel_avx512_shape_on_avx2_direct
#define UK_ATTRIBUTES __attribute__((target("avx2,fma")))
#define UK_VEC f32x16
#define UK_VL 16
#define UK_NV 2
#define UK_MR 12
#define UK_DIRECT_A 1
#include "sgemm_microkernel.h"
#undef UK_FMA

static int has_avx512(void) {
    static int cached = -1;
    // Read and written atomically: threads may ask at once (ThreadSanitizer flagged the plain int);
    // every writer stores the same value, so relaxed order is enough.
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") && balcony_has_avx2();
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif

typedef void (*microkernel_fn)(size_t kc, const float *restrict ap, size_t lda, const float *restrict bp,
                               float *restrict c, size_t ldc, float alpha, float beta, size_t mr, size_t nr);

/// A microkernel and its blocking. KC x NR floats of B (one micro-panel) fit in half of L1 with
/// room for A's micro-panel; MC x KC of packed A fit in about half of L2; KC x NC of packed B in
/// a share of L3. Chosen for Zen 3 (32 KiB L1, 512 KiB L2) for AVX2 and Zen 4/5 and Skylake-X
/// (32-48 KiB L1, 1-2 MiB L2) for AVX-512.
struct kernel {
    const char *name;
    microkernel_fn fn, direct;  // direct: A read in place (UK_DIRECT_A)
    size_t mr, nr, kc, mc, nc;
};

static const struct kernel kernels[] = {
    [BALCONY_SGEMM_PORTABLE] = {"balcony-portable-6x8", microkernel_portable, microkernel_portable_direct, 6, 8, 256, 120, 2048},
#ifdef BALCONY_X86
    [BALCONY_SGEMM_AVX2] = {"balcony-avx2-6x16", microkernel_avx2, microkernel_avx2_direct, 6, 16, 256, 168, 2048},
    [BALCONY_SGEMM_AVX512] = {"balcony-avx512-12x32", microkernel_avx512, microkernel_avx512_direct, 12, 32, 192, 240, 2048},
    [BALCONY_SGEMM_AVX512_SHAPE_ON_AVX2] = {"balcony-avx512-12x32-on-avx2", microkernel_avx512_shape_on_avx2,
                                            microkernel_avx512_shape_on_avx2_direct, 12, 32, 192, 240, 2048},
#endif
};

int balcony_sgemm_kernel_available(int kernel) {
    switch (kernel) {
    case BALCONY_SGEMM_PORTABLE: return 1;
#ifdef BALCONY_X86
    case BALCONY_SGEMM_AVX2:
    case BALCONY_SGEMM_AVX512_SHAPE_ON_AVX2: return balcony_has_avx2();
    case BALCONY_SGEMM_AVX512: return has_avx512();
#endif
    default: return 0;
    }
}

int balcony_sgemm_default_kernel(void) {
    if (balcony_sgemm_kernel_available(BALCONY_SGEMM_AVX512)) return BALCONY_SGEMM_AVX512;
    if (balcony_sgemm_kernel_available(BALCONY_SGEMM_AVX2)) return BALCONY_SGEMM_AVX2;
    return BALCONY_SGEMM_PORTABLE;
}

const char *balcony_sgemm_kernel_name(int kernel) {
    return balcony_sgemm_kernel_available(kernel) ? kernels[kernel].name : NULL;
}

/// Floats past the packed panels that the AVX2 transposes may write (transpose_rows_avx2).
#define PACK_SLACK 16

// Packing buffers per thread, kept between calls (a fresh multi-megabyte allocation would fault
// its pages in again on every product) and freed when the thread exits.
struct pack_buffers {
    float *a, *b;
    size_t a_capacity, b_capacity;
};

static pthread_key_t buffers_key;
static pthread_once_t buffers_once = PTHREAD_ONCE_INIT;

static void buffers_free(void *value) {
    struct pack_buffers *p = value;
    free(p->a);
    free(p->b);
    free(p);
}

static void buffers_key_create(void) { pthread_key_create(&buffers_key, buffers_free); }

/// 64-byte aligned room for `count` floats in *buffer, grown when needed; 0 when memory runs out.
static int reserve(float **buffer, size_t *capacity, size_t count) {
    if (*capacity >= count) return 1;
    free(*buffer);
    *buffer = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    *capacity = *buffer ? count : 0;
    return *buffer != NULL;
}

static struct pack_buffers *thread_buffers(size_t a_count, size_t b_count) {
    pthread_once(&buffers_once, buffers_key_create);
    struct pack_buffers *p = pthread_getspecific(buffers_key);
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p) return NULL;
        pthread_setspecific(buffers_key, p);
    }
    if (!reserve(&p->a, &p->a_capacity, a_count + PACK_SLACK) || !reserve(&p->b, &p->b_capacity, b_count + PACK_SLACK))
        return NULL;
    return p;
}

#ifdef BALCONY_X86
/// The transposing packs (activation rows into A's micro-panels, weight rows into B's) in 8 x 8
/// blocks of registers: scalar, they took 7 % of a prefill product's time. Reads `rows` (1 ... 8)
/// rows of 8 floats from src (row stride lds) and stores them as 8 columns, dst[p * ldd + i] =
/// src[i * lds + p], each column a whole 8-float store: lanes past `rows` land either in the
/// panel's zero padding, which is written afterwards, or (ldd < i + 8) at the start of the next
/// p's column, which transpose_rows_avx2 writes afterwards (see there). AMD's masked stores would
/// cost more than the transpose.
__attribute__((target("avx2,fma")))
static inline void transpose_8_avx2(const float *src, size_t lds, size_t rows, float *dst, size_t ldd) {
    __m256 r[8];
    for (size_t i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + (i < rows ? i : 0) * lds);
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/// out[p * ldo + i] = src[i * lds + p] for i < rows, p < kc: 8 x 8 blocks, then the last p one by
/// one. A block's stores may run up to 8 - 1 floats past its column into the next p's column
/// (rows i ≥ ldo - 8 of a block; ldo is 6 or more): blocks go in descending i, so the columns'
/// lower rows are written after the spill, and a p's spill from the last block is overwritten by
/// the next p's store, the next 8 x 8 step, the scalar tail or the next panel. Past the last
/// panel it lands in the packing buffer's slack (PACK_SLACK).
__attribute__((target("avx2,fma")))
static void transpose_rows_avx2(const float *src, size_t lds, size_t rows, size_t kc, float *out, size_t ldo) {
    size_t p = 0;
    for (; p + 8 <= kc; p += 8)
        for (size_t i = (rows - 1) / 8 * 8 + 8; i > 0;) {
            i -= 8;
            transpose_8_avx2(src + i * lds + p, lds, rows - i < 8 ? rows - i : 8, out + p * ldo + i, ldo);
        }
    for (; p < kc; p++)
        for (size_t i = 0; i < rows; i++) out[p * ldo + i] = src[i * lds + p];
}
#endif

/// out[p * ldo + i] = src[i * lds + p] for i < rows, p < kc (AVX2 where the CPU has it).
static void transpose_rows(const float *src, size_t lds, size_t rows, size_t kc, float *out, size_t ldo) {
#ifdef BALCONY_X86
    if (balcony_has_avx2()) {
        transpose_rows_avx2(src, lds, rows, kc, out, ldo);
        return;
    }
#endif
    for (size_t i = 0; i < rows; i++)
        for (size_t p = 0; p < kc; p++) out[p * ldo + i] = src[i * lds + p];
}

/// dst[0 ..< count] = src[0 ..< count]: a copy of one micro-panel row, with the tile widths'
/// sizes fixed so that the compiler inlines them (a call to memcpy for every k costs more).
static inline void copy_short(float *dst, const float *src, size_t count) {
    switch (count) {
    case 6: memcpy(dst, src, 6 * sizeof(float)); break;
    case 8: memcpy(dst, src, 8 * sizeof(float)); break;
    case 12: memcpy(dst, src, 12 * sizeof(float)); break;
    case 16: memcpy(dst, src, 16 * sizeof(float)); break;
    case 32: memcpy(dst, src, 32 * sizeof(float)); break;
    default: memcpy(dst, src, count * sizeof(float));
    }
}

/// Packs rows 0 ..< mc and columns 0 ..< kc of A (element (i, p) at a[i * rs + p * cs]) into
/// micro-panels of mr rows: panel r holds, for each p, rows r*mr ... r*mr + mr - 1 (zeros past mc).
static void pack_a(size_t mc, size_t kc, const float *a, size_t rs, size_t cs, size_t mr, float *out) {
    for (size_t i0 = 0; i0 < mc; i0 += mr, out += mr * kc) {
        size_t rows = mc - i0 < mr ? mc - i0 : mr;
        if (cs == 1) {
            // Rows are contiguous along p (activations): a transpose.
            transpose_rows(a + i0 * rs, rs, rows, kc, out, mr);
            for (size_t i = rows; i < mr; i++)
                for (size_t p = 0; p < kc; p++) out[p * mr + i] = 0;
        } else {
            for (size_t p = 0; p < kc; p++) {
                const float *src = a + i0 * rs + p * cs;
                for (size_t i = 0; i < rows; i++) out[p * mr + i] = src[i * rs];
                for (size_t i = rows; i < mr; i++) out[p * mr + i] = 0;
            }
        }
    }
}

/// Floats from one packed B micro-panel to the next: kc * nr and one cache line more. kc * nr
/// floats alone are a power of two apart for the usual kc (16 KiB at 256 x 16), and the panels'
/// lines written one k after another (pack_b of row-major B) then all fall in one L1 set.
static inline size_t panel_stride(size_t kc, size_t nr) { return kc * nr + 16; }

/// Packs rows 0 ..< kc and columns 0 ..< nc of B (element (p, j) at b[p * rs + j * cs]) into
/// micro-panels of nr columns, panel_stride apart: panel q holds, for each p, columns q*nr ... q*nr + nr - 1 (zeros
/// past nc).
static void pack_b(size_t kc, size_t nc, const float *b, size_t rs, size_t cs, size_t nr, float *out) {
    const size_t ps = panel_stride(kc, nr);
    if (cs == 1 && rs != 1) {
        // B[k, n] row-major: each row of B is read once straight through and dealt out to the
        // panels (panel by panel, the reads would stride a row length apart, one line each).
        const size_t whole = nc / nr * nr;
        for (size_t p = 0; p < kc; p++) {
            const float *src = b + p * rs;
            for (size_t j0 = 0; j0 < whole; j0 += nr) copy_short(out + j0 / nr * ps + p * nr, src + j0, nr);
            if (whole < nc) {
                float *tail = out + whole / nr * ps + p * nr;
                copy_short(tail, src + whole, nc - whole);
                for (size_t j = nc - whole; j < nr; j++) tail[j] = 0;
            }
        }
        return;
    }
    for (size_t j0 = 0; j0 < nc; j0 += nr, out += ps) {
        size_t cols = nc - j0 < nr ? nc - j0 : nr;
        if (rs == 1) {
            // B^T in PyTorch weight layout: each column of B is a contiguous row of the weight.
            transpose_rows(b + j0 * cs, cs, cols, kc, out, nr);
            for (size_t j = cols; j < nr; j++)
                for (size_t p = 0; p < kc; p++) out[p * nr + j] = 0;
        } else {
            for (size_t p = 0; p < kc; p++) {
                const float *src = b + p * rs + j0 * cs;
                for (size_t j = 0; j < cols; j++) out[p * nr + j] = src[j * cs];
                for (size_t j = cols; j < nr; j++) out[p * nr + j] = 0;
            }
        }
    }
}

/// C = beta * C (beta 0 writes zeros without reading C).
static void scale_c(size_t m, size_t n, float beta, float *c, size_t ldc) {
    for (size_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0)
            memset(row, 0, n * sizeof(float));
        else if (beta != 1)
            for (size_t j = 0; j < n; j++) row[j] *= beta;
    }
}

/// Products up to this many columns read row-major A in place (see balcony_sgemm_with).
#ifndef DIRECT_A_MAX_N
#define DIRECT_A_MAX_N 256
#endif

/// Splits `total` into the fewest blocks of at most `limit`, of equal size rounded up to `unit`.
static size_t block_size(size_t total, size_t limit, size_t unit) {
    size_t blocks = (total + limit - 1) / limit;
    size_t size = (total + blocks - 1) / blocks;
    return (size + unit - 1) / unit * unit;
}

int balcony_sgemm_with(int kernel, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                       const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    if (!balcony_sgemm_kernel_available(kernel)) return 0;
    if (m == 0 || n == 0) return 1;
    if (k == 0 || alpha == 0) {
        scale_c(m, n, beta, c, ldc);
        return 1;
    }
    const struct kernel *K = &kernels[kernel];
    // op(A)(i, p) = a[i * a_rs + p * a_cs]; op(B)(p, j) = b[p * b_rs + j * b_cs].
    const size_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;
    const size_t b_rs = trans_b ? 1 : ldb, b_cs = trans_b ? ldb : 1;
    const size_t kc_max = block_size(k, K->kc, 1);
    const size_t mc_max = block_size(m, K->mc, K->mr);
    const size_t nc_max = block_size(n, K->nc, K->nr);
    // Row-major A (activations) is read in place where packing it would cost a noticeable share:
    // a packed element of A serves nc multiply-adds, and below DIRECT_A_MAX_N columns (training's
    // thin products, attention) copying it costs more than reading it strided. Wider products
    // pack, which also keeps rows that alias in L1 (power-of-two strides) apart.
    const int direct = a_cs == 1 && n <= DIRECT_A_MAX_N;
    // A^T (weight gradients) is laid out as micro-panels already, with lda between ks: read in
    // place under the same rule (whole panels; a last partial one is packed). Wider products pack:
    // a power-of-two lda puts every k of a panel in one L1 set (2048 x 768 x 512 ran at 50
    // GFLOP/s in place, 87 packed).
    const int transposed_a = a_rs == 1 && a_cs != 1 && n <= DIRECT_A_MAX_N;
    struct pack_buffers *buf = thread_buffers(direct ? 0 : mc_max * kc_max, nc_max / K->nr * panel_stride(kc_max, K->nr));
    if (!buf) return 0;

    for (size_t jc = 0; jc < n; jc += nc_max) {
        size_t nc = n - jc < nc_max ? n - jc : nc_max;
        for (size_t pc = 0; pc < k; pc += kc_max) {
            size_t kc = k - pc < kc_max ? k - pc : kc_max;
            // Later blocks of k add to what the first wrote.
            float beta_block = pc == 0 ? beta : 1;
            pack_b(kc, nc, b + pc * b_rs + jc * b_cs, b_rs, b_cs, K->nr, buf->b);
            for (size_t ic = 0; ic < m; ic += mc_max) {
                size_t mc = m - ic < mc_max ? m - ic : mc_max;
                const float *a_block = a + ic * a_rs + pc * a_cs;
                const size_t whole = transposed_a ? mc / K->mr * K->mr : 0;
                if (!direct && whole < mc)
                    pack_a(mc - whole, kc, a_block + whole * a_rs, a_rs, a_cs, K->mr, buf->a + whole * kc);
                for (size_t jr = 0; jr < nc; jr += K->nr) {
                    size_t nr = nc - jr < K->nr ? nc - jr : K->nr;
                    const float *bp = buf->b + jr / K->nr * panel_stride(kc, K->nr);
                    float *c_tile = c + ic * ldc + jc + jr;
                    if (direct)
                        for (size_t ir = 0; ir < mc; ir += K->mr) {
                            size_t mr = mc - ir < K->mr ? mc - ir : K->mr;
                            K->direct(kc, a_block + ir * a_rs, a_rs, bp, c_tile + ir * ldc, ldc, alpha, beta_block, mr, nr);
                        }
                    else
                        for (size_t ir = 0; ir < mc; ir += K->mr) {
                            size_t mr = mc - ir < K->mr ? mc - ir : K->mr;
                            if (ir < whole)
                                K->fn(kc, a_block + ir, a_cs, bp, c_tile + ir * ldc, ldc, alpha, beta_block, mr, nr);
                            else
                                K->fn(kc, buf->a + ir * kc, K->mr, bp, c_tile + ir * ldc, ldc, alpha, beta_block, mr, nr);
                        }
                }
            }
        }
    }
    return 1;
}

void balcony_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                   const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    // Only an allocation of the packing buffers can fail; a product cannot go on without them.
    if (!balcony_sgemm_with(balcony_sgemm_default_kernel(), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) abort();
}
