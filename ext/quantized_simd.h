/* quantized_simd.h: the float32 four-row dot products of quantized_rows.h, written with
 * AVX-512 and AVX2 intrinsics, and a dispatcher that picks the widest the CPU runs.
 *
 * Why: GCC vectorizes the portable loops of quantized_rows_impl.h with 128-bit registers
 * only (an int8 -> float widening of 4x makes it split each load three ways), so they ran at
 * ~0.2 ns per multiply-add: slower than BLAS reading four times the bytes. Here one
 * instruction widens 16 int8 (or 16 bytes of nibbles) straight to 16 int32, one converts them
 * to floats and one multiply-adds them: about 3 instructions per 16 weights and row.
 *
 *   tl_q8_dots4(x, q, ld, n, out)           as tl_q8_dots_f32
 *   tl_q4_dots4(x, p, ld, s, ls, n, g, out) as tl_q4_dots_f32 (its fast paths need g to be a
 *                                           multiple of 32 (AVX-512) or 16 (AVX2))
 *
 * The sums are the same as the portable loops' up to the order of float additions. Other
 * CPUs and compilers (ARM, MSVC, clang without the builtins) get the portable loops.
 */
#ifndef TINYLLM_QUANTIZED_SIMD_H
#define TINYLLM_QUANTIZED_SIMD_H

#include "quantized_rows.h"

#if defined(__x86_64__) && defined(__GNUC__)
#  define TL_QSIMD 1
#  include <immintrin.h>
#else
#  define TL_QSIMD 0
#endif

#if TL_QSIMD
/* What the CPU runs: 2 AVX-512 F+BW, 1 AVX2+FMA, 0 neither. Idempotent, so a race between
 * threads is harmless. */
static int tl_qsimd_cpu_level(void)
{
    static int level = -1;
    if (level < 0) {
        __builtin_cpu_init();
        level = (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) ? 2
                : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
    }
    return level;
}
#endif

/* The level in use: the CPU's, or lower when a test asks for it (tl_qsimd_set_level). */
static int tl_qsimd_limit = 2;

static int tl_qsimd_level(void)
{
#if TL_QSIMD
    int cpu = tl_qsimd_cpu_level();
    return cpu < tl_qsimd_limit ? cpu : tl_qsimd_limit;
#else
    return 0;
#endif
}

/* Use at most `level` (0..2) from now on; returns the level in use. */
static int tl_qsimd_set_level(int level)
{
    tl_qsimd_limit = level < 0 ? 0 : level > 2 ? 2 : level;
    return tl_qsimd_level();
}

#if TL_QSIMD
/* Ask for the cache line at byte `offset` of the 8 rows after these 4 (the next two calls'
 * rows). Between two layers' products the interpreter runs for tens of microseconds, and the
 * hardware prefetcher starts each call cold: measured on a (960, 320) int8 layer with 100 us
 * of other work between calls, 51 us per call without this, 32 with it (25 back to back).
 * A prefetch past the end of the weight is harmless: it never faults. */
static inline void tl_prefetch_rows(const void *rows, ptrdiff_t ld, ptrdiff_t offset)
{
    for (int k = 4; k < 12; k++)
        _mm_prefetch((const char *)rows + k * ld + offset, _MM_HINT_T0);
}

/* ----------------------------------------------------------------------- AVX-512 */
__attribute__((target("avx512f,avx512bw")))
static void tl_q8_dots4_avx512(const float *x, const int8_t *q, ptrdiff_t ld, ptrdiff_t n,
                               float *out)
{
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 xi = _mm512_loadu_ps(x + i);
        if ((i & 63) == 0) tl_prefetch_rows(q, ld, i);
        for (int k = 0; k < 4; k++) {
            __m128i w8 = _mm_loadu_si128((const __m128i *)(q + k * ld + i));
            a[k] = _mm512_fmadd_ps(xi, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(w8)), a[k]);
        }
    }
    for (int k = 0; k < 4; k++) {
        float tail = 0;
        for (ptrdiff_t j = i; j < n; j++) tail += x[j] * (float)q[k * ld + j];
        out[k] = _mm512_reduce_add_ps(a[k]) + tail;
    }
}

/* One group: 16 bytes at a time hold 16 inputs (low nibbles: j..) and 16 more (high: j+h..).
 * A nibble becomes its float value (nibble - 8) in one instruction: vpermps looks it up in a
 * 16-entry table of floats, reading only the low 4 bits of each index (so the high nibble
 * needs a shift, the low one not even a mask). */
__attribute__((target("avx512f,avx512bw")))
static void tl_q4_dots4_avx512(const float *x, const uint8_t *p, ptrdiff_t ld, const float *s,
                               ptrdiff_t ls, ptrdiff_t n, ptrdiff_t g, float *out)
{
    const ptrdiff_t h = g / 2;
    const __m512 table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    for (ptrdiff_t k = 0; k < n / g; k++) {
        const float *xk = x + k * g;
        __m512 b[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        for (ptrdiff_t j = 0; j < h; j += 16) {
            __m512 xl = _mm512_loadu_ps(xk + j), xh = _mm512_loadu_ps(xk + j + h);
            if (((k * h + j) & 63) == 0) tl_prefetch_rows(p, ld, k * h + j);
            for (int r = 0; r < 4; r++) {
                __m128i bytes = _mm_loadu_si128((const __m128i *)(p + r * ld + k * h + j));
                __m512i v = _mm512_cvtepu8_epi32(bytes);
                __m512 lo = _mm512_permutexvar_ps(v, table);
                __m512 hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table);
                b[r] = _mm512_fmadd_ps(xl, lo, b[r]);
                b[r] = _mm512_fmadd_ps(xh, hi, b[r]);
            }
        }
        for (int r = 0; r < 4; r++)
            a[r] = _mm512_fmadd_ps(_mm512_set1_ps(s[k + r * ls]), b[r], a[r]);
    }
    for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(a[r]);
}

/* ----------------------------------------------------------------------- AVX2 */
__attribute__((target("avx2,fma")))
static float tl_hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
static void tl_q8_dots4_avx2(const float *x, const int8_t *q, ptrdiff_t ld, ptrdiff_t n,
                             float *out)
{
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xi = _mm256_loadu_ps(x + i);
        if ((i & 63) == 0) tl_prefetch_rows(q, ld, i);
        for (int k = 0; k < 4; k++) {
            __m128i w8 = _mm_loadl_epi64((const __m128i *)(q + k * ld + i));
            a[k] = _mm256_fmadd_ps(xi, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(w8)), a[k]);
        }
    }
    for (int k = 0; k < 4; k++) {
        float tail = 0;
        for (ptrdiff_t j = i; j < n; j++) tail += x[j] * (float)q[k * ld + j];
        out[k] = tl_hsum256(a[k]) + tail;
    }
}

__attribute__((target("avx2,fma")))
static void tl_q4_dots4_avx2(const float *x, const uint8_t *p, ptrdiff_t ld, const float *s,
                             ptrdiff_t ls, ptrdiff_t n, ptrdiff_t g, float *out)
{
    const ptrdiff_t h = g / 2;
    const __m256i low = _mm256_set1_epi32(0x0F), eight = _mm256_set1_epi32(8);
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    for (ptrdiff_t k = 0; k < n / g; k++) {
        const float *xk = x + k * g;
        __m256 b[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
        for (ptrdiff_t j = 0; j < h; j += 8) {
            __m256 xl = _mm256_loadu_ps(xk + j), xh = _mm256_loadu_ps(xk + j + h);
            if (((k * h + j) & 63) == 0) tl_prefetch_rows(p, ld, k * h + j);
            for (int r = 0; r < 4; r++) {
                __m128i bytes = _mm_loadl_epi64((const __m128i *)(p + r * ld + k * h + j));
                __m256i v = _mm256_cvtepu8_epi32(bytes);
                __m256i lo = _mm256_sub_epi32(_mm256_and_si256(v, low), eight);
                __m256i hi = _mm256_sub_epi32(_mm256_srli_epi32(v, 4), eight);
                b[r] = _mm256_fmadd_ps(xl, _mm256_cvtepi32_ps(lo), b[r]);
                b[r] = _mm256_fmadd_ps(xh, _mm256_cvtepi32_ps(hi), b[r]);
            }
        }
        for (int r = 0; r < 4; r++)
            a[r] = _mm256_fmadd_ps(_mm256_set1_ps(s[k + r * ls]), b[r], a[r]);
    }
    for (int r = 0; r < 4; r++) out[r] = tl_hsum256(a[r]);
}
#endif /* TL_QSIMD */

/* ----------------------------------------------------------------------- dispatch */
static inline void tl_q8_dots4(const float *x, const int8_t *q, ptrdiff_t ld, ptrdiff_t n,
                               float *out)
{
#if TL_QSIMD
    int level = tl_qsimd_level();
    if (level == 2) { tl_q8_dots4_avx512(x, q, ld, n, out); return; }
    if (level == 1) { tl_q8_dots4_avx2(x, q, ld, n, out); return; }
#endif
    tl_q8_dots_f32(x, q, ld, n, out);
}

static inline void tl_q4_dots4(const float *x, const uint8_t *p, ptrdiff_t ld, const float *s,
                               ptrdiff_t ls, ptrdiff_t n, ptrdiff_t g, float *out)
{
#if TL_QSIMD
    int level = tl_qsimd_level();
    if (level == 2 && g % 32 == 0) { tl_q4_dots4_avx512(x, p, ld, s, ls, n, g, out); return; }
    if (level >= 1 && g % 16 == 0) { tl_q4_dots4_avx2(x, p, ld, s, ls, n, g, out); return; }
#endif
    tl_q4_dots_f32(x, p, ld, s, ls, n, g, out);
}

#endif /* TINYLLM_QUANTIZED_SIMD_H */
