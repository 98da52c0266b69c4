"""Resuming a run: which checkpoint to continue from, whether it fits this run, what it holds and
how it is put back. The file format and its safe reading are in ``checkpoint.py``.
"""

import os
from dataclasses import dataclass

from ..arch import describe_arch
from ..errors import CheckpointError
from ..models.checkpoint import extract_state_dict, load_state_dict_checked
from ..utils.io import path_problem
from .checkpoint import capture_rng_state, load_scheduler_state, restore_rng_state, scheduler_state


@dataclass
class Progress:
    """Where a run stands: it continues at ``epoch`` (0-based) after that epoch's first ``step``
    steps; ``meter`` holds the running sums of those steps (``{"sums": ..., "count": ...}``)."""
    epoch: int
    step: int = 0
    meter: dict = None
    best_perf: float = None
    best_epoch: int = None
    global_step: int = 0


def checkpoint_to_resume(cfg, own_checkpoint):
    """``TRAIN.CHECKPOINT`` under ``TRAIN.RESUME`` (it must exist), else the run's own checkpoint
    under ``AUTO_RESUME`` when there is one, else None."""
    if cfg.TRAIN.RESUME and cfg.TRAIN.CHECKPOINT:
        path = cfg.TRAIN.CHECKPOINT
        if path_problem(path, "TRAIN.CHECKPOINT"):
            raise CheckpointError(path_problem(path, "TRAIN.CHECKPOINT"))
        return path
    if cfg.AUTO_RESUME and os.path.isfile(own_checkpoint):
        return own_checkpoint
    return None


def check_training_checkpoint(checkpoint, path, model_name, arch):
    """A training checkpoint of ``dist_train.py``, for this model and fixed architecture."""
    if not isinstance(checkpoint, dict) or "optimizer" not in checkpoint or "epoch" not in checkpoint:
        raise CheckpointError(f"{path} is not a training checkpoint of dist_train.py (no optimizer or epoch)")
    if checkpoint.get("model") != model_name or checkpoint.get("arch") != arch:
        theirs = checkpoint.get("arch")
        described = describe_arch(theirs) if theirs else "no fixed architecture"
        raise CheckpointError(f"{path} was written for {checkpoint.get('model')} ({described}), not for this "
                              "run's model; set AUTO_RESUME False or use another OUTPUT_DIR")


def check_resumable(checkpoint, path, world_size, images_per_process):
    """A mid-epoch checkpoint holds a position in the data as each of its processes saw it: it
    resumes only with as many processes and images per process (an end-of-epoch one resumes
    with any)."""
    step = int(checkpoint.get("step") or 0)
    if not step:
        return
    where = f"{path} was saved within epoch {int(checkpoint['epoch']) + 1} (after step {step})"
    saved = checkpoint.get("world_size")
    if saved is not None and int(saved) != world_size:
        raise CheckpointError(f"{where} by {saved} process(es), and this run has {world_size}: the data "
                              f"position would differ; resume it with {saved} (torchrun --nproc_per_node "
                              f"{saved}) at least to the end of that epoch")
    saved = checkpoint.get("images_per_process")
    if saved is not None and int(saved) != images_per_process:
        raise CheckpointError(f"{where} with TRAIN.IMAGES_PER_GPU {saved}, and this run has "
                              f"{images_per_process}: the data position would differ; resume it with "
                              f"TRAIN.IMAGES_PER_GPU {saved} at least to the end of that epoch")


def restore_training_state(checkpoint, path, model, optimizer, scheduler, scaler, sampler=None):
    """Put a checked training checkpoint back: weights (strictly), optimiser, scheduler, loss
    scaler, random generators, architecture sampler. Returns its ``Progress``."""
    load_state_dict_checked(model, extract_state_dict(checkpoint, path), strict=True, source=path)
    optimizer.load_state_dict(checkpoint["optimizer"])
    load_scheduler_state(scheduler, checkpoint["scheduler"])
    if checkpoint.get("scaler"):
        scaler.load_state_dict(checkpoint["scaler"])
    if checkpoint.get("rng"):
        restore_rng_state(checkpoint["rng"])
    if sampler is not None and checkpoint.get("arch_sampler"):
        sampler.load_state_dict(checkpoint["arch_sampler"])
    step = int(checkpoint.get("step") or 0)
    return Progress(epoch=int(checkpoint["epoch"]), step=step, meter=checkpoint.get("epoch_meter") if step else None,
                    best_perf=checkpoint.get("best_perf"), best_epoch=checkpoint.get("best_epoch"),
                    global_step=int(checkpoint.get("global_step", 0)))


def checkpoint_state(progress, perf, cfg, arch, model, optimizer, scheduler, scaler, sampler=None, world_size=1):
    """What ``checkpoint.pth.tar`` holds (see ``checkpoint.py``) for a run at ``progress``,
    ``perf`` its latest validation loss (None without one)."""
    meter = progress.meter if progress.step else None
    return {
        "epoch": progress.epoch,
        "step": progress.step,
        "epoch_meter": {"sums": dict(meter["sums"]), "count": meter["count"]} if meter is not None else None,
        "model": cfg.MODEL.NAME,
        "arch": arch,
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler_state(scheduler),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "perf": perf,
        "best_perf": progress.best_perf,
        "best_epoch": progress.best_epoch,
        "global_step": progress.global_step,
        "rng": capture_rng_state(),
        "arch_sampler": sampler.state_dict() if sampler is not None else None,
        "config": cfg.dump(),
        "world_size": world_size,
        "images_per_process": cfg.TRAIN.IMAGES_PER_GPU,
    }
