"""Training: `TrainConfig`, the `Trainer` loop, and checkpoints that resume bit for bit."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .trainer import Trainer, TrainingError, TrainResult, unigram_entropy

__all__ = ["CheckpointError", "TrainConfig", "TrainResult", "Trainer", "TrainingError",
           "load_checkpoint", "save_checkpoint", "unigram_entropy"]
