#include "ckernels.h"
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define BALCONY_X86 1
#endif

// Eight floats as a generic vector (two SSE registers in the portable build, one AVX register in
// the AVX2 build). Loads and stores go through an unaligned, may-alias type; they are macros
// because a function returning a 32-byte vector would change ABI between the two builds.
typedef float tk_v8 __attribute__((vector_size(32)));
typedef float tk_v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define tk_ld8(p) (*(const tk_v8u *)(p))
#define tk_st8(p, v) (*(tk_v8u *)(p) = (v))
#define tk_hsum8(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))

/// exp(x) for x in about [-87, 88] (clamped outside), Cephes' single-precision polynomial
/// (relative error near 1e-7). Branch-free so that loops calling it vectorize.
static inline float tk_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    // Round to nearest by the 1.5 * 2^23 trick (|x * log2 e| < 2^22 here): vectorizes everywhere.
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/// tk_exp on eight floats at once, written with vector types so that every lane takes the same
/// operations as tk_exp (and the portable build gets two SSE halves). For loops whose length is
/// a multiple of 8 by construction, where a vectorized scalar loop would still test for a tail.
/// Inputs below -86 give exactly 0 (as with flush-to-zero): the smallest results otherwise come
/// out of the last multiply as denormals, and on this machine each one costs a microcode assist
/// of about a hundred cycles. A macro (a statement expression), like tk_ld8, because a function
/// taking or returning a 32-byte vector would change ABI between the two builds.
typedef int tk_i8 __attribute__((vector_size(32)));
#define tk_exp8(xin)                                                                   \
    ({                                                                                 \
        tk_v8 xi_ = (xin);                                                             \
        tk_v8 x_ = __builtin_elementwise_max(xi_, (tk_v8){0} - 86.0f);                 \
        x_ = __builtin_elementwise_min(x_, (tk_v8){0} + 88.0f);                        \
        tk_v8 n_ = (x_ * 1.44269504088896341f + 12582912.0f) - 12582912.0f;            \
        tk_v8 r_ = x_ - n_ * 0.693359375f;                                             \
        r_ = r_ + n_ * 2.12194440e-4f;                                                 \
        tk_v8 p_ = r_ * 1.9875691500e-4f + 1.3981999507e-3f;                           \
        p_ = p_ * r_ + 8.3334519073e-3f;                                               \
        p_ = p_ * r_ + 4.1665795894e-2f;                                               \
        p_ = p_ * r_ + 1.6666665459e-1f;                                               \
        p_ = p_ * r_ + 5.0000001201e-1f;                                               \
        p_ = p_ * r_ * r_ + r_ + 1.0f;                                                 \
        tk_i8 bits_ = (__builtin_convertvector(n_, tk_i8) + 127) << 23;                \
        tk_v8 e_ = p_ * (tk_v8)bits_;                                                  \
        (tk_v8)((tk_i8)e_ & (xi_ >= -86.0f));                                          \
    })

/// Offset of query row t in one head's probabilities: rows of tile b (t / 8) hold 8 (b + 1)
/// floats, so tiles 0 ..< b take 64 b (b + 1) / 2.
static inline size_t tk_probs_row(size_t t) {
    size_t b = t / 8;
    return 32 * b * (b + 1) + (t % 8) * 8 * (b + 1);
}

/// Floats of one head's probabilities for T queries.
static inline size_t tk_probs_head(size_t T) { return tk_probs_row((T + 7) & ~(size_t)7); }

size_t balcony_attention_probs_count(size_t tokens) { return tk_probs_head(tokens); }

#define TK(name) tk_portable_##name
#define TK_ATTR
#include "training_impl.h"
#undef TK
#undef TK_ATTR

#ifdef BALCONY_X86
#define TK(name) tk_avx2_##name
#define TK_ATTR __attribute__((target("avx2,fma")))
#include "training_impl.h"
#undef TK
#undef TK_ATTR

static _Atomic int tk_portable_only = 0;

static int tk_has_avx2(void) {
    static int cached = -1;
    // Read and written atomically: threads may ask at once (ThreadSanitizer flagged the plain int);
    // every writer stores the same value, so relaxed order is enough.
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v && !atomic_load_explicit(&tk_portable_only, memory_order_relaxed);
}
#define DISPATCH(name, ...) \
    do { if (tk_has_avx2()) tk_avx2_##name(__VA_ARGS__); else tk_portable_##name(__VA_ARGS__); } while (0)
#else
#define DISPATCH(name, ...) tk_portable_##name(__VA_ARGS__)
#endif

size_t balcony_attention_forward_scratch(size_t tokens, size_t head_dim) {
    size_t tp = (tokens + 7) & ~(size_t)7;
    // + 8 rows of probabilities for a forward that does not keep them.
    return (head_dim % 8 == 0 ? head_dim * tp + 8 * head_dim + tp : 2 * head_dim * tp + tp) + 8 * tp;
}

size_t balcony_attention_backward_scratch(size_t tokens, size_t head_dim, size_t heads) {
    size_t tp = (tokens + 7) & ~(size_t)7;
    return head_dim % 8 == 0 ? 3 * head_dim * tp + 8 * head_dim + tp + 8 * heads * tp : 4 * head_dim * tp + tp;
}

void balcony_attention_forward(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv, size_t tokens,
                               size_t head_dim, size_t heads, float scale, float *probs, float *out, size_t ldo,
                               float *scratch) {
    if (head_dim % 8 == 0)
        DISPATCH(attention_forward, q, ldq, k, v, ldkv, tokens, head_dim, heads, scale, probs, out, ldo, scratch);
    else
        DISPATCH(attention_forward_any, q, ldq, k, v, ldkv, tokens, head_dim, heads, scale, probs, out, ldo, scratch);
}

void balcony_attention_backward(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv, size_t tokens,
                                size_t head_dim, size_t heads, float scale, const float *probs, const float *dout,
                                size_t ldo, float *dq, float *dk, float *dv, float *scratch) {
    if (head_dim % 8 == 0)
        DISPATCH(attention_backward, q, ldq, k, v, ldkv, tokens, head_dim, heads, scale, probs, dout, ldo, dq, dk, dv,
                 scratch);
    else
        DISPATCH(attention_backward_any, q, ldq, k, v, ldkv, tokens, head_dim, heads, scale, probs, dout, ldo, dq, dk,
                 dv, scratch);
}

void balcony_teacher_row(const float *z, size_t vocab, float inv_temperature, float *log_p, float *p, float *log_p1,
                         float *p1) {
    DISPATCH(teacher_row, z, vocab, inv_temperature, log_p, p, log_p1, p1);
}

void balcony_exit_row(float *z, size_t vocab, const float *log_p, const float *p, const float *log_p1, const float *p1,
                      float temperature, float ce_weight, float scale, int gradients, float *scratch, double *kl,
                      double *kl1, float *log_z1) {
    DISPATCH(exit_row, z, vocab, log_p, p, log_p1, p1, temperature, ce_weight, scale, gradients, scratch, kl, kl1, log_z1);
}

void balcony_swiglu_forward(const float *gate, const float *up, float *out, size_t n) {
    DISPATCH(swiglu_forward, gate, up, out, n);
}

void balcony_swiglu_backward(const float *gate, const float *up, float *d_act, float *d_up, size_t n) {
    DISPATCH(swiglu_backward, gate, up, d_act, d_up, n);
}

void balcony_rmsnorm_forward(const float *x, const float *weight, float *out, float *inv_rms, size_t rows, size_t n,
                             float eps) {
    DISPATCH(rmsnorm_forward, x, weight, out, inv_rms, rows, n, eps);
}

void balcony_rmsnorm_backward_input(const float *x, const float *inv_rms, const float *weight, const float *d_out,
                                    float *d_x, size_t rows, size_t n, int accumulate) {
    DISPATCH(rmsnorm_backward_input, x, inv_rms, weight, d_out, d_x, rows, n, accumulate);
}

void balcony_softmax(float *x, size_t n) {
    if (n > 0) DISPATCH(softmax_row, x, n, 0);
}

float balcony_exp(float x) { return tk_exp(x); }

int balcony_training_kernels_use_avx2(int portable_only) {
#ifdef BALCONY_X86
    atomic_store_explicit(&tk_portable_only, portable_only, memory_order_relaxed);
    return tk_has_avx2();
#else
    (void)portable_only;
    return 0;
#endif
}
