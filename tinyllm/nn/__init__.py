"""Layers and containers with PyTorch's names: `Module`, `Linear`, `MultiHeadAttention`, ...

>>> import tinyllm.nn as nn
>>> block = nn.TransformerBlock(n_embd=32, n_head=4, is_causal=True)
>>> block.num_params()
12704
"""

from . import init
from .additive_attention import AdditiveAttention
from .attention import KVCache, LayerKVCache, MultiHeadAttention, attend, causal_mask
from .layers import (
    ACTIVATIONS,
    GELU,
    Conv1D,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    ReLU,
    get_activation,
)
from .lora import (
    LoraConfig,
    LoRALinear,
    apply_lora,
    get_nb_trainable_parameters,
    lora_layers,
    lora_state_dict,
    merge_lora,
    named_lora_parameters,
    unload_lora,
    unmerge_lora,
)
from .lstm import LSTM
from .module import IncompatibleKeys, Module, ModuleList, Parameter, StateDictError
from .quantized import (
    QuantizedLinear,
    QuantScheme,
    dequantize_weight,
    quantize_model,
    quantize_weight,
    quantized_layers,
    weight_bytes,
)
from .transformer import FeedForward, TransformerBlock

__all__ = [
    "ACTIVATIONS", "AdditiveAttention", "GELU", "Conv1D", "Dropout", "Embedding", "FeedForward",
    "IncompatibleKeys", "KVCache", "LSTM", "LayerKVCache", "LayerNorm", "Linear", "LoRALinear",
    "LoraConfig", "Module", "ModuleList", "MultiHeadAttention", "Parameter", "QuantScheme",
    "QuantizedLinear", "ReLU",
    "StateDictError", "TransformerBlock", "apply_lora", "attend", "causal_mask", "get_activation",
    "dequantize_weight", "get_nb_trainable_parameters", "init", "lora_layers", "lora_state_dict",
    "merge_lora", "named_lora_parameters", "quantize_model", "quantize_weight",
    "quantized_layers", "unload_lora", "unmerge_lora", "weight_bytes",
]
