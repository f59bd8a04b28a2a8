/* attention_rows_impl.h: the body of attention_rows.h for TL_REAL (float or double). */

/* Online softmax, one step. The row so far has running max *m and running sum
 * *l = sum exp(s_old - m). A new block s[0..n) arrives: the max becomes m' = max(m, max s),
 * s[j] is overwritten with exp(s[j] - m'), and l' = l exp(m - m') + sum_j exp(s[j] - m').
 * Returns exp(m - m'), the factor the caller multiplies its output accumulator by.
 * While every score seen is -inf (masked) m stays -inf and the block's p are 0. */
TL_MULTIVERSION
static TL_REAL TL_NAME(tl_online_softmax_step)(TL_REAL *s, ptrdiff_t n, TL_REAL *m, TL_REAL *l)
{
    TL_REAL mx = *m;
#pragma omp simd reduction(max:mx)
    for (ptrdiff_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    if (mx == -INFINITY) {              /* all masked so far: nothing to add */
        for (ptrdiff_t j = 0; j < n; j++) s[j] = 0;
        return 1;
    }
    TL_REAL sum = 0;
#pragma omp simd reduction(+:sum)
    for (ptrdiff_t j = 0; j < n; j++) {
        TL_REAL p = TL_EXP(s[j] - mx);  /* exp(-inf) == 0: masked keys drop out */
        s[j] = p;
        sum += p;
    }
    TL_REAL alpha = TL_EXP(*m - mx);    /* 0 on the first unmasked block (m = -inf) */
    *l = *l * alpha + sum;
    *m = mx;
    return alpha;
}

/* Backward, recomputing the probabilities from the saved log-sum-exp: s[j] = exp(s[j] - lse).
 * A row with no visible key has lse = +inf, so its p are 0. */
TL_MULTIVERSION
static void TL_NAME(tl_probs_from_lse)(TL_REAL *s, ptrdiff_t n, TL_REAL lse)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++) s[j] = TL_EXP(s[j] - lse);
}

/* The softmax backward of one row, in place on dp: dp[j] = p[j] (dp[j] - delta), where
 * delta = sum_j p[j] dp[j] = dout . out for the whole row (computed once per row). */
TL_MULTIVERSION
static void TL_NAME(tl_dsoftmax_row)(const TL_REAL *p, TL_REAL *dp, ptrdiff_t n, TL_REAL delta)
{
#pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - delta);
}

/* One query row against n keys without BLAS (a decoding step: one new position per head,
 * where a BLAS call per head costs more than its 2 n e multiply-adds):
 * s[j] = scale * (q . k[j]), the keys' rows e apart. */
TL_MULTIVERSION
static void TL_NAME(tl_row_scores)(const TL_REAL *q, const TL_REAL *k, TL_REAL *s, ptrdiff_t n,
                                   ptrdiff_t e, TL_REAL scale)
{
    for (ptrdiff_t j = 0; j < n; j++) {
        const TL_REAL *kj = k + j * e;
        TL_REAL acc = 0;
#pragma omp simd reduction(+:acc)
        for (ptrdiff_t c = 0; c < e; c++) acc += q[c] * kj[c];
        s[j] = scale * acc;
    }
}

/* out[0..ev) += sum_j p[j] v[j], the values' rows ev apart, added in order of j. */
TL_MULTIVERSION
static void TL_NAME(tl_add_weighted_rows)(const TL_REAL *p, const TL_REAL *v, TL_REAL *out,
                                          ptrdiff_t n, ptrdiff_t ev)
{
    for (ptrdiff_t j = 0; j < n; j++) {
        const TL_REAL *vj = v + j * ev;
        TL_REAL pj = p[j];
#pragma omp simd
        for (ptrdiff_t c = 0; c < ev; c++) out[c] += pj * vj[c];
    }
}
