/* parallel.h: how many OpenMP threads a kernel call runs on -- one rule for every kernel.
 *
 * The rule: a call is split over threads only when one thread would take at least
 * TL_PARALLEL_MIN_NS, 0.1 ms. Below that, waking the other threads costs more than it saves.
 * It was half a millisecond while BLAS ran its own thread pool beside OpenMP's: the two
 * pools' idle threads spun on each other's cores, and a 0.2 ms softmax once took 6 ms inside
 * a training step. With one pool (tinyllm.threads: BLAS runs single-threaded on the OpenMP
 * threads) the threads are awake from the last region; measured on 2 idle cores, GPT
 * training step speedup 1 -> 2 threads at 0.5 ms / 0.1 ms / 0.03 ms: tiny 1.00 / 1.22-1.26 /
 * 1.16, mini 1.05 / 1.32-1.35 / 1.20, small 1.27 / 1.29-1.43 / 1.45.
 *
 * A kernel estimates its one-thread time as its units of work times a cost per unit:
 *
 *   TL_NS_PER_ELEMENT  1.0 ns   an element of a row or elementwise loop on fastexp.h's exp
 *                               (softmax, log-softmax, GELU, LayerNorm, forward or backward;
 *                               0.8 to 2.1 ns measured through tinyllm.kernels, output array
 *                               included: (4096, 256) softmax, GPT medium's LayerNorm and
 *                               GELU shapes; the loops alone were once timed at 0.4)
 *   TL_NS_PER_ERF      10 ns    an element of erf (libm's erf: scalar, not vectorized)
 *   TL_NS_PER_MULADD   0.1 ns   a multiply-add of blockwise attention (B nh L S E of them;
 *                               BLAS does the work): 0.08 (forward) to 0.13 (backward) at
 *                               (8, 8, 256, 64), 0.17 to 0.26 at GPT small's (12, 4, 64, 32),
 *                               whose 64 x 64 x 32 block products are mostly call overhead
 *   TL_NS_PER_GEMM_MULADD 0.025 ns  a multiply-add of a large BLAS matrix product (M N K of
 *                               them; 80 GFLOP/s on one thread: benchmarks/bench_threads.py)
 *   TL_NS_PER_STREAM_MULADD 0.38 ns  a multiply-add of few_rows_matmul, the weight streamed
 *                               from memory (a (320, 960) weight, one row: 118 us)
 *   TL_NS_PER_QMULADD  0.17 ns  a multiply-add with a quantized weight (N out in of them:
 *                               an int8 or 4-bit value converted, then an FMA; measured:
 *                               a (960, 320) int8 layer at one input row, 51 us, in
 *                               benchmarks/bench_quantized.py)
 *
 * How they were measured: benchmarks/bench_threads.py, one thread (OMP_NUM_THREADS=1,
 * OPENBLAS_NUM_THREADS=1), float32, median of 30 calls on (2048, 512) arrays and (8, 8, 256,
 * 64) attention inputs, on a 2-core x86-64 machine with AVX-512. Another machine may be 2x off
 * either way, which is all a threshold needs. At 0.1 ms the rule splits rows and
 * elementwise work from about 100,000 elements, erf from about 10,000, attention from
 * about 1 million multiply-adds (B=8, nh=8, T=256, hs=64 is 270 million) and BLAS products
 * from 4 million (GPT small's (768, 128) @ (128, 384) is 38 million).
 *
 * One exception: few_rows_matmul at 1 or 2 rows (decoding at batch 1) splits from
 * TL_STREAM_MIN_NS, 50 us.
 * A token runs some fifty of them back to back, so the OpenMP threads are still spinning
 * from the last one and start in microseconds; and each product reads a weight no cache
 * holds, which two cores read faster than one. A threshold of 0 (tests) splits it too.
 *
 * Each kernel module's set_parallel_threshold(ns) moves the threshold at run time (tests set
 * 0 to run the threaded paths on small inputs); num_threads() says how many threads a call
 * above it gets. Both come from parallel.pxi.
 */
#ifndef TINYLLM_PARALLEL_H
#define TINYLLM_PARALLEL_H

#define TL_PARALLEL_MIN_NS 1e5
#define TL_NS_PER_ELEMENT 1.0
#define TL_NS_PER_ERF 10.0
#define TL_NS_PER_MULADD 0.1
#define TL_NS_PER_QMULADD 0.17
#define TL_NS_PER_GEMM_MULADD 0.025
#define TL_NS_PER_STREAM_MULADD 0.38
#define TL_STREAM_MIN_NS 5e4

/* Threads a parallel region would use: 1 when built without -fopenmp, where Cython's prange
 * compiles to a serial loop. */
#ifdef _OPENMP
#include <omp.h>
static inline int tl_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int tl_max_threads(void) { return 1; }
#endif

/* Threads for a call whose one-thread time is estimated at `ns`: every thread from
 * `min_ns` on, else one. */
static inline int tl_threads_for(double ns, double min_ns)
{
    return ns >= min_ns ? tl_max_threads() : 1;
}

#endif /* TINYLLM_PARALLEL_H */
