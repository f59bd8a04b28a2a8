/* attention_rows.h: the per-row softmax steps of blockwise attention (ext/attention.pyx).
 *
 * One row of a score block s[0..n) at a time, float32 and float64, fastexp.h's vectorizing
 * exp, multi-versioned (see softmax_rows.h for why these pragmas and attributes).
 */
#ifndef TINYLLM_ATTENTION_ROWS_H
#define TINYLLM_ATTENTION_ROWS_H

#include <math.h>
#include <stddef.h>

#include "fastexp.h"

#define TL_IMPL "attention_rows_impl.h"
#include "real_types.h"

#endif /* TINYLLM_ATTENTION_ROWS_H */
