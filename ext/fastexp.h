/* fastexp.h: branch-free float32 and float64 exp that vectorize, and the multi-versioning macro.
 *
 * Why not expf() from libm: without -ffast-math, GCC will not vectorize a loop that calls
 * it, and a portable build (no -march=native) only targets SSE2. NumPy's own exp uses
 * AVX-512/AVX2 at run time, so a scalar libm loop loses to NumPy. The polynomial below is
 * plain arithmetic, so `#pragma omp simd` loops around it vectorize, and TL_MULTIVERSION
 * compiles those loops once per instruction set and picks the widest one at load time.
 *
 * Method: exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 with |r| <= ln(2)/2,
 * exp(r) from a polynomial: Cephes expf's degree 7 for float32, Taylor to degree 13 for
 * float64. Relative error is within 2 ulp of the exact value (float32 ~2.4e-7, float64
 * ~4.4e-16), checked in tests/test_kernels.py.
 */
#ifndef TINYLLM_FASTEXP_H
#define TINYLLM_FASTEXP_H

#include <stdint.h>

/* Compile a function for AVX-512, AVX2+FMA and baseline x86-64; the dynamic loader picks
 * the best one for the CPU (a glibc ifunc, hence the __GLIBC__ test: musl has none).
 * Elsewhere it is a plain function, compiled for the baseline. GCC 12 knows the x86-64
 * micro-architecture levels, whose v3 adds FMA to AVX2; older compilers get AVX2 alone. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__has_attribute)
#  if __has_attribute(target_clones) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#    define TL_MULTIVERSION \
        __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#  elif __has_attribute(target_clones)
#    define TL_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#  endif
#endif
#ifndef TL_MULTIVERSION
#  define TL_MULTIVERSION
#endif

/* Inputs are clamped to [TL_EXPF_LO, TL_EXPF_HI] before the range reduction. At TL_EXPF_LO,
 * n = -127 and the 2^n built below has a zero exponent field, i.e. it is exactly 0.0: so
 * exp(-inf) == 0 (masked logits) and exp(x) == 0 for x < -87.68, where the true value
 * (< 8.2e-39) is below the smallest normal float anyway. Above TL_EXPF_HI the result
 * saturates near 2.4e38 instead of overflowing to inf; softmax only needs x <= 0.
 * The clamp is a compare-and-select, not fmaxf/fminf: NaN fails both compares, passes
 * through and propagates (and fmaxf does not vectorize without -ffast-math). */
#define TL_EXPF_LO (-88.0f)
#define TL_EXPF_HI (88.3762626647949f)

typedef union { float f; int32_t i; } tl_f32_bits;

/* cond ? a : b on the bit patterns. A plain ternary here lets GCC see that a clamped input
 * gives a constant result and turn the select back into a branch ("jump threading"); the
 * loop then has control flow and is not vectorized. Masks keep it straight-line code. */
static inline float tl_select_f32(int cond, float a, float b)
{
    tl_f32_bits ua, ub;
    ua.f = a;
    ub.f = b;
    int32_t mask = -(int32_t)(cond != 0);   /* all ones when cond holds */
    ua.i = (ua.i & mask) | (ub.i & ~mask);
    return ua.f;
}

static inline float tl_expf(float x)
{
    /* 1.5 * 2^23: adding it pushes the fraction bits out, so the float add rounds
     * x / ln 2 to the nearest integer, and that integer lands in the low mantissa bits. */
    const float magic = 12582912.0f;
    const float log2e = 1.44269504088896341f;
    /* ln 2 split in two so n * ln2_hi is exact for the |n| <= 127 we meet. */
    const float ln2_hi = 0.693359375f;
    const float ln2_lo = -2.12194440e-4f;

    x = tl_select_f32(x < TL_EXPF_LO, TL_EXPF_LO, x);
    x = tl_select_f32(x > TL_EXPF_HI, TL_EXPF_HI, x);

    tl_f32_bits t;
    t.f = x * log2e + magic;
    float n = t.f - magic;
    int32_t ni = t.i - 0x4B400000;          /* 0x4B400000 is magic's bit pattern */

    float r = x - n * ln2_hi;
    r = r - n * ln2_lo;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;

    tl_f32_bits scale;
    scale.i = (ni + 127) << 23;             /* 2^n written straight into the exponent field */
    return p * scale.f;
}

/* The float64 twin of the above: same steps, 1.5 * 2^52 as the rounding constant, 2^n in
 * an 11-bit exponent field. At TL_EXP_LO, n = -1023 and 2^n is exactly 0.0, so exp(x) == 0
 * for x < -708.74 (the true value is below the smallest normal double, 2.2e-308). */
#define TL_EXP_LO (-709.0)
#define TL_EXP_HI (709.0)

typedef union { double f; int64_t i; } tl_f64_bits;

static inline double tl_select_f64(int cond, double a, double b)
{
    tl_f64_bits ua, ub;
    ua.f = a;
    ub.f = b;
    int64_t mask = -(int64_t)(cond != 0);
    ua.i = (ua.i & mask) | (ub.i & ~mask);
    return ua.f;
}

static inline double tl_exp(double x)
{
    const double magic = 6755399441055744.0;          /* 1.5 * 2^52 */
    const double log2e = 1.4426950408889634074;
    /* ln 2 = ln2_hi + ln2_lo, with ln2_hi short enough that n * ln2_hi is exact. */
    const double ln2_hi = 6.93145751953125e-1;
    const double ln2_lo = 1.42860682030941723212e-6;

    x = tl_select_f64(x < TL_EXP_LO, TL_EXP_LO, x);
    x = tl_select_f64(x > TL_EXP_HI, TL_EXP_HI, x);

    tl_f64_bits t;
    t.f = x * log2e + magic;
    double n = t.f - magic;
    int64_t ni = t.i - 0x4338000000000000LL;    /* magic's bit pattern */

    double r = x - n * ln2_hi;
    r = r - n * ln2_lo;
    double r2 = r * r;
    /* exp(r) = 1 + r + r^2 (1/2! + r/3! + ... + r^11/13!); the first term left out,
     * r^14/14!, is below 4e-18 for |r| <= ln(2)/2. */
    double p = 1.0 / 6227020800.0;                 /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;                               /* 1/2! */
    p = p * r2 + r + 1.0;

    tl_f64_bits scale;
    scale.i = (ni + 1023) << 52;
    return p * scale.f;
}

#endif /* TINYLLM_FASTEXP_H */
