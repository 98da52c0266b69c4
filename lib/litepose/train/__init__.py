"""Training: the loop behind ``dist_train.py``, distributed setup and checkpoints.

    from litepose.train import train
    summary = train(cfg, cfg_path, superconfig=None, teacher=None, teacher_arch=None)

What measures or drills training lives with the scripts, not here: ``tools/benchmark_train.py``
times ``Trainer.train_step`` against the data pipeline, ``tools/crash_drill.py`` kills and
restarts ``dist_train.py``.
"""

from .checkpoint import BEST_NAME, CHECKPOINT_NAME, FINAL_NAME, run_dirs
from .trainer import NonFiniteLossError, Trainer, TrainingInterrupted, train

__all__ = ["BEST_NAME", "CHECKPOINT_NAME", "FINAL_NAME", "NonFiniteLossError", "Trainer", "TrainingInterrupted", "run_dirs",
           "train"]
