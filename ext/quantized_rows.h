/* quantized_rows.h: dot products of float inputs with int8 or packed 4-bit weight rows.
 *
 * A quantized linear layer y = x W^T + b at batch 1 reads each weight once: its speed is the
 * speed of reading W. These loops read the stored integers (1 byte, or half a byte, per
 * weight instead of 4) and convert them to floats in registers; nothing the size of W is
 * ever dequantized into memory.
 *
 *   tl_q8_dot(x, q, n)         sum_i x[i] q[i]                      q int8
 *   tl_q4_dot(x, p, s, n, g)   sum_k s[k] sum_{i in group k} x[i] (nibble_i - 8)
 *                              p: n/2 bytes; in group k, byte j holds input j (low nibble)
 *                              and input j + g/2 (high nibble): llama.cpp's Q4_0 layout
 *   tl_q8_dots, tl_q4_dots     the same for 4 rows at once (one load of x for all four)
 *
 * One template, quantized_rows_impl.h, instantiated for float and double inputs by
 * real_types.h; TL_MULTIVERSION compiles each for AVX-512, AVX2+FMA and baseline x86-64.
 */
#ifndef TINYLLM_QUANTIZED_ROWS_H
#define TINYLLM_QUANTIZED_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "fastexp.h"   /* TL_MULTIVERSION */

#define TL_IMPL "quantized_rows_impl.h"
#include "real_types.h"

#endif /* TINYLLM_QUANTIZED_ROWS_H */
