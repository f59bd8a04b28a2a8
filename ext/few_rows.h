/* few_rows.h: y (m, n_out) = x (m, n_in) @ w (n_in, n_out) for a few rows m, float32, w stored
 * (in, out) as GPT-2's Conv1D keeps it.
 *
 * Why: in generation at batch B each layer multiplies B rows by a weight that no cache holds;
 * BLAS's GEMM packs (copies) the whole weight for a product that reads it once, and at 2..16
 * rows that copy is most of the time (a (320, 960) weight: 500 us for 4 rows, against 90 us
 * for BLAS's one-row GEMV). Here the weight is streamed once, in memory order, four of its
 * rows at a time; the m output rows (m <= 8 per pass, 30 KB at 960 outputs) stay in L1.
 *
 *   tl_few_rows(x, ldx, m, w, ldw, n_in, n_out, y, ldy)    m <= TL_FEW_ROWS_PASS, any n
 *
 * AVX-512, AVX2+FMA or portable C (quantized_simd.h's level); the same sums up to the order
 * of the additions.
 */
#ifndef TINYLLM_FEW_ROWS_H
#define TINYLLM_FEW_ROWS_H

#include <stddef.h>
#include <string.h>

#include "quantized_simd.h"   /* tl_qsimd_level, TL_QSIMD */

#define TL_FEW_ROWS_PASS 8

/* The columns past the last full vector, and the last n_in % 4 weight rows. */
static void tl_few_rows_rest(const float *x, ptrdiff_t ldx, ptrdiff_t m, const float *w,
                             ptrdiff_t ldw, ptrdiff_t i0, ptrdiff_t n_in, ptrdiff_t o0,
                             ptrdiff_t o1, float *y, ptrdiff_t ldy)
{
    for (ptrdiff_t i = i0; i < n_in; i++)
        for (ptrdiff_t r = 0; r < m; r++)
            for (ptrdiff_t o = o0; o < o1; o++) y[r * ldy + o] += x[r * ldx + i] * w[i * ldw + o];
}

#if TL_QSIMD
__attribute__((target("avx512f")))
static void tl_few_rows_avx512(const float *x, ptrdiff_t ldx, ptrdiff_t m, const float *w,
                               ptrdiff_t ldw, ptrdiff_t n_in, ptrdiff_t n_out, float *y,
                               ptrdiff_t ldy)
{
    const ptrdiff_t full = n_out - n_out % 16, blocks = n_in - n_in % 4;
    for (ptrdiff_t i = 0; i < blocks; i += 4) {
        const float *w0 = w + i * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        __m512 xb[TL_FEW_ROWS_PASS][4];
        for (ptrdiff_t r = 0; r < m; r++)
            for (int k = 0; k < 4; k++) xb[r][k] = _mm512_set1_ps(x[r * ldx + i + k]);
        for (ptrdiff_t o = 0; o < full; o += 16) {
            tl_prefetch_rows(w0 + o, ldw * (ptrdiff_t)sizeof(float), 0);   /* rows i+4..i+11 */
            __m512 v0 = _mm512_loadu_ps(w0 + o), v1 = _mm512_loadu_ps(w1 + o);
            __m512 v2 = _mm512_loadu_ps(w2 + o), v3 = _mm512_loadu_ps(w3 + o);
            for (ptrdiff_t r = 0; r < m; r++) {
                __m512 acc = _mm512_loadu_ps(y + r * ldy + o);
                acc = _mm512_fmadd_ps(xb[r][0], v0, acc);
                acc = _mm512_fmadd_ps(xb[r][1], v1, acc);
                acc = _mm512_fmadd_ps(xb[r][2], v2, acc);
                acc = _mm512_fmadd_ps(xb[r][3], v3, acc);
                _mm512_storeu_ps(y + r * ldy + o, acc);
            }
        }
        tl_few_rows_rest(x, ldx, m, w, ldw, i, i + 4, full, n_out, y, ldy);
    }
    tl_few_rows_rest(x, ldx, m, w, ldw, blocks, n_in, 0, n_out, y, ldy);
}

__attribute__((target("avx2,fma")))
static void tl_few_rows_avx2(const float *x, ptrdiff_t ldx, ptrdiff_t m, const float *w,
                             ptrdiff_t ldw, ptrdiff_t n_in, ptrdiff_t n_out, float *y,
                             ptrdiff_t ldy)
{
    const ptrdiff_t full = n_out - n_out % 8, blocks = n_in - n_in % 4;
    for (ptrdiff_t i = 0; i < blocks; i += 4) {
        const float *w0 = w + i * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        __m256 xb[TL_FEW_ROWS_PASS][4];
        for (ptrdiff_t r = 0; r < m; r++)
            for (int k = 0; k < 4; k++) xb[r][k] = _mm256_set1_ps(x[r * ldx + i + k]);
        for (ptrdiff_t o = 0; o < full; o += 8) {
            if (o % 16 == 0) tl_prefetch_rows(w0 + o, ldw * (ptrdiff_t)sizeof(float), 0);
            __m256 v0 = _mm256_loadu_ps(w0 + o), v1 = _mm256_loadu_ps(w1 + o);
            __m256 v2 = _mm256_loadu_ps(w2 + o), v3 = _mm256_loadu_ps(w3 + o);
            for (ptrdiff_t r = 0; r < m; r++) {
                __m256 acc = _mm256_loadu_ps(y + r * ldy + o);
                acc = _mm256_fmadd_ps(xb[r][0], v0, acc);
                acc = _mm256_fmadd_ps(xb[r][1], v1, acc);
                acc = _mm256_fmadd_ps(xb[r][2], v2, acc);
                acc = _mm256_fmadd_ps(xb[r][3], v3, acc);
                _mm256_storeu_ps(y + r * ldy + o, acc);
            }
        }
        tl_few_rows_rest(x, ldx, m, w, ldw, i, i + 4, full, n_out, y, ldy);
    }
    tl_few_rows_rest(x, ldx, m, w, ldw, blocks, n_in, 0, n_out, y, ldy);
}
#endif /* TL_QSIMD */

/* y = x @ w for m <= TL_FEW_ROWS_PASS rows (y is overwritten). */
static void tl_few_rows(const float *x, ptrdiff_t ldx, ptrdiff_t m, const float *w,
                        ptrdiff_t ldw, ptrdiff_t n_in, ptrdiff_t n_out, float *y, ptrdiff_t ldy)
{
    for (ptrdiff_t r = 0; r < m; r++) memset(y + r * ldy, 0, (size_t)n_out * sizeof(float));
#if TL_QSIMD
    int level = tl_qsimd_level();
    if (level == 2) { tl_few_rows_avx512(x, ldx, m, w, ldw, n_in, n_out, y, ldy); return; }
    if (level == 1) { tl_few_rows_avx2(x, ldx, m, w, ldw, n_in, n_out, y, ldy); return; }
#endif
    tl_few_rows_rest(x, ldx, m, w, ldw, 0, n_in, 0, n_out, y, ldy);
}

#endif /* TINYLLM_FEW_ROWS_H */
