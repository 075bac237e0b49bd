// One SGEMM microkernel (no include guard: a template), included by sgemm.c once per instruction set with these macros set:
//   UK_NAME    the function's name
//   UK_ATTRIBUTES  its target attribute (empty for the portable build)
//   UK_VEC     a vector type of UK_VL floats (GCC/Clang vector extension)
//   UK_VL      floats per vector
//   UK_NV      vectors per row of the tile (NR = UK_VL * UK_NV)
//   UK_MR      rows of the tile
//   UK_FMA(a, b, c)  a * b + c, fused where the target has FMA
//   UK_DIRECT_A  (optional) read A in place, row-major with row stride lda, instead of packed
// The same source becomes the AVX-512, AVX2 and portable kernels: only the vector width and tile
// shape change, so the AVX2 and portable builds (which every x86 machine can run) test the logic
// the AVX-512 build shares with them.
//
// It computes C[0:mr, 0:nr] = alpha * Ap · Bp + beta * C. Ap holds kc columns of UK_MR floats,
// lda apart (A's rows: a packed micro-panel with lda = UK_MR, zero-padded, or A^T in place, which
// then has UK_MR rows), or with UK_DIRECT_A is mr rows of A itself, kc floats each, lda apart.
// Bp holds kc rows of UK_NV * UK_VL floats (B's columns, zero-padded), aligned for UK_VEC. beta == 0 never reads C (it may be uninitialized).
// The accumulators, UK_MR * UK_NV vectors, stay in registers for the whole kc loop; each step
// loads UK_NV vectors of B and broadcasts UK_MR scalars of A.

#define UK_NR (UK_VL * UK_NV)

UK_ATTRIBUTES
static void UK_NAME(size_t kc, const float *restrict ap, size_t lda, const float *restrict bp, float *restrict c,
                    size_t ldc, float alpha, float beta, size_t mr, size_t nr) {
    UK_VEC acc[UK_MR][UK_NV];
#pragma clang loop unroll(full)
    for (int i = 0; i < UK_MR; i++)
#pragma clang loop unroll(full)
        for (int v = 0; v < UK_NV; v++) acc[i][v] = (UK_VEC){0};

    // The tile of C is written once at the end; asking for its lines now hides that miss behind
    // the kc loop. A row of the tile spans up to NR / 16 + 1 lines (C need not be aligned).
    for (size_t i = 0; i < mr; i++) {
        for (int j = 0; j < UK_NR; j += 16) __builtin_prefetch(c + i * ldc + j, 1, 3);
        __builtin_prefetch(c + i * ldc + UK_NR - 1, 1, 3);
    }

    const UK_VEC *restrict b = (const UK_VEC *)bp;
#ifdef UK_DIRECT_A
    // Rows past mr repeat row 0: valid memory, and their results are never stored.
    const float *restrict row[UK_MR];
#pragma clang loop unroll(full)
    for (int i = 0; i < UK_MR; i++) row[i] = ap + ((size_t)i < mr ? (size_t)i : 0) * lda;
#else
    const float *restrict a = ap;
#endif
#pragma clang loop unroll_count(4)
    for (size_t p = 0; p < kc; p++) {
#ifndef UK_DIRECT_A
        // A's micro-panel streams from L2: fetch about 8 steps ahead (B's stays in L1).
        __builtin_prefetch(a + 8 * lda, 0, 3);
#endif
        UK_VEC bv[UK_NV];
#pragma clang loop unroll(full)
        for (int v = 0; v < UK_NV; v++) bv[v] = b[v];
#pragma clang loop unroll(full)
        for (int i = 0; i < UK_MR; i++) {
            // x - 0 is x for every x (-0 included), so this folds to a broadcast; 0 + x would not.
#ifdef UK_DIRECT_A
            UK_VEC av = row[i][p] - (UK_VEC){0};
#else
            UK_VEC av = a[i] - (UK_VEC){0};
#endif
#pragma clang loop unroll(full)
            for (int v = 0; v < UK_NV; v++) acc[i][v] = UK_FMA(av, bv[v], acc[i][v]);
        }
#ifndef UK_DIRECT_A
        a += lda;
#endif
        b += UK_NV;
    }

    if (mr == UK_MR && nr == UK_NR) {
#pragma clang loop unroll(full)
        for (int i = 0; i < UK_MR; i++) {
            float *row = c + i * ldc;
#pragma clang loop unroll(full)
            for (int v = 0; v < UK_NV; v++) {
                UK_VEC r = acc[i][v] * alpha;
                if (beta != 0) {
                    UK_VEC old;
                    __builtin_memcpy(&old, row + v * UK_VL, sizeof old);
                    r = UK_FMA(old, beta - (UK_VEC){0}, r);
                }
                __builtin_memcpy(row + v * UK_VL, &r, sizeof r);
            }
        }
        return;
    }
    // An edge tile: the whole tile was computed on zero padding; only its mr x nr corner is C's.
    float tile[UK_MR * UK_NR] __attribute__((aligned(64)));
#pragma clang loop unroll(full)
    for (int i = 0; i < UK_MR; i++)
#pragma clang loop unroll(full)
        for (int v = 0; v < UK_NV; v++) __builtin_memcpy(tile + i * UK_NR + v * UK_VL, &acc[i][v], sizeof(UK_VEC));
    for (size_t i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        const float *t = tile + i * UK_NR;
        if (beta != 0)
            for (size_t j = 0; j < nr; j++) row[j] = alpha * t[j] + beta * row[j];
        else
            for (size_t j = 0; j < nr; j++) row[j] = alpha * t[j];
    }
}

#undef UK_NR
#undef UK_NAME
#undef UK_ATTRIBUTES
#undef UK_VEC
#undef UK_VL
#undef UK_NV
#undef UK_MR
#undef UK_DIRECT_A
