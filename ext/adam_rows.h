/* adam_rows.h: one Adam(W) step over a stretch of a parameter, every element read and written
 * once (NumPy's twin makes about ten whole-array passes, each through memory).
 *
 * The arithmetic is the twin's (tinyllm/kernels/reference.py, adam_update), operation for
 * operation and in its precision: every constant arrives already rounded to TL_REAL as NumPy
 * rounds a Python float against a float32 array, and no multiply-add is fused (setup.py
 * compiles ext/optim.pyx with -ffp-contract=off: an FMA rounds once where NumPy rounds twice),
 * so the result is the twin's to the bit. It also passes -fno-math-errno (v >= 0: sqrt never
 * sets errno), without which GCC calls sqrt per element and the loop does not vectorize.
 *
 *   c.decay       1 - lr * wd           (AdamW; 1 when there is none)
 *   c.l2          wd                    (Adam's L2 penalty added to g; 0 when none)
 *   c.w1          1 - beta1  (m += (g - m) w1, when w1 < 0.5, as torch's lerp)
 *   c.one_minus_w1 beta1     (m = g - (g - m) beta1, when w1 >= 0.5)
 *   c.beta2, c.w2 = 1 - beta2, c.sqrt_bc2 = sqrt(1 - beta2^t), c.eps, c.step_size = lr / bc1
 *
 * float and double from one template (adam_rows_impl.h via real_types.h); TL_MULTIVERSION
 * compiles each for AVX-512, AVX2 and baseline x86-64.
 */
#ifndef TINYLLM_ADAM_ROWS_H
#define TINYLLM_ADAM_ROWS_H

#include <math.h>
#include <stddef.h>

#include "fastexp.h"   /* TL_MULTIVERSION */

#define TL_IMPL "adam_rows_impl.h"
#include "real_types.h"

#endif /* TINYLLM_ADAM_ROWS_H */
