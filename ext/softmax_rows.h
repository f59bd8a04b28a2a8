/* softmax_rows.h: softmax and log-softmax of one row, forward and backward.
 *
 * Shapes: every function works on one contiguous row of C elements (`n` below). The caller
 * (ext/softmax.pyx) loops over the rows, in parallel when the batch is large enough.
 *
 * The loops carry `#pragma omp simd reduction(...)`: without -ffast-math GCC may not
 * reorder a float sum, so it will not vectorize a plain reduction loop; the pragma
 * (honoured under -fopenmp-simd, no OpenMP runtime needed) grants exactly that permission.
 * TL_MULTIVERSION compiles each function for AVX-512, AVX2 and baseline x86-64.
 *
 * exp is the polynomial tl_expf / tl_exp from fastexp.h: libm's exp() would keep every
 * loop that calls it scalar.
 *
 * The float32 and float64 versions are the same code with a different type and exp.
 */
#ifndef TINYLLM_SOFTMAX_ROWS_H
#define TINYLLM_SOFTMAX_ROWS_H

#include <math.h>
#include <stddef.h>

#include "fastexp.h"

/* How many threads a parallel region would use: 1 when built without -fopenmp, where
 * Cython's prange compiles to a serial loop. */
#ifdef _OPENMP
#include <omp.h>
static int tl_max_threads(void) { return omp_get_max_threads(); }
#else
static int tl_max_threads(void) { return 1; }
#endif

/* ---- float32 ---- */

/* y = exp(x - max x) / sum exp(x - max x); subtracting the max keeps exp from overflowing. */
TL_MULTIVERSION
static void tl_softmax_fwd_f32(const float *x, float *y, ptrdiff_t n)
{
    float m = -INFINITY;
#pragma omp simd reduction(max:m)
    for (ptrdiff_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    float s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) {
        float e = tl_expf(x[i] - m);
        y[i] = e;
        s += e;
    }
    float inv = 1.0f / s;               /* one division per row, then multiplies */
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) y[i] *= inv;
}

/* dx = y * (dy - sum(dy * y)): the Jacobian diag(y) - y y^T applied to dy. */
TL_MULTIVERSION
static void tl_softmax_bwd_f32(const float *y, const float *dy, float *dx, ptrdiff_t n)
{
    float dot = 0;
#pragma omp simd reduction(+:dot)
    for (ptrdiff_t i = 0; i < n; i++) dot += dy[i] * y[i];
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = y[i] * (dy[i] - dot);
}

/* y = (x - max x) - log(sum exp(x - max x)): never takes the log of a (possibly 0)
 * probability, so -inf appears only where x itself is -inf. */
TL_MULTIVERSION
static void tl_log_softmax_fwd_f32(const float *x, float *y, ptrdiff_t n)
{
    float m = -INFINITY;
#pragma omp simd reduction(max:m)
    for (ptrdiff_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    float s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) s += tl_expf(x[i] - m);
    float log_s = logf(s);
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) y[i] = (x[i] - m) - log_s;
}

/* dx = dy - softmax * sum(dy), with softmax = exp(y) recovered from the saved output. */
TL_MULTIVERSION
static void tl_log_softmax_bwd_f32(const float *y, const float *dy, float *dx, ptrdiff_t n)
{
    float s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) s += dy[i];
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = dy[i] - tl_expf(y[i]) * s;
}

/* ---- float64 ---- */

/* y = exp(x - max x) / sum exp(x - max x); subtracting the max keeps exp from overflowing. */
TL_MULTIVERSION
static void tl_softmax_fwd_f64(const double *x, double *y, ptrdiff_t n)
{
    double m = -INFINITY;
#pragma omp simd reduction(max:m)
    for (ptrdiff_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) {
        double e = tl_exp(x[i] - m);
        y[i] = e;
        s += e;
    }
    double inv = 1.0 / s;               /* one division per row, then multiplies */
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) y[i] *= inv;
}

/* dx = y * (dy - sum(dy * y)): the Jacobian diag(y) - y y^T applied to dy. */
TL_MULTIVERSION
static void tl_softmax_bwd_f64(const double *y, const double *dy, double *dx, ptrdiff_t n)
{
    double dot = 0;
#pragma omp simd reduction(+:dot)
    for (ptrdiff_t i = 0; i < n; i++) dot += dy[i] * y[i];
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = y[i] * (dy[i] - dot);
}

/* y = (x - max x) - log(sum exp(x - max x)): never takes the log of a (possibly 0)
 * probability, so -inf appears only where x itself is -inf. */
TL_MULTIVERSION
static void tl_log_softmax_fwd_f64(const double *x, double *y, ptrdiff_t n)
{
    double m = -INFINITY;
#pragma omp simd reduction(max:m)
    for (ptrdiff_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) s += tl_exp(x[i] - m);
    double log_s = log(s);
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) y[i] = (x[i] - m) - log_s;
}

/* dx = dy - softmax * sum(dy), with softmax = exp(y) recovered from the saved output. */
TL_MULTIVERSION
static void tl_log_softmax_bwd_f64(const double *y, const double *dy, double *dx, ptrdiff_t n)
{
    double s = 0;
#pragma omp simd reduction(+:s)
    for (ptrdiff_t i = 0; i < n; i++) s += dy[i];
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = dy[i] - tl_exp(y[i]) * s;
}

#endif /* TINYLLM_SOFTMAX_ROWS_H */
