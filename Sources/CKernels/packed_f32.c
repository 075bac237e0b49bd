#include "ckernels.h"
#include "simd_x86.h"

#include <string.h>

/// Lossless packed F32 (see ckernels.h and docs/performance.md). A weight's 32 bits are its
/// sign, an 8-bit exponent field and 23 mantissa bits. The sign and mantissa are kept as they
/// are (3 bytes); the exponent becomes a 4-bit code: 1...15 stand for the row's fifteen largest
/// exponent fields (top - 14 ... top), 0 for the field 0 itself (zeros and subnormals, which
/// then need nothing else). A value below the window is an exception: it is stored as +0 in
/// the stream and listed, with its column, beside it. Decode reads 28 bits a weight instead of 32.

enum { GROUP_VALUES = 32, GROUP_BYTES = 112, MANTISSA_BYTES = 96 };

size_t balcony_packed_f32_row_bytes(size_t cols) { return cols / GROUP_VALUES * GROUP_BYTES; }

/// The lowest exponent field the window of a row whose largest is `top` holds (never 0: that
/// field has code 0 of its own).
static inline unsigned window_low(unsigned top) { return top - 14; }

static inline unsigned effective_top(unsigned top) { return top < 15 ? 15 : top; }

void balcony_packed_f32_scan(const float *w, size_t cols, size_t row_begin, size_t row_end,
                             uint8_t *top, uint32_t *exceptions) {
    for (size_t r = row_begin; r < row_end; r++) {
        const uint32_t *bits = (const uint32_t *)(const void *)(w + r * cols);
        unsigned largest = 0;
        for (size_t i = 0; i < cols; i++) {
            unsigned e = (bits[i] >> 23) & 0xFF;
            if (e > largest) largest = e;
        }
        largest = effective_top(largest);
        unsigned low = window_low(largest);
        uint32_t n = 0;
        for (size_t i = 0; i < cols; i++) {
            unsigned e = (bits[i] >> 23) & 0xFF;
            n += e != 0 && e < low;
        }
        top[r] = (uint8_t)largest;
        exceptions[r] = n;
    }
}

void balcony_packed_f32_pack_rows(const float *w, size_t cols, size_t row_begin, size_t row_end,
                                  const uint8_t *top, const uint32_t *exception_start,
                                  uint8_t *groups, uint32_t *exception_column, float *exception_value) {
    size_t row_bytes = balcony_packed_f32_row_bytes(cols);
    for (size_t r = row_begin; r < row_end; r++) {
        const uint32_t *bits = (const uint32_t *)(const void *)(w + r * cols);
        unsigned low = window_low(top[r]);
        uint32_t n = exception_start[r];
        uint8_t *g = groups + r * row_bytes;
        for (size_t i0 = 0; i0 < cols; i0 += GROUP_VALUES, g += GROUP_BYTES) {
            // A group is written whole, left to right: each weight's 3 bytes with one 4-byte
            // little-endian store whose last byte the next weight overwrites (the codes,
            // written after the mantissas, overwrite the last one's), then the 16 bytes of codes.
            uint8_t codes[GROUP_VALUES / 2];
            for (size_t j = 0; j < GROUP_VALUES; j += 2) {
                unsigned pair = 0;
                for (size_t h = 0; h < 2; h++) {
                    uint32_t v = bits[i0 + j + h];
                    unsigned e = (v >> 23) & 0xFF;
                    uint32_t kept = (v & 0x7FFFFF) | ((v >> 31) << 23);  // sign at bit 23
                    unsigned code = e == 0 ? 0 : e - low + 1;
                    if (e != 0 && e < low) {
                        exception_column[n] = (uint32_t)(i0 + j + h);
                        exception_value[n] = w[r * cols + i0 + j + h];
                        n++;
                        kept = 0;
                        code = 0;
                    }
                    memcpy(g + 3 * (j + h), &kept, 4);
                    pair |= code << (4 * h);
                }
                codes[j / 2] = (uint8_t)pair;
            }
            memcpy(g + MANTISSA_BYTES, codes, sizeof codes);
        }
    }
}

/// The value of weight j of a group (portable decode; exceptions read as +0).
static inline float decode_one(const uint8_t *g, size_t j, unsigned top) {
    uint32_t kept = g[3 * j] | ((uint32_t)g[3 * j + 1] << 8) | ((uint32_t)g[3 * j + 2] << 16);
    unsigned code = (g[MANTISSA_BYTES + j / 2] >> (4 * (j % 2))) & 0xF;
    uint32_t e = code == 0 ? 0 : window_low(top) + code - 1;
    uint32_t bits = ((kept >> 23) << 31) | (e << 23) | (kept & 0x7FFFFF);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// Weight i of row r, exact: exceptions come from the list, which `k` walks in column order.
static inline float weight_at(const balcony_packed_f32 *p, const uint8_t *row, size_t r, size_t i, uint32_t *k) {
    if (*k < p->exception_start[r + 1] && p->exception_column[*k] == i) return p->exception_value[(*k)++];
    return decode_one(row + (i / GROUP_VALUES) * GROUP_BYTES, i % GROUP_VALUES, p->top[r]);
}

void balcony_packed_f32_unpack_rows(const balcony_packed_f32 *p, float *out, size_t row_begin, size_t row_end) {
    size_t cols = p->cols, row_bytes = balcony_packed_f32_row_bytes(cols);
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = p->groups + r * row_bytes;
        float *o = out + (r - row_begin) * cols;
        uint32_t k = p->exception_start[r];
        for (size_t i = 0; i < cols; i++) o[i] = weight_at(p, row, r, i, &k);
    }
}

/// The portable F32 row kernel's arithmetic (gemv_f32.c: eight partial sums over columns i + j,
/// combined pairwise) on the unpacked weights, for each of the m activation rows.
static void gemv_portable(const balcony_packed_f32 *p, const float *x, size_t m, float *y, size_t ldy, size_t r0, size_t r1) {
    size_t cols = p->cols, row_bytes = balcony_packed_f32_row_bytes(cols);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = p->groups + r * row_bytes;
        for (size_t t = 0; t < m; t++) {
            const float *xt = x + t * cols;
            uint32_t k = p->exception_start[r];
            float acc[8] = {0};
            for (size_t i = 0; i < cols; i += 8)
                for (int j = 0; j < 8; j++) acc[j] += weight_at(p, row, r, i + j, &k) * xt[i + j];
            y[t * ldy + r] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        }
    }
}

#ifdef BALCONY_X86
/// Eight weights from 24 bytes of sign and mantissa and 4 bytes of codes. The 24 bytes are
/// spread to one 3-byte group per lane, with each group's top byte copied into the lane's top
/// byte, so the sign lands on bit 31; the mask clears what the copy put in the exponent field,
/// and the exponent comes from the row's table of the fifteen fields (`lut`, indexed by code).
__attribute__((target("avx2,fma,f16c")))
static inline __m256 decode8(const uint8_t *m, const uint8_t *c, __m256i lut) {
    const __m256i spread = _mm256_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6);
    const __m256i bytes = _mm256_setr_epi8(0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11,
                                           0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11);
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    __m256i raw = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(const void *)m), spread);
    raw = _mm256_and_si256(_mm256_shuffle_epi8(raw, bytes), _mm256_set1_epi32((int)0x807FFFFF));
    int32_t packed_codes;
    memcpy(&packed_codes, c, 4);
    __m256i code = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(packed_codes), shifts), _mm256_set1_epi32(15));
    __m256i exponent = _mm256_slli_epi32(_mm256_shuffle_epi8(lut, code), 23);
    return _mm256_castsi256_ps(_mm256_or_si256(raw, exponent));
}

/// Bytes ahead of the group being decoded that each step prefetches. The decode is dense enough
/// that the out-of-order window no longer reaches far ahead on its own: without the prefetch the
/// packed rows stream at half the rate of plain F32 rows; with 3-4 KiB, 5-11 % faster than them.
enum { PREFETCH_BYTES = 3584 };

/// The 32 weights of group `g` (columns base ..< base + 32) of row r, exact: the stream's +0 at
/// each exception is replaced by its value. `k` is the row's next exception.
__attribute__((target("avx2,fma,f16c")))
static inline void decode_group(const balcony_packed_f32 *p, const uint8_t *g, __m256i lut, size_t r, size_t base,
                                uint32_t *k, __m256 w[4]) {
    w[0] = decode8(g, g + MANTISSA_BYTES, lut);
    w[1] = decode8(g + 24, g + MANTISSA_BYTES + 4, lut);
    w[2] = decode8(g + 48, g + MANTISSA_BYTES + 8, lut);
    w[3] = decode8(g + 72, g + MANTISSA_BYTES + 12, lut);
    uint32_t end = p->exception_start[r + 1];
    if (*k < end && p->exception_column[*k] < base + GROUP_VALUES) {
        float values[GROUP_VALUES];
        for (int j = 0; j < 4; j++) _mm256_storeu_ps(values + 8 * j, w[j]);
        for (; *k < end && p->exception_column[*k] < base + GROUP_VALUES; (*k)++)
            values[p->exception_column[*k] - base] = p->exception_value[*k];
        for (int j = 0; j < 4; j++) w[j] = _mm256_loadu_ps(values + 8 * j);
    }
}

/// The row's exponent table: code c > 0 stands for the field window_low + c - 1, code 0 for 0.
__attribute__((target("avx2,fma,f16c")))
static inline __m256i row_table(unsigned top) {
    const __m256i codes = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                           0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m256i lut = _mm256_add_epi8(codes, _mm256_set1_epi8((char)(window_low(top) - 1)));
    return _mm256_and_si256(lut, _mm256_cmpgt_epi8(codes, _mm256_setzero_si256()));
}

/// Activation rows whose accumulators one pass over a weight row carries, and weights decoded
/// into the buffer they read at a time (4 KiB, which stays in L1).
enum { ROWS_PER_PASS = 16, CHUNK_VALUES = 1024 };

/// Each weight row is decoded once, exactly, and goes through gemv_f32.c's AVX2 arithmetic for
/// every activation row (four accumulators over 32 columns, the same horizontal sum), so every
/// result is bit for bit what balcony_f32_gemv gives on the unpacked matrix.
__attribute__((target("avx2,fma,f16c")))
static void gemv_avx2(const balcony_packed_f32 *p, const float *x, size_t m, float *y, size_t ldy, size_t r0, size_t r1) {
    size_t cols = p->cols, row_bytes = balcony_packed_f32_row_bytes(cols);
    for (size_t r = r0; r < r1; r++) {
        __m256i lut = row_table(p->top[r]);
        const uint8_t *row = p->groups + r * row_bytes;
        if (m == 1) {
            // Decode's case, with the accumulators in registers.
            uint32_t k = p->exception_start[r];
            const uint8_t *g = row;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            for (size_t i = 0; i < cols; i += GROUP_VALUES, g += GROUP_BYTES) {
                _mm_prefetch((const char *)g + PREFETCH_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)g + PREFETCH_BYTES + 64, _MM_HINT_T0);
                __m256 w[4];
                decode_group(p, g, lut, r, i, &k, w);
                a0 = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(x + i), a0);
                a1 = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(x + i + 8), a1);
                a2 = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(x + i + 16), a2);
                a3 = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(x + i + 24), a3);
            }
            y[r] = balcony_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
            continue;
        }
        // Several activation rows: the row is decoded a chunk at a time into a buffer in L1, and
        // each activation row passes over the chunk with its accumulators in registers, kept in
        // memory between chunks (the same additions in the same order as in one pass).
        __m256 acc[ROWS_PER_PASS][4];
        for (size_t t0 = 0; t0 < m; t0 += ROWS_PER_PASS) {
            size_t n = m - t0 < ROWS_PER_PASS ? m - t0 : ROWS_PER_PASS;
            for (size_t t = 0; t < n; t++)
                for (int j = 0; j < 4; j++) acc[t][j] = _mm256_setzero_ps();
            uint32_t k = p->exception_start[r];
            const uint8_t *g = row;
            for (size_t c0 = 0; c0 < cols; c0 += CHUNK_VALUES) {
                size_t c1 = c0 + CHUNK_VALUES < cols ? c0 + CHUNK_VALUES : cols;
                float chunk[CHUNK_VALUES] __attribute__((aligned(32)));
                for (size_t i = c0; i < c1; i += GROUP_VALUES, g += GROUP_BYTES) {
                    _mm_prefetch((const char *)g + PREFETCH_BYTES, _MM_HINT_T0);
                    _mm_prefetch((const char *)g + PREFETCH_BYTES + 64, _MM_HINT_T0);
                    __m256 w[4];
                    decode_group(p, g, lut, r, i, &k, w);
                    for (int j = 0; j < 4; j++) _mm256_store_ps(chunk + (i - c0) + 8 * j, w[j]);
                }
                for (size_t t = 0; t < n; t++) {
                    const float *xt = x + (t0 + t) * cols;
                    __m256 a0 = acc[t][0], a1 = acc[t][1], a2 = acc[t][2], a3 = acc[t][3];
                    for (size_t i = c0; i < c1; i += GROUP_VALUES) {
                        const float *w = chunk + (i - c0);
                        a0 = _mm256_fmadd_ps(_mm256_load_ps(w), _mm256_loadu_ps(xt + i), a0);
                        a1 = _mm256_fmadd_ps(_mm256_load_ps(w + 8), _mm256_loadu_ps(xt + i + 8), a1);
                        a2 = _mm256_fmadd_ps(_mm256_load_ps(w + 16), _mm256_loadu_ps(xt + i + 16), a2);
                        a3 = _mm256_fmadd_ps(_mm256_load_ps(w + 24), _mm256_loadu_ps(xt + i + 24), a3);
                    }
                    acc[t][0] = a0; acc[t][1] = a1; acc[t][2] = a2; acc[t][3] = a3;
                }
            }
            for (size_t t = 0; t < n; t++)
                y[(t0 + t) * ldy + r] = balcony_hsum8(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3])));
        }
    }
}
#endif

void balcony_packed_f32_gemv(const balcony_packed_f32 *p, const float *x, size_t m, float *y, size_t ldy,
                             size_t row_begin, size_t row_end) {
#ifdef BALCONY_X86
    if (balcony_has_avx2()) { gemv_avx2(p, x, m, y, ldy, row_begin, row_end); return; }
#endif
    gemv_portable(p, x, m, y, ldy, row_begin, row_end);
}

void balcony_packed_f32_gemv_portable(const balcony_packed_f32 *p, const float *x, size_t m, float *y, size_t ldy,
                                      size_t row_begin, size_t row_end) {
    gemv_portable(p, x, m, y, ldy, row_begin, row_end);
}

int balcony_cpu_has_avx2(void) {
#ifdef BALCONY_X86
    return balcony_has_avx2();
#else
    return 0;
#endif
}
