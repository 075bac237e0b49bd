#ifndef BALCONY_QUANTS_IMPL_H
#define BALCONY_QUANTS_IMPL_H

/// What quants.c dispatches to: one file per family of block types. Each function returns 1 when
/// it handled `type`, 0 when the type is not of its family. `portable` forces the portable C path.

#include <stddef.h>
#include <stdint.h>
#include "quants.h"

/// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL (32-value blocks; quants_legacy.c), with Q8_0 / Q8_1 activations.
int balcony_q_legacy_gemv(int type, const void *w, size_t cols, const void *xq, float *y, size_t row_begin,
                          size_t row_end, int portable);
int balcony_q_legacy_dequantize(int type, const void *w, size_t cols, float *out, size_t row_begin, size_t row_end,
                                int portable);
int balcony_q_legacy_quantize_activations(int dot_type, const float *x, size_t cols, void *out);

/// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS (256-value super-blocks; quants_k.c), with Q8_K activations.
int balcony_q_k_gemv(int type, const void *w, size_t cols, const void *xq, float *y, size_t row_begin, size_t row_end,
                     int portable);
int balcony_q_k_dequantize(int type, const void *w, size_t cols, float *out, size_t row_begin, size_t row_end,
                           int portable);
int balcony_q_k_quantize_activations(int dot_type, const float *x, size_t cols, void *out);

#endif
