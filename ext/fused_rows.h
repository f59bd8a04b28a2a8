/* fused_rows.h: GELU and LayerNorm, forward and backward, one loop each.
 *
 * NumPy evaluates GELU's tanh form as ~10 whole-array passes, each writing a temporary the
 * size of the activation; here every element is read once and written once. LayerNorm is
 * per row (D features): two passes over a row that sits in L1 cache.
 *
 * The float32 and float64 versions are one template, fused_rows_impl.h, instantiated by
 * real_types.h (suffixes _f32 and _f64). The exp is fastexp.h's polynomial, so the loops
 * vectorize (see fastexp.h for why libm's would not); TL_MULTIVERSION compiles each
 * function for AVX-512, AVX2+FMA and baseline x86-64.
 */
#ifndef TINYLLM_FUSED_ROWS_H
#define TINYLLM_FUSED_ROWS_H

#include <math.h>
#include <stddef.h>

#include "fastexp.h"

#define TL_GELU_K0 0.7978845608028654   /* sqrt(2 / pi) */
#define TL_GELU_K1 0.044715
#define TL_INV_SQRT2 0.7071067811865476
#define TL_INV_SQRT_2PI 0.3989422804014327

#define TL_IMPL "fused_rows_impl.h"
#include "real_types.h"

#endif /* TINYLLM_FUSED_ROWS_H */
