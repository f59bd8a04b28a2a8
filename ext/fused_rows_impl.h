/* fused_rows_impl.h: the body of fused_rows.h, written once for TL_REAL (float or double).
 * Include fused_rows.h, not this file. Function names get the suffix _f32 or _f64. */

/* 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)), the logistic sigmoid of 2u: one exp, no branch,
 * and no cancellation where tanh(u) is near -1 (1 + tanh would lose every digit there). */
static inline TL_REAL TL_NAME(tl_half_one_plus_tanh)(TL_REAL u)
{
    return (TL_REAL)1 / ((TL_REAL)1 + TL_EXP((TL_REAL)-2 * u));
}

/* GELU, tanh form (GPT-2): y = 0.5 x (1 + tanh(u)), u = k0 (x + k1 x^3); = x sigmoid(2u). */
TL_MULTIVERSION
static void TL_NAME(tl_gelu_tanh_fwd)(const TL_REAL *x, TL_REAL *y, ptrdiff_t n)
{
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        TL_REAL v = x[i];
        TL_REAL u = (TL_REAL)TL_GELU_K0 * (v + (TL_REAL)TL_GELU_K1 * v * v * v);
        y[i] = v * TL_NAME(tl_half_one_plus_tanh)(u);
    }
}

/* dx = dy (0.5 (1 + t) + 0.5 x (1 - t^2) du/dx), t = tanh(u). With s = 0.5 (1 + t):
 * 1 - t^2 = 4 s (1 - s), so dx = dy (s + 2 x s (1 - s) k0 (1 + 3 k1 x^2)). s is recomputed
 * from x, so the forward keeps nothing but x. */
TL_MULTIVERSION
static void TL_NAME(tl_gelu_tanh_bwd)(const TL_REAL *x, const TL_REAL *dy, TL_REAL *dx,
                                       ptrdiff_t n)
{
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        TL_REAL v = x[i];
        TL_REAL u = (TL_REAL)TL_GELU_K0 * (v + (TL_REAL)TL_GELU_K1 * v * v * v);
        TL_REAL s = TL_NAME(tl_half_one_plus_tanh)(u);
        TL_REAL du = (TL_REAL)TL_GELU_K0 * ((TL_REAL)1 + (TL_REAL)(3 * TL_GELU_K1) * v * v);
        dx[i] = dy[i] * (s + (TL_REAL)2 * v * s * ((TL_REAL)1 - s) * du);
    }
}

/* GELU, exact form (BERT): y = x Phi(x), Phi(x) = 0.5 (1 + erf(x / sqrt 2)). libm's erf
 * keeps this loop scalar; it is still one pass instead of the NumPy twin's series. */
static void TL_NAME(tl_gelu_erf_fwd)(const TL_REAL *x, TL_REAL *y, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = (double)x[i];
        y[i] = (TL_REAL)(v * 0.5 * (1.0 + erf(v * TL_INV_SQRT2)));
    }
}

/* dx = dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi). */
static void TL_NAME(tl_gelu_erf_bwd)(const TL_REAL *x, const TL_REAL *dy, TL_REAL *dx,
                                      ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = (double)x[i];
        double cdf = 0.5 * (1.0 + erf(v * TL_INV_SQRT2));
        double pdf = exp(-0.5 * v * v) * TL_INV_SQRT_2PI;
        dx[i] = (TL_REAL)((double)dy[i] * (cdf + v * pdf));
    }
}

/* LayerNorm of one row of d features: mean, rstd = 1 / sqrt(var + eps), then
 * y = (x - mean) rstd w + b (w, b may be NULL). Two-pass variance: no cancellation. */
TL_MULTIVERSION
static void TL_NAME(tl_layer_norm_fwd)(const TL_REAL *x, const TL_REAL *w, const TL_REAL *b,
                                        TL_REAL *y, TL_REAL *mean_out, TL_REAL *rstd_out,
                                        ptrdiff_t d, double eps)
{
    TL_REAL s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < d; i++) s += x[i];
    TL_REAL mean = s / (TL_REAL)d;
    TL_REAL ss = 0;
#pragma omp simd reduction(+:ss)
    for (ptrdiff_t i = 0; i < d; i++) ss += (x[i] - mean) * (x[i] - mean);
    TL_REAL rstd = (TL_REAL)(1.0 / sqrt((double)(ss / (TL_REAL)d) + eps));
    *mean_out = mean;
    *rstd_out = rstd;
    if (w != NULL && b != NULL) {
#pragma omp simd
        for (ptrdiff_t i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
    } else if (w != NULL) {
#pragma omp simd
        for (ptrdiff_t i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd * w[i];
    } else if (b != NULL) {
#pragma omp simd
        for (ptrdiff_t i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd + b[i];
    } else {
#pragma omp simd
        for (ptrdiff_t i = 0; i < d; i++) y[i] = (x[i] - mean) * rstd;
    }
}

/* LayerNorm backward of one row: with xhat = (x - mean) rstd and g = dy w,
 * dx = rstd (g - mean(g) - xhat mean(g xhat)). Adds dy xhat to dw_acc and dy to db_acc
 * (the caller's per-thread sums over rows; either may be NULL). */
TL_MULTIVERSION
static void TL_NAME(tl_layer_norm_bwd)(const TL_REAL *x, const TL_REAL *dy, const TL_REAL *w,
                                        TL_REAL mean, TL_REAL rstd, TL_REAL *dx,
                                        TL_REAL *dw_acc, TL_REAL *db_acc, ptrdiff_t d)
{
    TL_REAL sg = 0, sgx = 0;
#pragma omp simd reduction(+:sg, sgx)
    for (ptrdiff_t i = 0; i < d; i++) {
        TL_REAL xhat = (x[i] - mean) * rstd;
        TL_REAL g = w != NULL ? dy[i] * w[i] : dy[i];
        sg += g;
        sgx += g * xhat;
    }
    TL_REAL a = sg / (TL_REAL)d, c = sgx / (TL_REAL)d;
    if (dx != NULL) {
#pragma omp simd
        for (ptrdiff_t i = 0; i < d; i++) {
            TL_REAL xhat = (x[i] - mean) * rstd;
            TL_REAL g = w != NULL ? dy[i] * w[i] : dy[i];
            dx[i] = rstd * (g - a - xhat * c);
        }
    }
    if (dw_acc != NULL) {
#pragma omp simd
        for (ptrdiff_t i = 0; i < d; i++) dw_acc[i] += dy[i] * (x[i] - mean) * rstd;
    }
    if (db_acc != NULL) {
#pragma omp simd
        for (ptrdiff_t i = 0; i < d; i++) db_acc[i] += dy[i];
    }
}
