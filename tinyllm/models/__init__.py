"""Language models: GPT (GPT-2) and BERT, their configs and size presets, and checkpoints.

>>> from tinyllm.models import GPT, GPTConfig
>>> model = GPT(GPTConfig.from_preset("small", vocab_size=65), seed=0)
>>> model.num_params()
809856
>>> model.save("runs/gpt")                      # config.json + model.safetensors
>>> GPT.load("runs/gpt")                         # or GPT.from_pretrained(hf_directory)
"""

from .base import LMOutput, PretrainedModel
from .bert import BERT, BertForMaskedLM, BertForSequenceClassification, BertModel
from .checkpoint import CheckpointError
from .config import DEFAULT_PRESET, PRESETS, BertConfig, GPTConfig
from .gpt import GPT
from .lstm import LSTMLM, LSTMConfig
from .ngram import NGramLM

__all__ = [
    "BERT", "DEFAULT_PRESET", "PRESETS", "BertConfig", "BertForMaskedLM",
    "BertForSequenceClassification", "BertModel", "CheckpointError", "GPT", "GPTConfig",
    "LMOutput", "LSTMConfig", "LSTMLM", "NGramLM", "PretrainedModel",
]
