/* softmax_rows_impl.h: the body of softmax_rows.h, written once for TL_REAL (float or double).
 * Include softmax_rows.h, not this file. Function names get the suffix _f32 or _f64. */

/* max x[0..n), -inf for an empty row. Inlined into each multi-versioned caller. */
static inline TL_REAL TL_NAME(tl_row_max)(const TL_REAL *x, ptrdiff_t n)
{
    TL_REAL m = -INFINITY;
#pragma omp simd reduction(max:m)
    for (ptrdiff_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* y = exp(x - max x) / sum exp(x - max x); subtracting the max keeps exp from overflowing. */
TL_MULTIVERSION
static void TL_NAME(tl_softmax_fwd)(const TL_REAL *x, TL_REAL *y, ptrdiff_t n)
{
    TL_REAL m = TL_NAME(tl_row_max)(x, n);
    TL_REAL s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) {
        TL_REAL e = TL_EXP(x[i] - m);
        y[i] = e;
        s += e;
    }
    TL_REAL inv = (TL_REAL)1 / s;       /* one division per row, then multiplies */
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) y[i] *= inv;
}

/* dx = y * (dy - sum(dy * y)): the Jacobian diag(y) - y y^T applied to dy. */
TL_MULTIVERSION
static void TL_NAME(tl_softmax_bwd)(const TL_REAL *y, const TL_REAL *dy, TL_REAL *dx,
                                     ptrdiff_t n)
{
    TL_REAL dot = 0;
#pragma omp simd reduction(+:dot)
    for (ptrdiff_t i = 0; i < n; i++) dot += dy[i] * y[i];
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = y[i] * (dy[i] - dot);
}

/* y = (x - max x) - log(sum exp(x - max x)): never takes the log of a (possibly 0)
 * probability, so -inf appears only where x itself is -inf. */
TL_MULTIVERSION
static void TL_NAME(tl_log_softmax_fwd)(const TL_REAL *x, TL_REAL *y, ptrdiff_t n)
{
    TL_REAL m = TL_NAME(tl_row_max)(x, n);
    TL_REAL s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) s += TL_EXP(x[i] - m);
    TL_REAL log_s = TL_LOG(s);
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) y[i] = (x[i] - m) - log_s;
}

/* dx = dy - softmax * sum(dy), with softmax = exp(y) recovered from the saved output. */
TL_MULTIVERSION
static void TL_NAME(tl_log_softmax_bwd)(const TL_REAL *y, const TL_REAL *dy, TL_REAL *dx,
                                         ptrdiff_t n)
{
    TL_REAL s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) s += dy[i];
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = dy[i] - TL_EXP(y[i]) * s;
}
