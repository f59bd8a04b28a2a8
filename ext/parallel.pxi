# parallel.pxi: the Python side of parallel.h's rule, included by every ext/*.pyx.
#
# Each compiled module gets its own copy of the threshold (set_parallel_threshold changes
# only the module it is called on) and one helper, _threads(ns), for its prange loops.

cdef extern from "parallel.h" nogil:
    int tl_max_threads()
    int tl_threads_for(double ns, double min_ns)
    const double TL_PARALLEL_MIN_NS
    const double TL_NS_PER_ELEMENT
    const double TL_NS_PER_ERF
    const double TL_NS_PER_MULADD
    const double TL_NS_PER_QMULADD
    const double TL_NS_PER_GEMM_MULADD
    const double TL_NS_PER_STREAM_MULADD
    const double TL_STREAM_MIN_NS

cdef double _min_ns = TL_PARALLEL_MIN_NS


def num_threads():
    """Number of OpenMP threads a call above the threshold runs on (1 without OpenMP)."""
    return tl_max_threads()


def set_parallel_threshold(double ns):
    """Split calls whose one-thread time is estimated at >= `ns` nanoseconds; returns the old."""
    global _min_ns
    old, _min_ns = _min_ns, ns
    return old


cdef inline int _threads(double ns) noexcept nogil:
    """Threads for a call of about `ns` nanoseconds on one thread (see parallel.h)."""
    return tl_threads_for(ns, _min_ns)
