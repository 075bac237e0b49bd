// Training kernels, compiled twice by training.c: once for the baseline ISA and once with
// AVX2/FMA (chosen at run time). TK(name) names this copy's functions; TK_ATTR is its target.
// Reductions are allowed to reassociate (pragma below) so that they vectorize without
// -ffast-math; results are deterministic for a given machine.

TK_ATTR static float TK(dot)(const float *a, const float *b, size_t n) {
#pragma clang fp reassociate(on)
    float s = 0;
    for (size_t j = 0; j < n; j++) s += a[j] * b[j];
    return s;
}

TK_ATTR static float TK(max)(const float *a, size_t n) {
    float m = a[0];
    size_t j = 0;
    if (n >= 8) {
        tk_v8 acc = tk_ld8(a);
        for (j = 8; j + 8 <= n; j += 8) acc = __builtin_elementwise_max(acc, (tk_v8)tk_ld8(a + j));
        m = __builtin_reduce_max(acc);
    }
    for (; j < n; j++) m = a[j] > m ? a[j] : m;
    return m;
}

/// x[j] = exp(x[j] * mul + add) for j < n; returns their sum.
TK_ATTR static float TK(exp_sum)(float *x, size_t n, float mul, float add) {
#pragma clang fp reassociate(on)
    float s = 0;
    for (size_t j = 0; j < n; j++) {
        float e = tk_exp(x[j] * mul + add);
        x[j] = e;
        s += e;
    }
    return s;
}

/// sum_j exp(x[j] * mul + add), accumulated in Double; x unchanged.
TK_ATTR static double TK(exp_sum_double)(const float *x, size_t n, float mul, float add) {
#pragma clang fp reassociate(on)
    double s = 0;
    for (size_t j = 0; j < n; j++) s += (double)tk_exp(x[j] * mul + add);
    return s;
}

/// Transposes rows [T, hd] with row stride ld into t[hd][Tp], zero beyond T.
TK_ATTR static void TK(transpose_in)(const float *x, size_t ld, size_t T, size_t Tp, size_t hd, float *t) {
    for (size_t j = 0; j < T; j++)
        for (size_t i = 0; i < hd; i++) t[i * Tp + j] = x[j * ld + i];
    for (size_t i = 0; i < hd; i++)
        for (size_t j = T; j < Tp; j++) t[i * Tp + j] = 0;
}

/// Softmax of row[0 ..< n] in place, zeros in [n, 8 nb).
TK_ATTR static void TK(softmax_row)(float *row, size_t n, size_t nb) {
    float m = TK(max)(row, n);
    float inv = 1.0f / TK(exp_sum)(row, n, 1.0f, -m);
    for (size_t j = 0; j < n; j++) row[j] *= inv;
    for (size_t j = n; j < 8 * nb; j++) row[j] = 0;
}

/// Softmax of the R rows of a causal tile (query t0 + r over keys 0 ..< 8 nb) over whole blocks of
/// eight, the causal mask (keys past t0 + r, all in the last block) set to zero. Every pass runs
/// on full vectors across the tile's rows: a row at a time, the rows' scalar tails cost as much as
/// the rest, and one row's exponentials form too short a chain to hide the polynomial's latency.
/// Masked entries are set to -inf, whose exponential is exactly 0.
TK_ATTR static void TK(softmax_tile)(float *const rows[8], size_t R, size_t t0, size_t nb) {
    size_t last = 8 * (nb - 1);
    float mx[8];
    tk_v8 sum[8];
    for (size_t r = 0; r < R; r++) {
        for (size_t j = t0 + r + 1 - last; j < 8; j++) rows[r][last + j] = -INFINITY;
        tk_v8 m = tk_ld8(rows[r]);
        for (size_t b = 1; b < nb; b++) m = __builtin_elementwise_max(m, (tk_v8)tk_ld8(rows[r] + 8 * b));
        mx[r] = __builtin_reduce_max(m);
        sum[r] = (tk_v8){0};
    }
    for (size_t b = 0; b < nb; b++)
        for (size_t r = 0; r < R; r++) {
            tk_v8 e = tk_exp8((tk_v8)tk_ld8(rows[r] + 8 * b) - mx[r]);
            tk_st8(rows[r] + 8 * b, e);
            sum[r] += e;
        }
    for (size_t r = 0; r < R; r++) {
        float inv = 1.0f / tk_hsum8(sum[r]);
        for (size_t b = 0; b < nb; b++) tk_st8(rows[r] + 8 * b, (tk_v8)tk_ld8(rows[r] + 8 * b) * inv);
    }
}

/// Eight rows of a, [8][hd], times columns [8 b, 8 b + 8) of t[hd][Tp] for blocks b < nb, into
/// rows[r] + 8 b: scores Q K^T and, in the backward pass, dO V^T. One load of t serves eight rows.
TK_ATTR static void TK(tile_times_transposed)(const float *a, const float *t, size_t Tp, size_t hd, size_t nb,
                                              float *const rows[8]) {
    for (size_t b = 0; b < nb; b++) {
        tk_v8 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};
        for (size_t i = 0; i < hd; i++) {
            tk_v8 x = tk_ld8(t + i * Tp + 8 * b);
            c0 += a[i] * x;
            c1 += a[hd + i] * x;
            c2 += a[2 * hd + i] * x;
            c3 += a[3 * hd + i] * x;
            c4 += a[4 * hd + i] * x;
            c5 += a[5 * hd + i] * x;
            c6 += a[6 * hd + i] * x;
            c7 += a[7 * hd + i] * x;
        }
        tk_st8(rows[0] + 8 * b, c0), tk_st8(rows[1] + 8 * b, c1), tk_st8(rows[2] + 8 * b, c2);
        tk_st8(rows[3] + 8 * b, c3), tk_st8(rows[4] + 8 * b, c4), tk_st8(rows[5] + 8 * b, c5);
        tk_st8(rows[6] + 8 * b, c6), tk_st8(rows[7] + 8 * b, c7);
    }
}

/// out[r] = sum_{j < n} rows[r][j] * x[j] for eight rows, x [n][hd] with row stride ld and hd a
/// multiple of 8; outputs for r < R only, with row stride ldo: P V and, backward, dS K.
TK_ATTR static void TK(tile_times_rows)(float *const rows[8], const float *x, size_t ld, size_t n, size_t hd,
                                        float *out, size_t ldo, size_t R) {
    for (size_t ib = 0; ib < hd; ib += 8) {
        tk_v8 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};
        for (size_t j = 0; j < n; j++) {
            tk_v8 y = tk_ld8(x + j * ld + ib);
            c0 += rows[0][j] * y;
            c1 += rows[1][j] * y;
            c2 += rows[2][j] * y;
            c3 += rows[3][j] * y;
            c4 += rows[4][j] * y;
            c5 += rows[5][j] * y;
            c6 += rows[6][j] * y;
            c7 += rows[7][j] * y;
        }
        tk_v8 c[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
        for (size_t r = 0; r < R; r++) tk_st8(out + r * ldo + ib, c[r]);
    }
}

/// Copies rows [R][hd] (stride ld) times mul into block [8][hd], zero rows from R on.
TK_ATTR static void TK(load_block)(const float *x, size_t ld, size_t R, size_t hd, float mul, float *block) {
    for (size_t r = 0; r < 8; r++)
        for (size_t i = 0; i < hd; i++) block[r * hd + i] = r < R ? x[r * ld + i] * mul : 0.0f;
}

// Attention of one sequence and one group of `heads` query heads sharing a key/value head, in
// tiles of eight queries by eight keys. probs holds the lower triangle in blocks of eight: row
// t of head g at probs + g tk_probs_head(T) + tk_probs_row(t), valid in [0, t] and zero up to
// the next multiple of 8 (the padding makes every row of a tile equally long).
// Head size must be a multiple of 8. scratch: hd Tp + 8 hd + Tp floats, + 8 Tp when probs is
// NULL (then each tile's rows live there and are not kept).
TK_ATTR static void TK(attention_forward)(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv,
                                          size_t T, size_t hd, size_t heads, float scale, float *probs, float *out,
                                          size_t ldo, float *scratch) {
    size_t Tp = (T + 7) & ~(size_t)7;
    float *kt = scratch, *qb = kt + hd * Tp, *junk = qb + 8 * hd, *tile = junk + Tp;
    TK(transpose_in)(k, ldkv, T, Tp, hd, kt);
    for (size_t g = 0; g < heads; g++) {
        for (size_t t0 = 0; t0 < T; t0 += 8) {
            size_t R = T - t0 < 8 ? T - t0 : 8, nb = t0 / 8 + 1;
            size_t keys = 8 * nb < T ? 8 * nb : T;
            float *rows[8];
            for (size_t r = 0; r < 8; r++)
                rows[r] = r >= R ? junk : probs ? probs + g * tk_probs_head(T) + tk_probs_row(t0 + r) : tile + r * Tp;
            TK(load_block)(q + t0 * ldq + g * hd, ldq, R, hd, scale, qb);
            TK(tile_times_transposed)(qb, kt, Tp, hd, nb, rows);
            TK(softmax_tile)(rows, R, t0, nb);
            if (R < 8) memset(junk, 0, 8 * nb * sizeof(float));
            TK(tile_times_rows)(rows, v, ldkv, keys, hd, out + t0 * ldo + g * hd, ldo, R);
        }
    }
}

// One query tile's operands of the key and value gradient sums in `attention_backward`.
typedef struct {
    const float *ds, *probs, *q;
    size_t ldq;
    const float *dout;
    size_t ldo, t0, t1, heads, hd, Tp, T;
} TK(key_sums_tile);

// Adds one query tile's terms to the sums of `blocks` (1 or 2) key blocks from b on, head
// dimensions ib ..< ib + 4: dK += dS^T Q (pass 0) or dV += P^T dO (pass 1), acc laid out as in
// attention_backward. Each broadcast of q (or dO) feeds `blocks` FMAs: with two blocks, six loads
// per eight FMAs instead of ten. Every sum takes its terms in (head, query) order whatever
// `blocks` is, so the results do not depend on the pairing. Inlined, so each call site gets a
// copy specialized to its constant `blocks`.
TK_ATTR __attribute__((always_inline)) static inline void TK(key_sums)(const TK(key_sums_tile) *k, float *acc, size_t b,
                                                                       int blocks, int pass, size_t ib) {
    size_t hd = k->hd;
    float *a0 = acc + (b * 2 * hd + pass * hd + ib) * 8, *a1 = a0 + 16 * hd;
    tk_v8 x0 = tk_ld8(a0), x1 = tk_ld8(a0 + 8), x2 = tk_ld8(a0 + 16), x3 = tk_ld8(a0 + 24);
    tk_v8 y0 = {0}, y1 = {0}, y2 = {0}, y3 = {0};
    if (blocks == 2) y0 = tk_ld8(a1), y1 = tk_ld8(a1 + 8), y2 = tk_ld8(a1 + 16), y3 = tk_ld8(a1 + 24);
    for (size_t g = 0; g < k->heads; g++) {
        for (size_t t = k->t0; t < k->t1; t++) {
            const float *w = pass == 0 ? k->ds + (g * 8 + t - k->t0) * k->Tp + 8 * b
                                       : k->probs + g * tk_probs_head(k->T) + tk_probs_row(t) + 8 * b;
            const float *s = pass == 0 ? k->q + t * k->ldq + g * hd + ib : k->dout + t * k->ldo + g * hd + ib;
            tk_v8 w0 = tk_ld8(w);
            x0 += w0 * s[0];
            x1 += w0 * s[1];
            x2 += w0 * s[2];
            x3 += w0 * s[3];
            if (blocks == 2) {
                tk_v8 w1 = tk_ld8(w + 8);
                y0 += w1 * s[0];
                y1 += w1 * s[1];
                y2 += w1 * s[2];
                y3 += w1 * s[3];
            }
        }
    }
    tk_st8(a0, x0), tk_st8(a0 + 8, x1), tk_st8(a0 + 16, x2), tk_st8(a0 + 24, x3);
    if (blocks == 2) tk_st8(a1, y0), tk_st8(a1 + 8, y1), tk_st8(a1 + 16, y2), tk_st8(a1 + 24, y3);
}

// Its backward, over tiles of eight queries. For each tile and head: dP = dO V^T,
// dS = P (dP - P.dP) * scale (for the tile only), dQ = dS K. Then, while the tile's rows of P
// and dS are in L1, the keys' gradients dK += dS^T Q and dV += P^T dO, accumulated per block of
// eight keys and four head dimensions in registers, and between tiles in acc [T8 / 8][2 hd][8]
// (dK then dV).
// scratch: 3 hd T8 + 8 hd + T8 + 8 heads T8 floats (T8: T rounded up to 8).
TK_ATTR static void TK(attention_backward)(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv,
                                           size_t T, size_t hd, size_t heads, float scale, const float *probs,
                                           const float *dout, size_t ldo, float *dq, float *dk, float *dv,
                                           float *scratch) {
    size_t Tp = (T + 7) & ~(size_t)7;
    float *vt = scratch, *acc = vt + hd * Tp, *db = acc + 2 * hd * Tp, *zero = db + 8 * hd, *ds = zero + Tp;
    TK(transpose_in)(v, ldkv, T, Tp, hd, vt);
    memset(acc, 0, 2 * hd * Tp * sizeof(float));
    memset(zero, 0, Tp * sizeof(float));
    for (size_t t0 = 0; t0 < T; t0 += 8) {
        size_t R = T - t0 < 8 ? T - t0 : 8, nb = t0 / 8 + 1;
        size_t keys = 8 * nb < T ? 8 * nb : T;
        for (size_t g = 0; g < heads; g++) {
            float *dsr[8];
            for (size_t r = 0; r < 8; r++) dsr[r] = ds + (g * 8 + r) * Tp;
            TK(load_block)(dout + t0 * ldo + g * hd, ldo, R, hd, 1.0f, db);
            TK(tile_times_transposed)(db, vt, Tp, hd, nb, dsr);
            for (size_t r = 0; r < 8; r++) {
                // Rows past the end have P = 0 and so dS = 0.
                const float *p = r < R ? probs + g * tk_probs_head(T) + tk_probs_row(t0 + r) : zero;
                float d = TK(dot)(p, dsr[r], 8 * nb);
                for (size_t j = 0; j < 8 * nb; j++) dsr[r][j] = p[j] * (dsr[r][j] - d) * scale;
            }
            TK(tile_times_rows)(dsr, k, ldkv, keys, hd, dq + t0 * ldq + g * hd, ldq, R);
        }
        size_t t1 = t0 + R;
        // Every row of the chunk reaches key block t0 / 8 (entries past a row's diagonal are 0):
        // two blocks at a time, the last one alone when their count is odd.
        const TK(key_sums_tile) tile = {ds, probs, q, ldq, dout, ldo, t0, t1, heads, hd, Tp, T};
        size_t blocks = t0 / 8 + 1;
        for (size_t b = 0; b < blocks; b += 2)
            for (size_t ib = 0; ib < hd; ib += 4)
                for (int pass = 0; pass < 2; pass++) {
                    if (b + 1 < blocks) TK(key_sums)(&tile, acc, b, 2, pass, ib);
                    else TK(key_sums)(&tile, acc, b, 1, pass, ib);
                }
    }
    for (size_t j = 0; j < T; j++) {
        const float *a = acc + (j / 8) * 16 * hd + j % 8;
        for (size_t i = 0; i < hd; i++) {
            dk[j * ldkv + i] = a[8 * i];
            dv[j * ldkv + i] = a[8 * (hd + i)];
        }
    }
}

// The same two functions for head sizes that are not a multiple of 8 (rare): plain loops over
// the unmasked keys, one head dimension at a time. Same probs layout; scratch as above.
TK_ATTR static void TK(attention_forward_any)(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv,
                                              size_t T, size_t hd, size_t heads, float scale, float *probs, float *out,
                                              size_t ldo, float *scratch) {
    size_t Tp = (T + 7) & ~(size_t)7;
    float *kt = scratch, *vt = kt + hd * Tp, *row = vt + hd * Tp + Tp;
    TK(transpose_in)(k, ldkv, T, Tp, hd, kt);
    TK(transpose_in)(v, ldkv, T, Tp, hd, vt);
    for (size_t g = 0; g < heads; g++) {
        for (size_t t = 0; t < T; t++) {
            const float *qt = q + t * ldq + g * hd;
            float *s = probs ? probs + g * tk_probs_head(T) + tk_probs_row(t) : row;
            size_t n = t + 1;
            for (size_t j = 0; j < n; j++) s[j] = 0;
            for (size_t i = 0; i < hd; i++) {
                float a = qt[i] * scale;
                for (size_t j = 0; j < n; j++) s[j] += a * kt[i * Tp + j];
            }
            TK(softmax_row)(s, n, (n + 7) / 8);
            for (size_t i = 0; i < hd; i++) out[t * ldo + g * hd + i] = TK(dot)(s, vt + i * Tp, n);
        }
    }
}

TK_ATTR static void TK(attention_backward_any)(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv,
                                               size_t T, size_t hd, size_t heads, float scale, const float *probs,
                                               const float *dout, size_t ldo, float *dq, float *dk, float *dv,
                                               float *scratch) {
    size_t Tp = (T + 7) & ~(size_t)7;
    float *kt = scratch, *vt = kt + hd * Tp, *ds = vt + hd * Tp, *dkt = ds + Tp, *dvt = dkt + hd * Tp;
    TK(transpose_in)(k, ldkv, T, Tp, hd, kt);
    TK(transpose_in)(v, ldkv, T, Tp, hd, vt);
    memset(dkt, 0, 2 * hd * Tp * sizeof(float));
    for (size_t g = 0; g < heads; g++) {
        for (size_t t = 0; t < T; t++) {
            const float *p = probs + g * tk_probs_head(T) + tk_probs_row(t), *ot = dout + t * ldo + g * hd, *qt = q + t * ldq + g * hd;
            size_t n = t + 1;
            for (size_t j = 0; j < n; j++) ds[j] = 0;
            for (size_t i = 0; i < hd; i++)
                for (size_t j = 0; j < n; j++) ds[j] += ot[i] * vt[i * Tp + j];
            float d = TK(dot)(p, ds, n);
            for (size_t j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - d) * scale;
            for (size_t i = 0; i < hd; i++) {
                dq[t * ldq + g * hd + i] = TK(dot)(ds, kt + i * Tp, n);
                for (size_t j = 0; j < n; j++) {
                    dkt[i * Tp + j] += qt[i] * ds[j];
                    dvt[i * Tp + j] += ot[i] * p[j];
                }
            }
        }
    }
    for (size_t j = 0; j < T; j++)
        for (size_t i = 0; i < hd; i++) {
            dk[j * ldkv + i] = dkt[i * Tp + j];
            dv[j * ldkv + i] = dvt[i * Tp + j];
        }
}

TK_ATTR static void TK(teacher_row)(const float *z, size_t V, float invT, float *lpT, float *pT, float *lp1, float *p1) {
#pragma clang fp reassociate(on)
    float m = TK(max)(z, V);
    if (lp1) {
        float logZ1 = (float)log(TK(exp_sum_double)(z, V, 1.0f, -m));
        for (size_t v = 0; v < V; v++) {
            float l = z[v] - m - logZ1;
            lp1[v] = l;
            p1[v] = tk_exp(l);
        }
    }
    // One exponential per entry: p_T = exp(u) / sum, log p_T = u - log sum, with u = (z - max) / T.
    double sum = 0;
    for (size_t v = 0; v < V; v++) {
        float e = tk_exp((z[v] - m) * invT);
        pT[v] = e;
        sum += (double)e;
    }
    float logZ = (float)log(sum), invZ = (float)(1.0 / sum);
    for (size_t v = 0; v < V; v++) {
        lpT[v] = (z[v] - m) * invT - logZ;
        pT[v] *= invZ;
    }
}

TK_ATTR static void TK(exit_row)(float *z, size_t V, const float *lpT, const float *pT, const float *lp1,
                                 const float *p1, float tau, float wr, float scale, int gradients, float *u,
                                 double *kl_out, double *kl1_out, float *logZ1_out) {
#pragma clang fp reassociate(on)
    float invT = 1.0f / tau;
    float m = TK(max)(z, V);
    // u = (z - max) / T; z's storage takes exp(u).
    double sum = 0;
    for (size_t v = 0; v < V; v++) {
        float uv = (z[v] - m) * invT;
        u[v] = uv;
        float e = tk_exp(uv);
        z[v] = e;
        sum += (double)e;
    }
    float logZ = (float)log(sum), invZ = (float)(1.0 / sum);
    double kl = 0;
    if (lp1 == 0) {
        // T = 1: the plain distribution is the tempered one.
        for (size_t v = 0; v < V; v++) kl += (double)(pT[v] * (lpT[v] - (u[v] - logZ)));
        if (gradients)
            for (size_t v = 0; v < V; v++) {
                float q = z[v] * invZ;
                z[v] = scale * ((q - pT[v]) + wr * q);
            }
        *kl_out = kl;
        *kl1_out = kl;
        *logZ1_out = logZ;
        return;
    }
    float logZ1 = (float)log(TK(exp_sum_double)(u, V, tau, 0.0f));
    double kl1 = 0;
    for (size_t v = 0; v < V; v++) {
        kl += (double)(pT[v] * (lpT[v] - (u[v] - logZ)));
        kl1 += (double)(p1[v] * (lp1[v] - (u[v] * tau - logZ1)));
    }
    if (gradients)
        for (size_t v = 0; v < V; v++) {
            float q = z[v] * invZ, q1 = tk_exp(u[v] * tau - logZ1);
            z[v] = scale * (tau * (q - pT[v]) + wr * q1);
        }
    *kl_out = kl;
    *kl1_out = kl1;
    *logZ1_out = logZ1;
}

TK_ATTR static void TK(swiglu_forward)(const float *g, const float *u, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + tk_exp(-g[i])) * u[i];
}

TK_ATTR static void TK(swiglu_backward)(const float *g, const float *u, float *dact, float *dup, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = g[i], d = dact[i];
        float s = 1.0f / (1.0f + tk_exp(-x));
        dup[i] = d * x * s;
        dact[i] = d * u[i] * s * (1.0f + x * (1.0f - s));
    }
}

TK_ATTR static void TK(rmsnorm_forward)(const float *x, const float *w, float *out, float *inv, size_t rows, size_t n,
                                        float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *o = out + r * n;
        float s = 1.0f / sqrtf(TK(dot)(xr, xr, n) / (float)n + eps);
        inv[r] = s;
        for (size_t i = 0; i < n; i++) o[i] = xr[i] * s * w[i];
    }
}

TK_ATTR static void TK(rmsnorm_backward_input)(const float *x, const float *inv, const float *w, const float *dy,
                                               float *dx, size_t rows, size_t n, int accumulate) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n, *dr = dy + r * n;
        float *o = dx + r * n;
        float s = inv[r];
        float d = 0;
        {
#pragma clang fp reassociate(on)
            for (size_t i = 0; i < n; i++) d += w[i] * dr[i] * xr[i];
        }
        float c = s * s * s * d / (float)n;
        if (accumulate)
            for (size_t i = 0; i < n; i++) o[i] += s * w[i] * dr[i] - c * xr[i];
        else
            for (size_t i = 0; i < n; i++) o[i] = s * w[i] * dr[i] - c * xr[i];
    }
}
