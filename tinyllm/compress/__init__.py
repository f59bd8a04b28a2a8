"""Smaller models: post-training quantization of a run (`tinyllm compress`).

    quantize   `compress_run`: a run's best model with its Linear/Conv1D weights in int8 (per
               tensor or per output channel) or 4-bit groups (or magnitude-pruned), written
               as a model directory that `tinyllm generate`, `tinyllm eval` and `GPT.load`
               read
    merge      `merge_runs`: the weighted mean of several runs' weights (a model soup)
    analysis   where quantization hurts: per-layer outliers and errors, loss per scheme

The quantizer and the quantized layer are `tinyllm.nn.quantized`; this package is the
workflow above them (it sits beside `training`).
"""

from .merge import MergeResult, merge_runs
from .quantize import METHODS, CompressResult, compress_run, scheme_for

__all__ = ["METHODS", "CompressResult", "MergeResult", "compress_run", "merge_runs",
           "scheme_for"]
