"""Training: the loop behind ``dist_train.py``, distributed setup and checkpoints.

    from litepose.train import train
    summary = train(cfg, cfg_path, superconfig=None, teacher=None, teacher_arch=None)
"""

from .checkpoint import BEST_NAME, CHECKPOINT_NAME, FINAL_NAME, run_dirs
from .trainer import NonFiniteLossError, Trainer, TrainingInterrupted, train

__all__ = ["BEST_NAME", "CHECKPOINT_NAME", "FINAL_NAME", "NonFiniteLossError", "Trainer", "TrainingInterrupted", "run_dirs",
           "train"]
