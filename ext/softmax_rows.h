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
 * The float32 and float64 versions are one template, softmax_rows_impl.h, instantiated by
 * real_types.h: tl_softmax_fwd_f32, tl_softmax_fwd_f64, and so on.
 */
#ifndef TINYLLM_SOFTMAX_ROWS_H
#define TINYLLM_SOFTMAX_ROWS_H

#include <math.h>
#include <stddef.h>

#include "fastexp.h"

#define TL_IMPL "softmax_rows_impl.h"
#include "real_types.h"

#endif /* TINYLLM_SOFTMAX_ROWS_H */
