/* adam_rows_impl.h: the body of adam_rows.h for TL_REAL. Include adam_rows.h, not this. */

#undef TL_SQRT
#define TL_SQRT(x) ((TL_REAL)(sizeof(TL_REAL) == sizeof(float) ? sqrtf(x) : sqrt(x)))

typedef struct {
    TL_REAL decay, l2, w1, one_minus_w1, beta2, w2, sqrt_bc2, eps, step_size;
    int lerp_low, maximize, amsgrad;
} TL_NAME(tl_adam_consts);

/* One element: p, m, v updated from g; returns the v the denominator uses (vmax's, if any,
 * is the caller's). Branch-free (selects), so the loops around it vectorize. */
static inline void TL_NAME(tl_adam_moments)(TL_REAL g_in, TL_REAL p, TL_REAL m, TL_REAL v,
                                            const TL_NAME(tl_adam_consts) *k, TL_REAL *w,
                                            TL_REAL *g_out, TL_REAL *m_out, TL_REAL *v_out)
{
    TL_REAL g = k->maximize ? -g_in : g_in;
    g = k->l2 != 0 ? g + p * k->l2 : g;                 /* Adam: g + wd p */
    *w = p * k->decay;                                  /* AdamW: p (1 - lr wd); else p * 1 */
    TL_REAL b = g - m;
    *m_out = k->lerp_low ? m + b * k->w1 : g - b * k->one_minus_w1;
    *v_out = v * k->beta2 + (g * k->w2) * g;
    *g_out = g;
}

/* p, m, v (and vmax when amsgrad) updated in place from g over n elements. */
TL_MULTIVERSION
static void TL_NAME(tl_adam_step)(TL_REAL *p, const TL_REAL *g, TL_REAL *m, TL_REAL *v,
                                   TL_REAL *vmax, ptrdiff_t n, const TL_NAME(tl_adam_consts) *c)
{
    const TL_NAME(tl_adam_consts) k = *c;
    TL_REAL w, gi, mi, vi;
    if (!k.amsgrad) {
#pragma omp simd private(w, gi, mi, vi)
        for (ptrdiff_t i = 0; i < n; i++) {
            TL_NAME(tl_adam_moments)(g[i], p[i], m[i], v[i], &k, &w, &gi, &mi, &vi);
            m[i] = mi;
            v[i] = vi;
            p[i] = w - (mi * k.step_size) / (TL_SQRT(vi) / k.sqrt_bc2 + k.eps);
        }
        return;
    }
#pragma omp simd private(w, gi, mi, vi)
    for (ptrdiff_t i = 0; i < n; i++) {
        TL_NAME(tl_adam_moments)(g[i], p[i], m[i], v[i], &k, &w, &gi, &mi, &vi);
        m[i] = mi;
        v[i] = vi;
        TL_REAL top = (vmax[i] > vi || vmax[i] != vmax[i]) ? vmax[i] : vi;  /* np.maximum */
        vmax[i] = top;
        p[i] = w - (mi * k.step_size) / (TL_SQRT(top) / k.sqrt_bc2 + k.eps);
    }
}
