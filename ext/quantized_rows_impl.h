/* quantized_rows_impl.h: the body of quantized_rows.h for TL_REAL (float or double). */

TL_MULTIVERSION
static TL_REAL TL_NAME(tl_q8_dot)(const TL_REAL *x, const int8_t *q, ptrdiff_t n)
{
    TL_REAL acc = 0;
#pragma omp simd reduction(+:acc)
    for (ptrdiff_t i = 0; i < n; i++) acc += x[i] * (TL_REAL)q[i];
    return acc;
}

/* n inputs in groups of g (g even, n a multiple of g), one scale per group. */
TL_MULTIVERSION
static TL_REAL TL_NAME(tl_q4_dot)(const TL_REAL *x, const uint8_t *p, const TL_REAL *s,
                                  ptrdiff_t n, ptrdiff_t g)
{
    TL_REAL acc = 0;
    for (ptrdiff_t k = 0; k < n / g; k++) {
        const TL_REAL *xk = x + k * g;
        const uint8_t *pk = p + k * (g / 2);
        TL_REAL part = 0;
#pragma omp simd reduction(+:part)
        for (ptrdiff_t j = 0; j < g / 2; j++) {
            int lo = (int)(pk[j] & 0x0F) - 8, hi = (int)(pk[j] >> 4) - 8;
            part += xk[2 * j] * (TL_REAL)lo + xk[2 * j + 1] * (TL_REAL)hi;
        }
        acc += part * s[k];
    }
    return acc;
}
