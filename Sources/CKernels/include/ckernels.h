#ifndef BALCONY_CKERNELS_H
#define BALCONY_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "quants.h"

/// y[r] = W[r, :] . x for r in [row_begin, row_end); W is F32, row-major, cols per row. Rows are
/// walked one after another (one sequential stream, prefetched ahead); AVX2/FMA when present.
void balcony_f32_gemv(const float *w, size_t cols, const float *x, float *y, size_t row_begin, size_t row_end);

/// F16 and BF16 weights kept in 16 bits (half_weights.c); `bf16` is 1 for BF16, 0 for F16.
/// y[r] = W[r, :] . x for r in [row_begin, row_end), bit for bit what balcony_f32_gemv gives on
/// the weights widened to F32 (every 16-bit value is exactly a float; same arithmetic, same order).
void balcony_half_gemv(const uint16_t *w, int bf16, size_t cols, const float *x, float *y, size_t row_begin, size_t row_end);

/// The portable C version of balcony_half_gemv (what non-x86 CPUs run), callable anywhere for tests.
void balcony_half_gemv_portable(const uint16_t *w, int bf16, size_t cols, const float *x, float *y, size_t row_begin, size_t row_end);

/// Widens rows [row_begin, row_end) of W into out (row-major floats, cols per row, from out).
void balcony_half_widen_rows(const uint16_t *w, int bf16, size_t cols, float *out, size_t row_begin, size_t row_end);

/// Lossless packed F32 (packed_f32.c): each weight in 28 bits instead of 32, for decode, which
/// reads every weight once per token and is bound by memory bandwidth. Rows are cols / 32
/// groups of 112 bytes (32 x 3 bytes of sign and mantissa, then 32 4-bit exponent codes
/// relative to the row's largest exponent, `top`); the few values below the row's window of
/// fifteen exponents are listed as exceptions (row r's are exception_start[r] ..<
/// exception_start[r + 1]). cols must be a multiple of 32.
typedef struct {
    const uint8_t *groups;
    const uint8_t *top;
    const uint32_t *exception_start;
    const uint32_t *exception_column;
    const float *exception_value;
    size_t cols;
} balcony_packed_f32;

/// Bytes of one packed row.
size_t balcony_packed_f32_row_bytes(size_t cols);

/// First pass of packing rows [row_begin, row_end) of W: each row's top exponent field and its
/// number of exceptions.
void balcony_packed_f32_scan(const float *w, size_t cols, size_t row_begin, size_t row_end,
                             uint8_t *top, uint32_t *exceptions);

/// Second pass: writes the rows' groups and exceptions (exception_start from the scan's counts).
void balcony_packed_f32_pack_rows(const float *w, size_t cols, size_t row_begin, size_t row_end,
                                  const uint8_t *top, const uint32_t *exception_start,
                                  uint8_t *groups, uint32_t *exception_column, float *exception_value);

/// Rows [row_begin, row_end) back as F32, bit for bit, into out (cols per row, from out).
void balcony_packed_f32_unpack_rows(const balcony_packed_f32 *p, float *out, size_t row_begin, size_t row_end);

/// y[t * ldy + r] = W[r, :] . x[t, :] for the m activation rows t (x rows are cols apart) and r in
/// [row_begin, row_end). Each weight row is decoded once for all m, exactly, and multiplied with
/// balcony_f32_gemv's arithmetic: every result is bit for bit what balcony_f32_gemv gives on the
/// unpacked matrix, one activation row at a time.
void balcony_packed_f32_gemv(const balcony_packed_f32 *p, const float *x, size_t m, float *y, size_t ldy,
                             size_t row_begin, size_t row_end);

/// The portable C version of balcony_packed_f32_gemv (the one non-x86 CPUs run), callable
/// anywhere so that tests check it on machines where the AVX2 one is chosen.
void balcony_packed_f32_gemv_portable(const balcony_packed_f32 *p, const float *x, size_t m, float *y, size_t ldy,
                                      size_t row_begin, size_t row_end);

/// 1 when the CPU has AVX2, FMA and F16C (the fast kernels' requirement).
int balcony_cpu_has_avx2(void);

/// Attention of one query head q[head_dim] over `length` cached keys and values (row stride
/// `stride` floats, already offset to the head's columns): scores[length] receives the
/// probabilities, out[head_dim] the weighted sum of values. Decode's kernel; AVX2/FMA when present.
void balcony_attend_one(const float *q, const float *keys, const float *values, size_t stride, size_t length,
                        size_t head_dim, float scale, float *scores, float *out);

/// Training kernels (training.c), AVX2/FMA when the CPU has them. Row-major; `ld*` are row strides.

/// Causal attention of `heads` query heads sharing one key/value head, within one sequence of
/// `tokens` positions. probs receives each head's probabilities (balcony_attention_probs_count
/// floats per head, heads one after another), the lower triangle stored row by row in blocks of
/// eight keys (row t holds keys 0 ..< 8 (t / 8 + 1), zero past t); with probs NULL they are
/// formed in scratch, eight rows at a time, and not kept (a forward without backward). out rows
/// have stride ldo. scratch: see the _scratch function.
void balcony_attention_forward(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv, size_t tokens,
                               size_t head_dim, size_t heads, float scale, float *probs, float *out, size_t ldo,
                               float *scratch);

/// Floats of one head's probabilities for `tokens` queries (about tokens^2 / 2).
size_t balcony_attention_probs_count(size_t tokens);

/// Floats of scratch balcony_attention_forward needs.
size_t balcony_attention_forward_scratch(size_t tokens, size_t head_dim);

/// Its backward: writes dq (the group's heads), and dk, dv (summed over the group's heads).
void balcony_attention_backward(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv, size_t tokens,
                                size_t head_dim, size_t heads, float scale, const float *probs, const float *dout,
                                size_t ldo, float *dq, float *dk, float *dv, float *scratch);

/// Floats of scratch balcony_attention_backward needs.
size_t balcony_attention_backward_scratch(size_t tokens, size_t head_dim, size_t heads);

/// Teacher distribution of one row of logits z: log p and p at temperature 1/inv_temperature
/// (log_p may be z itself); when log_p1 is not NULL, also log p and p at temperature 1.
void balcony_teacher_row(const float *z, size_t vocab, float inv_temperature, float *log_p, float *p, float *log_p1,
                         float *p1);

/// One exit row: from logits z, with the teacher's log_p/p (and log_p1/p1 at temperature 1, or
/// NULL when the temperature is 1), computes KL_T (kl), plain KL (kl1) and log-normalizer at
/// temperature 1 (log_z1); scratch (vocab floats) receives (z - max) / T. With gradients, z
/// becomes scale * (T (q_T - p_T) + ce_weight * q) (the target's -1 is the caller's).
void balcony_exit_row(float *z, size_t vocab, const float *log_p, const float *p, const float *log_p1, const float *p1,
                      float temperature, float ce_weight, float scale, int gradients, float *scratch, double *kl,
                      double *kl1, float *log_z1);

/// In-place softmax of x[n] with vectorized exponentials (attention rows, decode and prefill).
void balcony_softmax(float *x, size_t n);

/// out = silu(gate) * up (out may be gate).
void balcony_swiglu_forward(const float *gate, const float *up, float *out, size_t n);

/// d_act becomes d gate in place; d_up receives d up.
void balcony_swiglu_backward(const float *gate, const float *up, float *d_act, float *d_up, size_t n);

/// out = x * inv_rms * weight per row, inv_rms = 1 / sqrt(mean(x^2) + eps) saved.
void balcony_rmsnorm_forward(const float *x, const float *weight, float *out, float *inv_rms, size_t rows, size_t n,
                             float eps);

/// d_x (=, or += with accumulate) = inv * w * dy - inv^3 * x * sum(w * dy * x) / n.
void balcony_rmsnorm_backward_input(const float *x, const float *inv_rms, const float *weight, const float *d_out,
                                    float *d_x, size_t rows, size_t n, int accumulate);

/// The exp the training kernels use (tests).
float balcony_exp(float x);

/// Tests: with portable_only = 1 the training kernels take their portable build even on AVX2
/// machines (0 restores the default); returns whether the AVX2 build is now in use.
int balcony_training_kernels_use_avx2(int portable_only);

/// A task of balcony_pool_run: called once for each index in 0 ..< threads.
typedef void (*balcony_task_fn)(void *context, int index);

/// Runs fn(context, i) for i in 0 ..< threads, index 0 on the calling thread and the others on a
/// persistent pool of workers that spin briefly between jobs (thread_pool.c). Returns 1 when it
/// ran them, or 0 without running anything when another thread is using the pool or workers
/// cannot be started; the caller then runs the work some other way.
int balcony_pool_run(int threads, balcony_task_fn fn, void *context);

/// Sends the pool's spinning workers to sleep now: called before work that brings its own threads
/// (OpenBLAS), which would otherwise share the cores with spinning workers.
void balcony_pool_park(void);

/// Atomically adds `value` to *counter and returns the previous value (work counters shared by
/// the threads of one parallel region).
long balcony_atomic_fetch_add(long *counter, long value);

/// The calling thread's scratch buffer with room for `count` floats, kept between calls (and its
/// contents with it) until a larger request or the thread's exit; NULL when memory runs out.
float *balcony_thread_scratch(size_t count);

/// Balcony's SGEMM kernels (sgemm.c). AVX512_SHAPE_ON_AVX2 is the AVX-512 kernel's tile shape and
/// blocking built for AVX2, which tests run where AVX-512 is missing.
enum {
    BALCONY_SGEMM_PORTABLE = 0,
    BALCONY_SGEMM_AVX2 = 1,
    BALCONY_SGEMM_AVX512 = 2,
    BALCONY_SGEMM_AVX512_SHAPE_ON_AVX2 = 3,
};

/// 1 when this CPU can run the kernel.
int balcony_sgemm_kernel_available(int kernel);

/// The kernel balcony_sgemm uses: the widest this CPU runs.
int balcony_sgemm_default_kernel(void);

/// The kernel's name ("balcony-avx2-6x16"), or NULL when this CPU cannot run it.
const char *balcony_sgemm_kernel_name(int kernel);

/// Single-threaded, row-major C[m, n] = alpha * op(A) · op(B) + beta * C, where op(A) is A[m, k]
/// (trans_a 0, row stride lda) or A[k, m]^T (trans_a 1), and op(B) is B[k, n] (trans_b 0) or
/// B[n, k]^T (trans_b 1, a PyTorch-layout weight). beta 0 never reads C. Aborts when its packing
/// buffers (a few MiB per thread, kept) cannot be allocated.
void balcony_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                   const float *b, size_t ldb, float beta, float *c, size_t ldc);

/// balcony_sgemm with a chosen kernel (tests, benchmarks); returns 0 without computing anything
/// when this CPU cannot run it or memory runs out.
int balcony_sgemm_with(int kernel, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                       const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);

/// Floats per vector balcony_fma_chains uses: 16 (AVX-512), 8 (AVX2) or 4 (portable C).
int balcony_fma_lanes(void);

/// Runs `iterations` steps of ten independent multiply-add chains on balcony_fma_lanes() floats
/// each (2 * 10 * lanes FLOPs a step; fused where the CPU has FMA) and returns a value computed
/// from them (fma_peak.c).
float balcony_fma_chains(long iterations);

#endif
