// Weight quantization: F32 rows into GGML blocks, as llama.cpp's reference quantizers
// (quantize_row_*_ref in ggml-quants.c, which gguf-py's numpy quantizer mirrors bit for bit) make
// them. Used to store balconies in the base model's block types; not on any hot path.

#include <float.h>
#include <math.h>
#include <string.h>

#include "half_convert.h"
#include "quants.h"

#define QK 32

static void put_half(uint8_t *p, float v) {
    uint16_t h = balcony_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/// The value of largest magnitude (the first one, on ties), with its sign.
static float signed_absmax(const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, float *lo, float *hi) {
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
        if (x[j] < mn) mn = x[j];
        if (x[j] > mx) mx = x[j];
    }
    *lo = mn;
    *hi = mx;
}

static uint8_t min_u8(int a, int b) { return (uint8_t)(a < b ? a : b); }

// block_q4_0: half d, 16 bytes of nibbles (low nibble j, high nibble j + 16).
static void q4_0_block(const float *x, uint8_t *y) {
    const float d = signed_absmax(x) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    put_half(y, d);
    for (int j = 0; j < QK / 2; j++) {
        const uint8_t lo = min_u8(15, (int8_t)(x[j] * id + 8.5f));
        const uint8_t hi = min_u8(15, (int8_t)(x[j + QK / 2] * id + 8.5f));
        y[2 + j] = (uint8_t)(lo | (hi << 4));
    }
}

// block_q4_1: half d, half m, 16 bytes of nibbles.
static void q4_1_block(const float *x, uint8_t *y) {
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    put_half(y, d);
    put_half(y + 2, mn);
    for (int j = 0; j < QK / 2; j++) {
        const uint8_t lo = min_u8(15, (int8_t)((x[j] - mn) * id + 0.5f));
        const uint8_t hi = min_u8(15, (int8_t)((x[j + QK / 2] - mn) * id + 0.5f));
        y[4 + j] = (uint8_t)(lo | (hi << 4));
    }
}

// block_q5_0: half d, 32 high bits, 16 bytes of low nibbles.
static void q5_0_block(const float *x, uint8_t *y) {
    const float d = signed_absmax(x) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    put_half(y, d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        const uint8_t lo = min_u8(31, (int8_t)(x[j] * id + 16.5f));
        const uint8_t hi = min_u8(31, (int8_t)(x[j + QK / 2] * id + 16.5f));
        y[6 + j] = (uint8_t)((lo & 0x0F) | ((hi & 0x0F) << 4));
        qh |= ((lo & 0x10u) >> 4) << j;
        qh |= ((hi & 0x10u) >> 4) << (j + QK / 2);
    }
    memcpy(y + 2, &qh, 4);
}

// block_q5_1: half d, half m, 32 high bits, 16 bytes of low nibbles.
static void q5_1_block(const float *x, uint8_t *y) {
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    put_half(y, d);
    put_half(y + 2, mn);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        const uint8_t lo = (uint8_t)((x[j] - mn) * id + 0.5f);
        const uint8_t hi = (uint8_t)((x[j + QK / 2] - mn) * id + 0.5f);
        y[8 + j] = (uint8_t)((lo & 0x0F) | ((hi & 0x0F) << 4));
        qh |= ((lo & 0x10u) >> 4) << j;
        qh |= ((hi & 0x10u) >> 4) << (j + QK / 2);
    }
    memcpy(y + 4, &qh, 4);
}

// block_q8_0: half d, 32 signed bytes; rounded half away from zero (roundf), unlike the x86
// activation quantizer in quants_legacy.c, which rounds to nearest even.
static void q8_0_block(const float *x, uint8_t *y) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    put_half(y, d);
    for (int j = 0; j < QK; j++) y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

int balcony_quant_can_quantize(int type) {
    switch (type) {
    case BALCONY_GGML_Q4_0: case BALCONY_GGML_Q4_1: case BALCONY_GGML_Q5_0: case BALCONY_GGML_Q5_1:
    case BALCONY_GGML_Q8_0:
        return 1;
    default:
        return 0;
    }
}

void balcony_quant_quantize_rows(int type, const float *x, size_t cols, void *out, size_t rows) {
    void (*block)(const float *, uint8_t *);
    switch (type) {
    case BALCONY_GGML_Q4_0: block = q4_0_block; break;
    case BALCONY_GGML_Q4_1: block = q4_1_block; break;
    case BALCONY_GGML_Q5_0: block = q5_0_block; break;
    case BALCONY_GGML_Q5_1: block = q5_1_block; break;
    case BALCONY_GGML_Q8_0: block = q8_0_block; break;
    default: return;
    }
    const size_t bytes = balcony_quant_block_bytes(type), blocks = rows * (cols / QK);
    uint8_t *y = (uint8_t *)out;
    for (size_t b = 0; b < blocks; b++) block(x + b * QK, y + b * bytes);
}
