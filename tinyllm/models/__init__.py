"""Language models: GPT (GPT-2) and BERT, their configs and size presets, and checkpoints;
the encoder-decoder Transformer (`Seq2SeqTransformer`, Hugging Face's MarianMTModel layout).

Every family registers itself in `tinyllm.models.registry` (config, presets, objective,
Hugging Face class, task heads); `get_family("gpt")` is what the trainer and the command ask.
Task heads: `BertForSequenceClassification`, `BertForQuestionAnswering`, `BertForPreTraining`
and `GPT2ForSequenceClassification`, each with its `transformers` class's names.

>>> from tinyllm.models import GPT, GPTConfig
>>> model = GPT(GPTConfig.from_preset("small", vocab_size=65), seed=0)
>>> model.num_params()
809856
>>> model.save("runs/gpt")                      # config.json + model.safetensors
>>> GPT.load("runs/gpt")                         # or GPT.from_pretrained(hf_directory)
"""

# isort: off
# Import order is registration order: gpt (the default family) first.
from .gpt import GPT, GPT2ForSequenceClassification
from .bert import (
    BERT,
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertModel,
)
from .lstm import LSTMLM, LSTMConfig
from .seq2seq import SEQ2SEQ_PRESETS, Seq2SeqConfig, Seq2SeqDecodingState, Seq2SeqTransformer
from .lstm_seq2seq import LSTMSeq2Seq, LSTMSeq2SeqConfig
# isort: on
from .base import (
    LMOutput,
    PretrainedModel,
    PreTrainingOutput,
    QAOutput,
    Seq2SeqLMOutput,
    shift_tokens_right,
)
from .checkpoint import CheckpointError
from .config import DEFAULT_PRESET, PRESETS, BertConfig, GPTConfig
from .decoding import (
    BeamHypotheses,
    BeamSearchOutput,
    beam_search,
    generate_seq2seq,
    greedy_search,
    sample_search,
)
from .ngram import NGramLM
from .registry import ModelFamily, family_names, get_family, register_family

__all__ = [
    "BERT", "BeamHypotheses", "BeamSearchOutput", "DEFAULT_PRESET", "GPT", "PRESETS",
    "BertConfig", "BertForMaskedLM",
    "BertForPreTraining", "BertForQuestionAnswering", "BertForSequenceClassification",
    "BertModel", "CheckpointError", "GPT2ForSequenceClassification", "GPTConfig", "LMOutput",
    "LSTMConfig", "LSTMLM", "LSTMSeq2Seq", "LSTMSeq2SeqConfig", "ModelFamily", "NGramLM",
    "PreTrainingOutput", "PretrainedModel", "QAOutput", "SEQ2SEQ_PRESETS", "Seq2SeqConfig",
    "Seq2SeqDecodingState", "Seq2SeqLMOutput", "Seq2SeqTransformer", "family_names",
    "beam_search", "generate_seq2seq", "get_family", "greedy_search", "register_family",
    "sample_search", "shift_tokens_right",
]
