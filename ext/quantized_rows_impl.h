/* quantized_rows_impl.h: the body of quantized_rows.h for TL_REAL (float or double). */

/* out[k] = sum_i x[i] q_k[i] for the TL_QROWS rows q_k = q + k ld (int8). Several rows at
 * once: each x[i] is loaded once for all of them, and the independent sums keep the FMA
 * units busy. */
TL_MULTIVERSION
static void TL_NAME(tl_q8_dots)(const TL_REAL *x, const int8_t *q, ptrdiff_t ld, ptrdiff_t n,
                                TL_REAL *out)
{
    const int8_t *q0 = q, *q1 = q + ld, *q2 = q + 2 * ld, *q3 = q + 3 * ld;
    TL_REAL a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+:a0, a1, a2, a3)
    for (ptrdiff_t i = 0; i < n; i++) {
        TL_REAL xi = x[i];
        a0 += xi * (TL_REAL)q0[i];
        a1 += xi * (TL_REAL)q1[i];
        a2 += xi * (TL_REAL)q2[i];
        a3 += xi * (TL_REAL)q3[i];
    }
    out[0] = a0;
    out[1] = a1;
    out[2] = a2;
    out[3] = a3;
}

TL_MULTIVERSION
static TL_REAL TL_NAME(tl_q8_dot)(const TL_REAL *x, const int8_t *q, ptrdiff_t n)
{
    TL_REAL acc = 0;
#pragma omp simd reduction(+:acc)
    for (ptrdiff_t i = 0; i < n; i++) acc += x[i] * (TL_REAL)q[i];
    return acc;
}

/* The same for 4-bit rows in groups of g inputs (Q4_0's layout: byte j of a group holds
 * input j in its low nibble and input j + g/2 in its high one, each stored as value + 8),
 * one scale per group: s_k + k ls is row k's scales. */
TL_MULTIVERSION
static void TL_NAME(tl_q4_dots)(const TL_REAL *x, const uint8_t *p, ptrdiff_t ld,
                                const TL_REAL *s, ptrdiff_t ls, ptrdiff_t n, ptrdiff_t g,
                                TL_REAL *out)
{
    const ptrdiff_t h = g / 2;
    TL_REAL a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (ptrdiff_t k = 0; k < n / g; k++) {
        const TL_REAL *xk = x + k * g;
        const uint8_t *p0 = p + k * h, *p1 = p0 + ld, *p2 = p0 + 2 * ld, *p3 = p0 + 3 * ld;
        TL_REAL b0 = 0, b1 = 0, b2 = 0, b3 = 0;
#pragma omp simd reduction(+:b0, b1, b2, b3)
        for (ptrdiff_t j = 0; j < h; j++) {
            TL_REAL xl = xk[j], xh = xk[j + h];
            b0 += xl * (TL_REAL)((int)(p0[j] & 0x0F) - 8) + xh * (TL_REAL)((int)(p0[j] >> 4) - 8);
            b1 += xl * (TL_REAL)((int)(p1[j] & 0x0F) - 8) + xh * (TL_REAL)((int)(p1[j] >> 4) - 8);
            b2 += xl * (TL_REAL)((int)(p2[j] & 0x0F) - 8) + xh * (TL_REAL)((int)(p2[j] >> 4) - 8);
            b3 += xl * (TL_REAL)((int)(p3[j] & 0x0F) - 8) + xh * (TL_REAL)((int)(p3[j] >> 4) - 8);
        }
        a0 += b0 * s[k];
        a1 += b1 * s[k + ls];
        a2 += b2 * s[k + 2 * ls];
        a3 += b3 * s[k + 3 * ls];
    }
    out[0] = a0;
    out[1] = a1;
    out[2] = a2;
    out[3] = a3;
}

TL_MULTIVERSION
static TL_REAL TL_NAME(tl_q4_dot)(const TL_REAL *x, const uint8_t *p, const TL_REAL *s,
                                  ptrdiff_t n, ptrdiff_t g)
{
    const ptrdiff_t h = g / 2;
    TL_REAL acc = 0;
    for (ptrdiff_t k = 0; k < n / g; k++) {
        const TL_REAL *xk = x + k * g;
        const uint8_t *pk = p + k * h;
        TL_REAL part = 0;
#pragma omp simd reduction(+:part)
        for (ptrdiff_t j = 0; j < h; j++)
            part += xk[j] * (TL_REAL)((int)(pk[j] & 0x0F) - 8)
                    + xk[j + h] * (TL_REAL)((int)(pk[j] >> 4) - 8);
        acc += part * s[k];
    }
    return acc;
}
