/* Instantiates the implementation header named by TL_IMPL once per real type:
 *   float:  TL_REAL float,  TL_SUFFIX f32, TL_EXP tl_expf
 *   double: TL_REAL double, TL_SUFFIX f64, TL_EXP tl_exp
 * Usage:  #define TL_IMPL "foo_rows_impl.h"
 *         #include "real_types.h"
 * No include guard: each kernel header includes it once with its own TL_IMPL.
 */
#ifndef TL_IMPL
#error "define TL_IMPL (the implementation header) before including real_types.h"
#endif

#define TL_REAL float
#define TL_SUFFIX f32
#define TL_EXP tl_expf
#include TL_IMPL
#undef TL_REAL
#undef TL_SUFFIX
#undef TL_EXP

#define TL_REAL double
#define TL_SUFFIX f64
#define TL_EXP tl_exp
#include TL_IMPL
#undef TL_REAL
#undef TL_SUFFIX
#undef TL_EXP

#undef TL_IMPL
