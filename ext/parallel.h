/* parallel.h: how many OpenMP threads a kernel call runs on -- one rule for every kernel.
 *
 * The rule: a call is split over threads only when one thread would take at least
 * TL_PARALLEL_MIN_NS, half a millisecond. Below that, waking the other threads costs more
 * than it saves: microseconds on an idle machine, but milliseconds when the cores are busy
 * (other processes, BLAS threads) -- a 0.2 ms softmax once took 6 ms inside a training step.
 *
 * A kernel estimates its one-thread time as its units of work times a cost per unit:
 *
 *   TL_NS_PER_ELEMENT  0.4 ns   an element of a row or elementwise loop on fastexp.h's exp
 *                               (softmax, log-softmax, GELU, LayerNorm, forward or backward)
 *   TL_NS_PER_ERF      10 ns    an element of erf (libm's erf: scalar, not vectorized)
 *   TL_NS_PER_MULADD   0.04 ns  a multiply-add of blockwise attention (B nh L S E of them;
 *                               BLAS does the work)
 *   TL_NS_PER_GEMM_MULADD 0.025 ns  a multiply-add of a large BLAS matrix product (M N K of
 *                               them; 80 GFLOP/s on one thread: benchmarks/bench_threads.py)
 *   TL_NS_PER_QMULADD  0.17 ns  a multiply-add with a quantized weight (N out in of them:
 *                               an int8 or 4-bit value converted, then an FMA; measured:
 *                               a (960, 320) int8 layer at one input row, 51 us, in
 *                               benchmarks/bench_quantized.py)
 *
 * How they were measured: benchmarks/bench_threads.py, one thread (OMP_NUM_THREADS=1,
 * OPENBLAS_NUM_THREADS=1), float32, median of 30 calls on (2048, 512) arrays and (8, 8, 256,
 * 64) attention inputs, on a 2-core x86-64 machine with AVX-512. Another machine may be 2x off
 * either way, which is all a threshold needs. At half a millisecond the rule splits rows and
 * elementwise work from about 1.2 million elements, erf from about 50,000 and attention from
 * about 12 million multiply-adds (B=8, nh=8, T=256, hs=64 is 270 million).
 *
 * Each kernel module's set_parallel_threshold(ns) moves the threshold at run time (tests set
 * 0 to run the threaded paths on small inputs); num_threads() says how many threads a call
 * above it gets. Both come from parallel.pxi.
 */
#ifndef TINYLLM_PARALLEL_H
#define TINYLLM_PARALLEL_H

#define TL_PARALLEL_MIN_NS 5e5
#define TL_NS_PER_ELEMENT 0.4
#define TL_NS_PER_ERF 10.0
#define TL_NS_PER_MULADD 0.04
#define TL_NS_PER_QMULADD 0.17
#define TL_NS_PER_GEMM_MULADD 0.025

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
