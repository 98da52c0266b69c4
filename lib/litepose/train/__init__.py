"""Training: the loop behind ``dist_train.py`` (``trainer.py``) and its parts: rare events
(``faults.py``), resuming (``resume.py``), logs and TensorBoard (``run_log.py``), checkpoints,
distributed setup.

    from litepose.train import train
    summary = train(cfg, cfg_path, superconfig=None, teacher=None, teacher_arch=None)

What measures or drills training lives outside the library, in the repository's harnesses:
``python -m benchmarks.benchmark_train`` times ``Trainer.train_step`` against the data pipeline,
``python -m benchmarks.crash_drill`` kills and restarts ``dist_train.py``.
"""

from .checkpoint import BEST_NAME, CHECKPOINT_NAME, FINAL_NAME, run_dirs
from .faults import NonFiniteLossError, TrainingInterrupted
from .trainer import Trainer, train

__all__ = ["BEST_NAME", "CHECKPOINT_NAME", "FINAL_NAME", "NonFiniteLossError", "Trainer", "TrainingInterrupted", "run_dirs",
           "train"]
