#ifndef BALCONY_HALF_CONVERT_H
#define BALCONY_HALF_CONVERT_H

#include <stdint.h>
#include <math.h>
#include <string.h>

/// IEEE half (F16) to float, exactly (every half value is a float): the portable conversion,
/// also for the Q8_0 block scales. F16C's vcvtph2ps gives the same values.
static inline float balcony_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// bfloat16 to float: the top half of the float's bits.
static inline float balcony_bf16_to_fp32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// F32 to IEEE half, rounding to nearest even, as F16C's vcvtps2ph (what llama.cpp's
/// GGML_CPU_FP32_TO_FP16 is on x86) and ggml's portable conversion do. Written out so that every
/// CPU stores the same bits.
static inline uint16_t balcony_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00;           // NaN (quiet)
    if (ax >= 0x47800000u) return sign | 0x7c00;          // 65536 and up (and inf): infinity
    if (ax < 0x38800000u) {
        // Below the smallest normal half (2^-14): a multiple of 2^-24. Scaling by 2^24 is exact,
        // and rintf rounds to nearest even; 1024 comes out as the smallest normal, 0x0400.
        float units = fabsf(f) * 16777216.0f;
        return sign | (uint16_t)rintf(units);
    }
    // Normal: rebias the exponent (127 -> 15) and round away the low 13 mantissa bits to nearest
    // even; a carry out of the mantissa steps the exponent, up to infinity past 65504.
    uint32_t r = ax - 0x38000000u;
    r += 0x0fffu + ((r >> 13) & 1u);
    return sign | (uint16_t)(r >> 13);
}

#endif
