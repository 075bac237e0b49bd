#include "quants_impl.h"

/// Block geometry of ggml's types (ggml.c's type_traits: blck_size and type_size).
size_t balcony_quant_block_values(int type) {
    switch (type) {
    case BALCONY_GGML_Q4_0: case BALCONY_GGML_Q4_1: case BALCONY_GGML_Q5_0: case BALCONY_GGML_Q5_1:
    case BALCONY_GGML_Q8_0: case BALCONY_GGML_Q8_1: case BALCONY_GGML_IQ4_NL:
        return 32;
    case BALCONY_GGML_Q2_K: case BALCONY_GGML_Q3_K: case BALCONY_GGML_Q4_K: case BALCONY_GGML_Q5_K:
    case BALCONY_GGML_Q6_K: case BALCONY_GGML_Q8_K: case BALCONY_GGML_IQ4_XS:
        return 256;
    default:
        return 0;
    }
}

size_t balcony_quant_block_bytes(int type) {
    switch (type) {
    case BALCONY_GGML_Q4_0: return 18;    // f16 d, 16 bytes of nibbles
    case BALCONY_GGML_Q4_1: return 20;    // f16 d, f16 m, 16 bytes of nibbles
    case BALCONY_GGML_Q5_0: return 22;    // f16 d, 4 bytes of fifth bits, 16 bytes of nibbles
    case BALCONY_GGML_Q5_1: return 24;    // f16 d, f16 m, 4 + 16 bytes
    case BALCONY_GGML_Q8_0: return 34;    // f16 d, 32 int8
    case BALCONY_GGML_Q8_1: return 36;    // f16 d, f16 s = d * sum(q), 32 int8
    case BALCONY_GGML_Q2_K: return 84;    // 16 scale/min bytes, 64 bytes of 2-bit values, f16 d, f16 dmin
    case BALCONY_GGML_Q3_K: return 110;   // 32 bytes high bits, 64 bytes low bits, 12 scale bytes, f16 d
    case BALCONY_GGML_Q4_K: return 144;   // f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles
    case BALCONY_GGML_Q5_K: return 176;   // f16 d, f16 dmin, 12 scale bytes, 32 high bits, 128 nibbles
    case BALCONY_GGML_Q6_K: return 210;   // 128 low nibbles, 64 high 2-bits, 16 int8 scales, f16 d
    case BALCONY_GGML_Q8_K: return 292;   // f32 d, 256 int8, 16 int16 sums of 16
    case BALCONY_GGML_IQ4_NL: return 18;  // f16 d, 16 bytes of nibbles (non-linear table)
    case BALCONY_GGML_IQ4_XS: return 136; // f16 d, u16 high scale bits, 4 low scale bytes, 128 nibbles
    default: return 0;
    }
}

int balcony_quant_is_weight_type(int type) {
    return balcony_quant_block_values(type) != 0 && type != BALCONY_GGML_Q8_1 && type != BALCONY_GGML_Q8_K;
}

int balcony_quant_dot_type(int type) {
    switch (type) {
    case BALCONY_GGML_Q4_1: case BALCONY_GGML_Q5_1:
        return BALCONY_GGML_Q8_1;
    case BALCONY_GGML_Q2_K: case BALCONY_GGML_Q3_K: case BALCONY_GGML_Q4_K: case BALCONY_GGML_Q5_K:
    case BALCONY_GGML_Q6_K: case BALCONY_GGML_IQ4_XS:
        return BALCONY_GGML_Q8_K;
    default:
        return BALCONY_GGML_Q8_0;
    }
}

void balcony_quant_activations(int dot_type, const float *x, size_t cols, void *out) {
    if (balcony_q_legacy_quantize_activations(dot_type, x, cols, out)) return;
    balcony_q_k_quantize_activations(dot_type, x, cols, out);
}

static void gemv(int type, const void *w, size_t cols, const void *xq, float *y, size_t r0, size_t r1, int portable) {
    if (balcony_q_legacy_gemv(type, w, cols, xq, y, r0, r1, portable)) return;
    balcony_q_k_gemv(type, w, cols, xq, y, r0, r1, portable);
}

static void dequantize(int type, const void *w, size_t cols, float *out, size_t r0, size_t r1, int portable) {
    if (balcony_q_legacy_dequantize(type, w, cols, out, r0, r1, portable)) return;
    balcony_q_k_dequantize(type, w, cols, out, r0, r1, portable);
}

void balcony_quant_gemv(int type, const void *w, size_t cols, const void *xq, float *y, size_t r0, size_t r1) {
    gemv(type, w, cols, xq, y, r0, r1, 0);
}

void balcony_quant_gemv_portable(int type, const void *w, size_t cols, const void *xq, float *y, size_t r0, size_t r1) {
    gemv(type, w, cols, xq, y, r0, r1, 1);
}

void balcony_quant_dequantize_rows(int type, const void *w, size_t cols, float *out, size_t r0, size_t r1) {
    dequantize(type, w, cols, out, r0, r1, 0);
}

void balcony_quant_dequantize_rows_portable(int type, const void *w, size_t cols, float *out, size_t r0, size_t r1) {
    dequantize(type, w, cols, out, r0, r1, 1);
}
