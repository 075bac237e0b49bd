#ifndef BALCONY_QUANTS_H
#define BALCONY_QUANTS_H

#include <stddef.h>
#include <stdint.h>

/// GGML's quantized block types as llama.cpp stores them in GGUF files, multiplied in their own
/// form (the weights are never widened as a whole). Types are ggml's type ids (`enum ggml_type`).
///
/// Decode runs as llama.cpp's CPU backend does: each activation row is quantized once to 8-bit
/// blocks of the weight type's "dot type" (Q8_0 for Q4_0, Q5_0, Q8_0 and IQ4_NL; Q8_1 for Q4_1 and
/// Q5_1; Q8_K for the k-quants and IQ4_XS), then every weight row is an integer dot product with
/// it, scaled per block. Prefill widens tiles of rows to F32 (balcony_quant_dequantize_rows) and
/// hands them to SGEMM.
///
/// Every function here computes each output row with the same sequence of operations whatever
/// range it is called with, so a row's result never depends on which rows are computed with it.

enum {
    BALCONY_GGML_Q4_0 = 2,
    BALCONY_GGML_Q4_1 = 3,
    BALCONY_GGML_Q5_0 = 6,
    BALCONY_GGML_Q5_1 = 7,
    BALCONY_GGML_Q8_0 = 8,
    BALCONY_GGML_Q8_1 = 9,
    BALCONY_GGML_Q2_K = 10,
    BALCONY_GGML_Q3_K = 11,
    BALCONY_GGML_Q4_K = 12,
    BALCONY_GGML_Q5_K = 13,
    BALCONY_GGML_Q6_K = 14,
    BALCONY_GGML_Q8_K = 15,
    BALCONY_GGML_IQ4_NL = 20,
    BALCONY_GGML_IQ4_XS = 23,
};

/// 1 for the weight types these kernels multiply (Q4_0 ... IQ4_XS above, not Q8_1 or Q8_K, which
/// only hold activations), else 0.
int balcony_quant_is_weight_type(int type);

/// Values per block (32, or 256 for Q8_K, the k-quants and IQ4_XS) and bytes per block, for every
/// type above; 0 for any other id.
size_t balcony_quant_block_values(int type);
size_t balcony_quant_block_bytes(int type);

/// The activation type a weight type's dot product takes (llama.cpp's `vec_dot_type`).
int balcony_quant_dot_type(int type);

/// Quantizes x[cols] (cols a multiple of the dot type's block) into dot-type blocks at out, laid
/// out exactly as ggml's block_q8_0 / block_q8_1 / block_q8_K, with llama.cpp's rounding.
void balcony_quant_activations(int dot_type, const float *x, size_t cols, void *out);

/// y[r] = W[r, :] . x for r in [row_begin, row_end): W is `type` blocks, cols / block_values per
/// row; xq is x quantized by balcony_quant_activations(balcony_quant_dot_type(type), ...).
/// AVX2 when the CPU has it, else portable C.
void balcony_quant_gemv(int type, const void *w, size_t cols, const void *xq, float *y, size_t row_begin,
                        size_t row_end);

/// The portable C version of balcony_quant_gemv (what non-x86 CPUs run), callable anywhere for tests.
void balcony_quant_gemv_portable(int type, const void *w, size_t cols, const void *xq, float *y, size_t row_begin,
                                 size_t row_end);

/// Rows [row_begin, row_end) of W as F32 into out (cols per row, from out), exactly as ggml's
/// dequantize_row_* gives them.
void balcony_quant_dequantize_rows(int type, const void *w, size_t cols, float *out, size_t row_begin, size_t row_end);

/// The portable C version of balcony_quant_dequantize_rows.
void balcony_quant_dequantize_rows_portable(int type, const void *w, size_t cols, float *out, size_t row_begin,
                                            size_t row_end);

/// 1 when balcony_quant_quantize_rows can make `type` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), else 0.
int balcony_quant_can_quantize(int type);

/// Quantizes rows x cols F32 values (row-major; cols a multiple of 32) into `type` blocks at out,
/// bit for bit as llama.cpp's reference quantize_row_*_ref (and gguf-py's quantizer) make them.
void balcony_quant_quantize_rows(int type, const float *x, size_t cols, void *out, size_t rows);

#endif
