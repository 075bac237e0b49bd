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

/// row[8 b ... 8 b + 7] = sum_i (a[i] * mul) * t[i][8 b ...] for the first nb blocks of eight
/// columns of t[hd][Tp]: scores q · K^T and, in the backward pass, dO · V^T. Four blocks at a
/// time keep four independent FMA chains in flight.
TK_ATTR static void TK(blocks_times_transposed)(const float *a, float mul, const float *t, size_t Tp, size_t hd,
                                                size_t nb, float *row) {
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        tk_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        const float *tb = t + 8 * b;
        for (size_t i = 0; i < hd; i++) {
            float x = a[i] * mul;
            const float *ti = tb + i * Tp;
            a0 += x * tk_ld8(ti);
            a1 += x * tk_ld8(ti + 8);
            a2 += x * tk_ld8(ti + 16);
            a3 += x * tk_ld8(ti + 24);
        }
        tk_st8(row + 8 * b, a0);
        tk_st8(row + 8 * b + 8, a1);
        tk_st8(row + 8 * b + 16, a2);
        tk_st8(row + 8 * b + 24, a3);
    }
    for (; b < nb; b++) {
        tk_v8 a0 = {0};
        for (size_t i = 0; i < hd; i++) a0 += (a[i] * mul) * tk_ld8(t + i * Tp + 8 * b);
        tk_st8(row + 8 * b, a0);
    }
}

/// out[i] = sum_j row[j] * t[i][j] over the first nb blocks, for i < hd (a multiple of 8): the
/// attention output p · V and, in the backward pass, dQ = dS · K. Eight rows of t per sweep.
TK_ATTR static void TK(row_times_blocks)(const float *row, const float *t, size_t Tp, size_t hd, size_t nb, float *out) {
    for (size_t ib = 0; ib < hd; ib += 8) {
        tk_v8 acc[8] = {{0}};
        const float *tb = t + ib * Tp;
        for (size_t b = 0; b < nb; b++) {
            tk_v8 r = tk_ld8(row + 8 * b);
            for (int l = 0; l < 8; l++) acc[l] += r * tk_ld8(tb + l * Tp + 8 * b);
        }
        for (int l = 0; l < 8; l++) out[ib + l] = tk_hsum8(acc[l]);
    }
}

/// Softmax of row[0 ..< n] in place, zeros in [n, 8 nb).
TK_ATTR static void TK(softmax_row)(float *row, size_t n, size_t nb) {
    float m = TK(max)(row, n);
    float inv = 1.0f / TK(exp_sum)(row, n, 1.0f, -m);
    for (size_t j = 0; j < n; j++) row[j] *= inv;
    for (size_t j = n; j < 8 * nb; j++) row[j] = 0;
}

// Attention of one sequence and one group of `heads` query heads sharing a key/value head.
// probs rows are padded to Tp = T rounded up to 8: row t of head g at probs + (g T + t) Tp,
// valid in [0, t], zero up to the next multiple of 8. Head size must be a multiple of 8.
// scratch: 2 hd Tp + Tp floats.
TK_ATTR static void TK(attention_forward)(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv,
                                          size_t T, size_t hd, size_t heads, float scale, float *probs, float *out,
                                          size_t ldo, float *scratch) {
    size_t Tp = (T + 7) & ~(size_t)7;
    float *kt = scratch, *vt = kt + hd * Tp, *row = vt + hd * Tp;
    TK(transpose_in)(k, ldkv, T, Tp, hd, kt);
    TK(transpose_in)(v, ldkv, T, Tp, hd, vt);
    for (size_t g = 0; g < heads; g++) {
        for (size_t t = 0; t < T; t++) {
            size_t n = t + 1, nb = (n + 7) / 8;
            TK(blocks_times_transposed)(q + t * ldq + g * hd, scale, kt, Tp, hd, nb, row);
            TK(softmax_row)(row, n, nb);
            memcpy(probs + (g * T + t) * Tp, row, 8 * nb * sizeof(float));
            TK(row_times_blocks)(row, vt, Tp, hd, nb, out + t * ldo + g * hd);
        }
    }
}

// Its backward, over chunks of eight queries. For each query row: dP = dO V^T,
// dS = P (dP - P.dP) * scale, dQ = dS K. Then, while the chunk's rows of P and dS are in L1, the
// keys' gradients dK += dS^T Q and dV += P^T dO, accumulated per block of eight keys and four
// head dimensions in registers, and between chunks in acc [T8 / 8][2 hd][8] (dK then dV).
// scratch: 2 hd T8 + T8 + 8 heads T8 + 2 hd T8 floats (T8: T rounded up to 8).
TK_ATTR static void TK(attention_backward)(const float *q, size_t ldq, const float *k, const float *v, size_t ldkv,
                                           size_t T, size_t hd, size_t heads, float scale, const float *probs,
                                           const float *dout, size_t ldo, float *dq, float *dk, float *dv,
                                           float *scratch) {
    size_t Tp = (T + 7) & ~(size_t)7;
    float *kt = scratch, *vt = kt + hd * Tp, *row = vt + hd * Tp, *ds = row + Tp, *acc = ds + 8 * heads * Tp;
    TK(transpose_in)(k, ldkv, T, Tp, hd, kt);
    TK(transpose_in)(v, ldkv, T, Tp, hd, vt);
    memset(acc, 0, 2 * hd * Tp * sizeof(float));
    for (size_t t0 = 0; t0 < T; t0 += 8) {
        size_t t1 = t0 + 8 < T ? t0 + 8 : T;
        for (size_t g = 0; g < heads; g++) {
            for (size_t t = t0; t < t1; t++) {
                size_t nb = (t + 8) / 8;
                const float *p = probs + (g * T + t) * Tp;
                float *dsr = ds + (g * 8 + t - t0) * Tp;
                TK(blocks_times_transposed)(dout + t * ldo + g * hd, 1.0f, vt, Tp, hd, nb, row);
                float d = TK(dot)(p, row, 8 * nb);
                for (size_t j = 0; j < 8 * nb; j++) dsr[j] = p[j] * (row[j] - d) * scale;
                TK(row_times_blocks)(dsr, kt, Tp, hd, nb, dq + t * ldq + g * hd);
            }
        }
        // Every row of the chunk reaches key block t0 / 8 (entries past a row's diagonal are 0).
        for (size_t b = 0; b <= t0 / 8; b++) {
            for (size_t ib = 0; ib < hd; ib += 4) {
                float *ka = acc + (b * 2 * hd + ib) * 8, *va = ka + 8 * hd;
                tk_v8 k0 = tk_ld8(ka), k1 = tk_ld8(ka + 8), k2 = tk_ld8(ka + 16), k3 = tk_ld8(ka + 24);
                tk_v8 v0 = tk_ld8(va), v1 = tk_ld8(va + 8), v2 = tk_ld8(va + 16), v3 = tk_ld8(va + 24);
                for (size_t g = 0; g < heads; g++) {
                    for (size_t t = t0; t < t1; t++) {
                        tk_v8 sv = tk_ld8(ds + (g * 8 + t - t0) * Tp + 8 * b);
                        tk_v8 pv = tk_ld8(probs + (g * T + t) * Tp + 8 * b);
                        const float *qt = q + t * ldq + g * hd + ib, *ot = dout + t * ldo + g * hd + ib;
                        k0 += sv * qt[0];
                        k1 += sv * qt[1];
                        k2 += sv * qt[2];
                        k3 += sv * qt[3];
                        v0 += pv * ot[0];
                        v1 += pv * ot[1];
                        v2 += pv * ot[2];
                        v3 += pv * ot[3];
                    }
                }
                tk_st8(ka, k0), tk_st8(ka + 8, k1), tk_st8(ka + 16, k2), tk_st8(ka + 24, k3);
                tk_st8(va, v0), tk_st8(va + 8, v1), tk_st8(va + 16, v2), tk_st8(va + 24, v3);
            }
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
    float *kt = scratch, *vt = kt + hd * Tp;
    TK(transpose_in)(k, ldkv, T, Tp, hd, kt);
    TK(transpose_in)(v, ldkv, T, Tp, hd, vt);
    for (size_t g = 0; g < heads; g++) {
        for (size_t t = 0; t < T; t++) {
            const float *qt = q + t * ldq + g * hd;
            float *s = probs + (g * T + t) * Tp;
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
            const float *p = probs + (g * T + t) * Tp, *ot = dout + t * ldo + g * hd, *qt = q + t * ldq + g * hd;
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
    float m = TK(max)(z, V);
    if (lp1) {
        float logZ1 = (float)log(TK(exp_sum_double)(z, V, 1.0f, -m));
        for (size_t v = 0; v < V; v++) {
            float l = z[v] - m - logZ1;
            lp1[v] = l;
            p1[v] = tk_exp(l);
        }
    }
    float logZ = (float)log(TK(exp_sum_double)(z, V, invT, -m * invT));
    for (size_t v = 0; v < V; v++) {
        float l = (z[v] - m) * invT - logZ;
        lpT[v] = l;
        pT[v] = tk_exp(l);
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
