#ifndef BALCONY_HALF_CONVERT_H
#define BALCONY_HALF_CONVERT_H

#include <stdint.h>
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

#endif
