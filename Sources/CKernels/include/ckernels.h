#ifndef BALCONY_CKERNELS_H
#define BALCONY_CKERNELS_H

#include <stddef.h>

/// Q8_0 kernels (GGML blocks: fp16 scale + 32 int8). Written in C because Swift's SIMD
/// conversions from Int8 vectors lower to scalar code; here the AVX2/FMA/F16C versions are chosen
/// at run time on x86-64 CPUs that have them, with a portable version otherwise.

/// y[r] = sum_c W[r, c] * x[c] for r in [row_begin, row_end). W rows are cols/32 blocks of 34 bytes.
void balcony_q8_0_gemv(const void *w, size_t cols, const float *x, float *y, size_t row_begin, size_t row_end);

/// Widens rows [row_begin, row_end) of W into out (row-major floats, cols per row, starting at out).
void balcony_q8_0_dequantize_rows(const void *w, size_t cols, float *out, size_t row_begin, size_t row_end);

/// 1 when the AVX2 path is in use (for reports).
int balcony_q8_0_uses_avx2(void);

#endif
