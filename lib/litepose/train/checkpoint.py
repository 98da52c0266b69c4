"""Training checkpoints: where they go, what they hold, how a run resumes from one.

``checkpoint.pth.tar`` (written atomically after every epoch) holds everything to continue:

    epoch (the next one to run), model (MODEL.NAME), arch (the fixed architecture or None),
    state_dict, optimizer, scheduler, scaler, best_perf, best_epoch, perf, rng, arch_sampler,
    config (the YAML dump), world_size

Only tensors and plain Python containers, so ``torch.load(weights_only=True)`` reads it and
``litepose.models.load_checkpoint`` finds the weights under ``state_dict`` (no ``module.`` prefix).
``model_best.pth.tar`` and ``final_state.pth.tar`` are plain state_dicts, the release's format.
"""

import collections
import os
import random

import numpy as np
import torch

from ..models.checkpoint import read_checkpoint
from ..utils.common import rng_state_from_lists, rng_state_to_lists
from ..utils.io import atomic_torch_save

CHECKPOINT_NAME = "checkpoint.pth.tar"
BEST_NAME = "model_best.pth.tar"
FINAL_NAME = "final_state.pth.tar"
LOG_NAME = "train.log"


def _stem(path):
    return os.path.splitext(os.path.basename(os.fspath(path)))[0]


def run_name(cfg_path, superconfig=None):
    """``<cfg name>``, or ``<cfg name>-<arch name>`` when ``--superconfig`` picks the architecture,
    so that runs of one config with different architectures never resume each other."""
    name = _stem(cfg_path) if cfg_path else "default"
    return f"{name}-{_stem(superconfig)}" if superconfig else name


def run_dirs(cfg, cfg_path=None, superconfig=None):
    """``(OUTPUT_DIR/<dataset>/<model>/<run>, LOG_DIR/<dataset>/<model>/<run>)`` (the release's layout)."""
    dataset = cfg.DATASET.DATASET.replace(":", "_")
    parts = (dataset, cfg.MODEL.NAME, run_name(cfg_path, superconfig))
    return os.path.join(cfg.OUTPUT_DIR, *parts), os.path.join(cfg.LOG_DIR, *parts)


def capture_rng_state():
    """Python, NumPy and torch (CPU and CUDA) generator states as tensors and lists."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": rng_state_to_lists(random.getstate()),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    random.setstate(rng_state_from_lists(state["python"]))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def scheduler_state(scheduler):
    """The scheduler's state with ``milestones`` as a plain dict (a ``Counter`` is not a type
    every PyTorch version's ``weights_only`` loader accepts)."""
    state = dict(scheduler.state_dict())
    if "milestones" in state:
        state["milestones"] = dict(state["milestones"])
    return state


def load_scheduler_state(scheduler, state):
    state = dict(state)
    if "milestones" in state:
        state["milestones"] = collections.Counter(state["milestones"])
    scheduler.load_state_dict(state)


def save_checkpoint(state, path):
    """Write ``state`` atomically: a kill during the save leaves the previous file intact."""
    atomic_torch_save(state, path)


def load_training_checkpoint(path):
    """A training checkpoint read safely (``weights_only``); ``CheckpointError`` if unreadable."""
    return read_checkpoint(path, map_location="cpu")
