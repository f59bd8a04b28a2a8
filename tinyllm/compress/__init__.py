"""Smaller models: post-training quantization of a run (`tinyllm compress`).

    quantize   `compress_run`: a run's best model with its Linear/Conv1D weights in int8 (per
               tensor or per output channel) or 4-bit groups, written as a model directory that
               `tinyllm generate`, `tinyllm eval` and `GPT.load` read

The quantizer and the quantized layer are `tinyllm.nn.quantized`; this package is the
workflow above them (it sits beside `training`).
"""

from .quantize import METHODS, CompressResult, compress_run, scheme_for

__all__ = ["METHODS", "CompressResult", "compress_run", "scheme_for"]
