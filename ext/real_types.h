/* Instantiates the implementation header named by TL_IMPL once per real type:
 *   float:  TL_REAL float,  TL_SUFFIX f32, TL_EXP tl_expf, TL_LOG logf
 *   double: TL_REAL double, TL_SUFFIX f64, TL_EXP tl_exp,  TL_LOG log
 * and TL_NAME(name), which appends the suffix: TL_NAME(tl_softmax_fwd) is tl_softmax_fwd_f32.
 * Usage:  #define TL_IMPL "foo_rows_impl.h"
 *         #include "real_types.h"
 * No include guard: each kernel header includes it once with its own TL_IMPL.
 */
#ifndef TL_IMPL
#error "define TL_IMPL (the implementation header) before including real_types.h"
#endif

#define TL_CAT2(a, b) a##_##b
#define TL_CAT(a, b) TL_CAT2(a, b)
#define TL_NAME(name) TL_CAT(name, TL_SUFFIX)

#define TL_REAL float
#define TL_SUFFIX f32
#define TL_EXP tl_expf
#define TL_LOG logf
#include TL_IMPL
#undef TL_REAL
#undef TL_SUFFIX
#undef TL_EXP
#undef TL_LOG

#define TL_REAL double
#define TL_SUFFIX f64
#define TL_EXP tl_exp
#define TL_LOG log
#include TL_IMPL
#undef TL_REAL
#undef TL_SUFFIX
#undef TL_EXP
#undef TL_LOG

#undef TL_CAT2
#undef TL_CAT
#undef TL_NAME
#undef TL_IMPL
