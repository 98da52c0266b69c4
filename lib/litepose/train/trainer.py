"""The training loop of ``dist_train.py``: fixed networks, the supernet, distillation; one process
or many; checkpoints, resume, progress and logs.

    from litepose.train import train
    summary = train(cfg, cfg_path="experiments/...yaml", superconfig="mobile_configs/search-XS.json")

Input size: ``TRAIN.INPUT_SIZE`` when set, else the architecture's ``img_size`` (a fixed LitePose:
its own; the supernet: each step's sampled architecture, or the one ``--superconfig`` fixes; any
other model: ``DATASET.INPUT_SIZE``). Outputs are always at 1/4 and 1/2 of the input (the network's
strides), so ``DATASET.OUTPUT_SIZE`` is not read. The supernet's batches are loaded at the largest
input size of its search space and resized per step, with targets rebuilt at the sampled size.

``model_best.pth.tar``: the weights with the lowest validation loss on the test split (checked
every ``TRAIN.VAL_FREQ`` epochs); for the supernet, the mean validation loss of its largest and
smallest members (of the fixed member under ``--superconfig``). Without validation it is the
latest epoch's weights (as in the release).
"""

import logging
import os
import random
import signal
import sys
import threading
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from .. import __version__
from ..arch import describe_arch, load_arch
from ..data.build import (build_dataset, build_loader, default_workers, ensure_dataset, iterate_loader,
                          set_loader_epoch)
from ..data.targets import TargetConfig, prepare_batch
from ..errors import CheckpointError, ConfigError, DataError, LitePoseError
from ..loss import PoseLoss, total
from ..models import LitePose, SuperLitePose, build_model, load_checkpoint
from ..models.checkpoint import extract_state_dict, load_state_dict_checked, read_checkpoint
from ..search.space import ArchManager
from ..utils.io import ensure_writable_dir, lock_folder, path_problem, remove_stale_temporaries
from .checkpoint import (BEST_NAME, CHECKPOINT_NAME, FINAL_NAME, LOG_NAME, capture_rng_state, load_scheduler_state,
                         load_training_checkpoint, restore_rng_state, run_dirs, save_checkpoint, scheduler_state)
from .distributed import setup_distributed

LOGGER_NAME = "litepose.train"
HEAD_KEYS = ("deconv", "final")  # what the release leaves out when initialising from MODEL.PRETRAINED


class NonFiniteLossError(LitePoseError):
    """The loss became NaN or infinite; training stopped, the last good checkpoint is kept."""


class TrainingInterrupted(LitePoseError):
    """SIGINT or SIGTERM stopped the run after a checkpoint was saved; the same command resumes it."""

    label = "stopped"

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + int(signum)  # the shell's convention for a death by that signal


class _TqdmHandler(logging.Handler):
    """Console log lines that do not break the progress bar. Progress and logs go to stdout;
    stderr carries only warnings and the one-line error that stops a run."""

    def emit(self, record):
        tqdm.write(self.format(record), file=sys.stderr if record.levelno >= logging.WARNING else sys.stdout)


def _setup_logger(output_dir, is_main):
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    console = _TqdmHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console)
    if is_main:
        handler = logging.FileHandler(os.path.join(output_dir, LOG_NAME), encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    return logger


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_train_config(cfg):
    t = cfg.TRAIN
    if t.OPTIMIZER not in ("adam", "sgd"):
        raise ConfigError(f"TRAIN.OPTIMIZER must be 'adam' or 'sgd', got {t.OPTIMIZER!r}")
    if t.IMAGES_PER_GPU <= 0:
        raise ConfigError(f"TRAIN.IMAGES_PER_GPU must be positive, got {t.IMAGES_PER_GPU}")
    if t.LR <= 0:
        raise ConfigError(f"TRAIN.LR must be positive, got {t.LR}")
    if t.END_EPOCH <= t.BEGIN_EPOCH or t.BEGIN_EPOCH < 0:
        raise ConfigError(f"TRAIN.END_EPOCH ({t.END_EPOCH}) must exceed TRAIN.BEGIN_EPOCH ({t.BEGIN_EPOCH}) >= 0")
    if t.CLIP_GRAD_NORM < 0:
        raise ConfigError(f"TRAIN.CLIP_GRAD_NORM must be >= 0, got {t.CLIP_GRAD_NORM}")
    if t.INPUT_SIZE < 0 or t.INPUT_SIZE % 32:
        raise ConfigError(f"TRAIN.INPUT_SIZE must be 0 or a positive multiple of 32, got {t.INPUT_SIZE}")
    if t.VAL_FREQ < 0:
        raise ConfigError(f"TRAIN.VAL_FREQ must be >= 0, got {t.VAL_FREQ}")
    if list(t.LR_STEP) != sorted(t.LR_STEP):
        raise ConfigError(f"TRAIN.LR_STEP must be increasing, got {list(t.LR_STEP)}")
    if t.CHECKPOINT_STEPS < 0:
        raise ConfigError(f"TRAIN.CHECKPOINT_STEPS must be >= 0, got {t.CHECKPOINT_STEPS}")
    if cfg.DATASET.MAX_UNREADABLE_IMAGES < 0:
        raise ConfigError(f"DATASET.MAX_UNREADABLE_IMAGES must be >= 0, got {cfg.DATASET.MAX_UNREADABLE_IMAGES}")


def build_optimizer(cfg, parameters):
    t = cfg.TRAIN
    if t.OPTIMIZER == "sgd":
        return torch.optim.SGD(parameters, lr=t.LR, momentum=t.MOMENTUM, weight_decay=t.WD, nesterov=t.NESTEROV)
    return torch.optim.Adam(parameters, lr=t.LR, weight_decay=t.WD)


def load_pretrained(model, path, logger, with_head=False):
    """``MODEL.PRETRAINED`` as the release uses it: every tensor whose name and shape fit, except
    the head (``deconv*``, ``final*``) unless ``with_head`` (fine-tuning a sub-network that
    ``weight_transfer.py`` extracted); then, for the supernet, channels sorted by importance."""
    try:
        state = extract_state_dict(read_checkpoint(path), path)
    except CheckpointError as exc:
        raise CheckpointError(f"MODEL.PRETRAINED: {exc}") from None

    def skipped(key):
        return not with_head and any(h in key for h in HEAD_KEYS)

    model_state = model.state_dict()
    usable = [k for k, v in state.items() if not skipped(k) and k in model_state and v.shape == model_state[k].shape]
    if not usable:
        raise CheckpointError(f"MODEL.PRETRAINED {path} holds no weights that fit {type(model).__name__}"
                              + ("" if with_head else " (outside the head)"))
    load_state_dict_checked(model, state, strict=False, source=path, skip=skipped)
    logger.info(f"initialised {len(usable)} of {len(model_state)} tensors from {path}"
                + (" (head included)" if with_head else " (head skipped)"))
    if isinstance(model, SuperLitePose):
        model.reorganize_channels()
        logger.info("supernet channels sorted by importance")


class ArchRunner(nn.Module):
    """Runs the model once per (input, architecture) pair inside one forward call, so that
    DistributedDataParallel sees all sub-networks of a step (the sandwich rule) in a single
    forward and a single backward."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs, archs):
        outputs = []
        for images, arch in zip(inputs, archs):
            if arch is not None:
                self.model.set_active_arch(arch)
            outputs.append(self.model(images))
        return outputs


class _Meter:
    def __init__(self):
        self.sums, self.count = {}, 0

    def update(self, terms, n):
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * n
        self.count += n

    def means(self):
        return {k: v / max(1, self.count) for k, v in self.sums.items()}


def _fmt(value):
    return f"{value:.3e}" if abs(value) < 1e-2 else f"{value:.4f}"


class Trainer:
    """Builds everything a run needs from a frozen config, then ``fit()``s."""

    def __init__(self, cfg, ctx, cfg_path=None, superconfig=None, teacher=None, teacher_arch=None,
                 show_progress=True, run_info=None):
        check_train_config(cfg)
        if (teacher is None) != (teacher_arch is None):
            raise ConfigError("distillation needs both --teacher PATH and --teacher-arch ARCH.json")
        for arch_file in (superconfig, teacher_arch, cfg.MODEL.ARCH):
            if arch_file:
                load_arch(arch_file)  # a bad architecture file stops the run before any long work
        if teacher and path_problem(teacher, "teacher checkpoint"):
            raise CheckpointError(path_problem(teacher, "teacher checkpoint"))
        self.cfg, self.ctx, self.show_progress = cfg, ctx, show_progress
        self.device = ctx.device
        seed_everything(cfg.TRAIN.SEED)

        self.output_dir, self.tb_dir = run_dirs(cfg, cfg_path, superconfig)
        self._lock = None
        if ctx.is_main:
            ensure_writable_dir(self.output_dir)
            ensure_writable_dir(self.tb_dir, "log folder")
            # One run per output folder; only its holder may remove what killed writes left there.
            self._lock = lock_folder(self.output_dir)
            remove_stale_temporaries(self.output_dir, (CHECKPOINT_NAME, BEST_NAME, FINAL_NAME))
        ctx.barrier()
        self.logger = _setup_logger(self.output_dir, ctx.is_main)
        self.checkpoint_path = os.path.join(self.output_dir, CHECKPOINT_NAME)
        self.logger.info(f"output: {self.output_dir} | device: {self.device}"
                         + (f" | {ctx.world_size} processes ({ctx.backend})" if ctx.distributed else ""))
        if len(cfg.GPUS) > 1 and not ctx.distributed:
            self.logger.warning(f"GPUS lists {len(cfg.GPUS)} GPUs but this is one process: "
                                f"use torchrun --nproc_per_node {len(cfg.GPUS)} dist_train.py ...")
        self.run_record = run_record(cfg, run_info)
        self.logger.info(self.run_record)

        if ctx.is_main:
            started = time.time()
            if ensure_dataset(cfg, show_progress=show_progress):
                self.logger.info(f"generated the synthetic dataset under {cfg.DATASET.ROOT} in "
                                 f"{time.time() - started:.0f} s (first run only)")
        ctx.barrier()

        self._build_model(superconfig)
        if cfg.MODEL.PRETRAINED and cfg.MODEL.INIT_WEIGHTS:
            load_pretrained(self.model, cfg.MODEL.PRETRAINED, self.logger, with_head=cfg.MODEL.PRETRAINED_HEAD)
        self.model.to(self.device)
        self.teacher = self._build_teacher(teacher, teacher_arch) if teacher else None

        self.target_config = TargetConfig.from_config(cfg)
        self.criterion = PoseLoss.from_config(cfg)
        workers = default_workers(cfg)
        if self.device.type == "cpu":
            self.logger.info(f"CPU: {torch.get_num_threads()} compute thread(s) per process")
        pin = cfg.PIN_MEMORY and self.device.type == "cuda"
        train_set = build_dataset(cfg, self.data_size, "train", augment=True)
        self.train_loader = build_loader(train_set, cfg.TRAIN.IMAGES_PER_GPU, workers, cfg.TRAIN.SHUFFLE,
                                         cfg.TRAIN.SEED, ctx.rank, ctx.world_size, drop_last=True, pin_memory=pin)
        self.val_loader = None
        if cfg.TRAIN.VAL_FREQ > 0:
            try:
                val_set = build_dataset(cfg, self.data_size, "test", augment=False)
            except LitePoseError as exc:
                raise type(exc)(f"{exc} (validation set; TRAIN.VAL_FREQ 0 trains without validation)") from None
            for path in val_set.missing:
                self.logger.warning(f"left out of the validation set: image not found: {path}")
            self.val_loader = build_loader(val_set, cfg.TRAIN.IMAGES_PER_GPU, workers, False, cfg.TRAIN.SEED,
                                           ctx.rank, ctx.world_size, drop_last=False, pin_memory=pin)
        self.logger.info(f"data: {len(train_set)} training images"
                         + (f", {len(self.val_loader.dataset)} validation images" if self.val_loader else "")
                         + f", loaded at {self.data_size}px, {workers} worker(s) per process")

        self.optimizer = build_optimizer(cfg, self.model.parameters())
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(cfg.TRAIN.LR_STEP),
                                                              cfg.TRAIN.LR_FACTOR)
        self.amp = bool(cfg.TRAIN.AMP or cfg.FP16.ENABLED)
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        use_scaler = self.amp and self.device.type == "cuda"
        init_scale = cfg.FP16.STATIC_LOSS_SCALE if cfg.FP16.STATIC_LOSS_SCALE > 1 else 2.0 ** 16
        self.scaler = torch.amp.GradScaler(self.device.type, init_scale=init_scale, enabled=use_scaler)

        self.runner = self._wrap(ArchRunner(self.model))
        self.begin_epoch = cfg.TRAIN.BEGIN_EPOCH
        self.begin_step = 0  # steps of begin_epoch already done (a mid-epoch checkpoint)
        self.resumed_meter = None
        self.best_perf, self.best_epoch = None, None
        self.global_step = 0
        # reason -> times, for the unreadable training images of this process; missing files first
        self.skipped = {f"image not found: {path}": 1 for path in self.train_loader.dataset.missing}
        for reason in self.skipped:
            self.logger.warning(f"left out of the training set: {reason}")
        self.val_skipped = set()
        self.stop_signal = None
        self.halt = None
        self._sampler_before_step = None
        self._resume()
        self.writer = None
        if ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(self.tb_dir, purge_step=self.global_step or None)
            # Markdown in TensorBoard's text tab: indented lines render as code.
            self.writer.add_text("run", "\n".join("    " + line for line in self.run_record.splitlines()),
                                 self.global_step)

    # ----------------------------------------------------------------------------- building
    def _build_model(self, superconfig):
        cfg = self.cfg
        self.sampler = None
        self.arch = None
        if cfg.MODEL.NAME == "pose_supermobilenet":
            self.model = build_model(cfg)
            self.sampler = ArchManager.from_config(cfg, seed=cfg.TRAIN.SEED)  # same seed everywhere: same archs
            if superconfig:
                self.sampler.fix(load_arch(superconfig))
                self.arch = self.sampler.fixed_arch
                self.logger.info(f"supernet with its architecture fixed: {describe_arch(self.arch)}")
            largest = self.arch["img_size"] if self.arch else max(self.sampler.space.img_sizes)
            self.data_size = cfg.TRAIN.INPUT_SIZE or largest
        else:
            self.model = build_model(cfg, superconfig)
            self.arch = getattr(self.model, "arch", None)
            default = self.arch["img_size"] if self.arch else cfg.DATASET.INPUT_SIZE
            self.data_size = cfg.TRAIN.INPUT_SIZE or default
        if self.arch is not None and not self.is_supernet:
            self.logger.info(f"model: {cfg.MODEL.NAME} ({describe_arch(self.arch)})")
        elif self.is_supernet and self.arch is None:
            self.logger.info(f"model: supernet, sampling {'largest + smallest + random' if cfg.TRAIN.SANDWICH else 'one'}"
                             f" sub-network(s) per step")
        if self.cfg.TRAIN.SANDWICH and not self.is_supernet:
            self.logger.warning("TRAIN.SANDWICH only applies to the supernet; ignored")

    @property
    def is_supernet(self):
        return self.sampler is not None

    def _build_teacher(self, path, arch_path):
        """A fixed LitePose with the student's outputs (joints, tags), loaded strictly."""
        cfg = self.cfg
        arch = load_arch(arch_path)
        kernels = tuple(cfg.MODEL.EXTRA.get("NUM_DECONV_KERNELS", (4, 4, 4)))
        teacher = LitePose(arch, num_joints=cfg.MODEL.NUM_JOINTS, tag_per_joint=cfg.MODEL.TAG_PER_JOINT,
                           with_heatmaps=tuple(cfg.LOSS.WITH_HEATMAPS_LOSS), with_tags=tuple(cfg.LOSS.WITH_AE_LOSS),
                           deconv_kernels=kernels)
        load_checkpoint(teacher, path)
        self.logger.info(f"distilling from {path} ({describe_arch(arch)}), factor {self.cfg.TRAIN.DISTILL_FACTOR}")
        teacher.to(self.device).eval()
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
        return teacher

    def _wrap(self, runner):
        cfg, ctx = self.cfg, self.ctx
        if cfg.MODEL.SYNC_BN:
            if not ctx.distributed:
                self.logger.warning("MODEL.SYNC_BN only applies to multi-process training; ignored")
            elif self.is_supernet:
                # convert_sync_batchnorm would replace the supernet's elastic BatchNorm by a fixed-width one.
                self.logger.warning("MODEL.SYNC_BN is not supported for the supernet (elastic BatchNorm); ignored")
            elif self.device.type != "cuda":
                self.logger.warning("MODEL.SYNC_BN needs GPUs; ignored on CPU")
            else:
                runner = nn.SyncBatchNorm.convert_sync_batchnorm(runner)
                self.model = runner.model
        if not ctx.distributed:
            return runner
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Sub-networks leave parameters unused (narrow widths, kernel transforms, skipped blocks).
        return nn.parallel.DistributedDataParallel(runner, device_ids=device_ids,
                                                   find_unused_parameters=self.is_supernet)

    # ----------------------------------------------------------------------------- resume
    def _resume(self):
        cfg = self.cfg
        path = None
        if cfg.TRAIN.RESUME and cfg.TRAIN.CHECKPOINT:
            path = cfg.TRAIN.CHECKPOINT
            if path_problem(path, "TRAIN.CHECKPOINT"):
                raise CheckpointError(path_problem(path, "TRAIN.CHECKPOINT"))
        elif cfg.AUTO_RESUME and os.path.isfile(self.checkpoint_path):
            path = self.checkpoint_path
        if path is None:
            self.logger.info(f"no checkpoint to resume from: starting at epoch {self.begin_epoch + 1}")
            return
        checkpoint = load_training_checkpoint(path)
        if not isinstance(checkpoint, dict) or "optimizer" not in checkpoint or "epoch" not in checkpoint:
            raise CheckpointError(f"{path} is not a training checkpoint of dist_train.py (no optimizer or epoch)")
        if checkpoint.get("model") != cfg.MODEL.NAME or checkpoint.get("arch") != self.arch:
            theirs = checkpoint.get("arch")
            described = describe_arch(theirs) if theirs else "no fixed architecture"
            raise CheckpointError(f"{path} was written for {checkpoint.get('model')} ({described}), not for this "
                                  "run's model; set AUTO_RESUME False or use another OUTPUT_DIR")
        self._check_resumable(checkpoint, path)
        load_state_dict_checked(self.model, extract_state_dict(checkpoint, path), strict=True, source=path)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        load_scheduler_state(self.scheduler, checkpoint["scheduler"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        if checkpoint.get("rng"):
            restore_rng_state(checkpoint["rng"])
        if self.sampler is not None and checkpoint.get("arch_sampler"):
            self.sampler.load_state_dict(checkpoint["arch_sampler"])
        self.begin_epoch = int(checkpoint["epoch"])
        self.begin_step = int(checkpoint.get("step") or 0)
        self.resumed_meter = checkpoint.get("epoch_meter") if self.begin_step else None
        self.best_perf, self.best_epoch = checkpoint.get("best_perf"), checkpoint.get("best_epoch")
        self.global_step = int(checkpoint.get("global_step", 0))
        self.logger.info(f"resumed from {path}: continuing at epoch {self.begin_epoch + 1}"
                         + (f" step {self.begin_step + 1}" if self.begin_step else ""))

    def _check_resumable(self, checkpoint, path):
        """A mid-epoch checkpoint holds a position in the data as each of its processes saw it:
        it resumes only with as many processes and images per process (an end-of-epoch one
        resumes with any)."""
        step = int(checkpoint.get("step") or 0)
        if not step:
            return
        where = f"{path} was saved within epoch {int(checkpoint['epoch']) + 1} (after step {step})"
        saved = checkpoint.get("world_size")
        if saved is not None and int(saved) != self.ctx.world_size:
            raise CheckpointError(f"{where} by {saved} process(es), and this run has {self.ctx.world_size}: the data "
                                  f"position would differ; resume it with {saved} (torchrun --nproc_per_node "
                                  f"{saved}) at least to the end of that epoch")
        saved = checkpoint.get("images_per_process")
        if saved is not None and int(saved) != self.cfg.TRAIN.IMAGES_PER_GPU:
            raise CheckpointError(f"{where} with TRAIN.IMAGES_PER_GPU {saved}, and this run has "
                                  f"{self.cfg.TRAIN.IMAGES_PER_GPU}: the data position would differ; resume it with "
                                  f"TRAIN.IMAGES_PER_GPU {saved} at least to the end of that epoch")

    def checkpoint_state(self, next_epoch, perf, step=0, meter=None):
        """What ``checkpoint.pth.tar`` holds: training continues at epoch ``next_epoch`` (0-based)
        after its first ``step`` steps."""
        return {
            "epoch": next_epoch,
            "step": step,
            "epoch_meter": {"sums": dict(meter.sums), "count": meter.count} if meter is not None and step else None,
            "model": self.cfg.MODEL.NAME,
            "arch": self.arch,
            "state_dict": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": scheduler_state(self.scheduler),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "perf": perf,
            "best_perf": self.best_perf,
            "best_epoch": self.best_epoch,
            "global_step": self.global_step,
            "rng": capture_rng_state(),
            "arch_sampler": self.sampler.state_dict() if self.sampler is not None else None,
            "config": self.cfg.dump(),
            "world_size": self.ctx.world_size,
            "images_per_process": self.cfg.TRAIN.IMAGES_PER_GPU,
        }

    # ----------------------------------------------------------------------------- steps
    def step_archs(self):
        """The sub-networks one step trains: ``[None]`` for a fixed network."""
        if not self.is_supernet:
            return [None]
        if self.sampler.fixed_arch is None and self.cfg.TRAIN.SANDWICH:
            return [self.sampler.widest(), self.sampler.smallest(), self.sampler.random_sample()]
        return [self.sampler.random_sample()]

    def input_size(self, arch):
        if self.cfg.TRAIN.INPUT_SIZE:
            return self.cfg.TRAIN.INPUT_SIZE
        return arch["img_size"] if arch is not None else self.data_size

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def _teacher_heatmaps(self, images, sizes):
        size = self.teacher.arch["img_size"]
        if images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        with torch.no_grad(), self._autocast():
            outputs = self.teacher(images)
        joints = self.cfg.MODEL.NUM_JOINTS
        return [F.interpolate(out[:, :joints].float(), size=(s, s), mode="bilinear", align_corners=False)
                for out, s in zip(outputs, sizes)]

    def losses(self, batches, outputs_per_arch):
        """Loss terms averaged over the step's sub-networks, and their sum (the step's loss)."""
        loss, merged = 0.0, {}
        for batch, outputs in zip(batches, outputs_per_arch):
            terms = self.criterion(outputs, batch.heatmaps, batch.masks, batch.joints)
            if self.teacher is not None:
                targets = self._teacher_heatmaps(batch.images, [h.shape[-1] for h in batch.heatmaps])
                for key, value in self.criterion.distillation(outputs, targets, batch.masks).items():
                    terms[key] = value * self.cfg.TRAIN.DISTILL_FACTOR
            loss = loss + total(terms)
            for key, value in terms.items():
                merged[key] = merged.get(key, 0.0) + value.detach() / len(batches)
        return loss, merged

    def train_step(self, raw_batch):
        """One optimisation step. Returns ``(loss, terms, applied)``. The processes agree before
        the update whether to halt instead (``self.halt``): a loss that is not finite, a stop
        signal, too many unreadable images, on any of them; then nothing changes, on every one."""
        self._note_skipped(raw_batch.pop("skipped", []))
        # A halted step is redone on resume: its architectures must be drawn again from here.
        self._sampler_before_step = self.sampler.state_dict() if self.is_supernet else None
        # The forward pass moves BatchNorm's running statistics; a halted step must not.
        buffers = [b.detach().clone() for b in self.model.buffers()]
        archs = self.step_archs()
        batches = [prepare_batch(raw_batch, self.target_config, self.input_size(a), self.device) for a in archs]
        with self._autocast():
            outputs = self.runner([b.images for b in batches], archs)
        loss, terms = self.losses(batches, outputs)
        finite = bool(torch.isfinite(loss.detach()).item())
        limit = self.cfg.DATASET.MAX_UNREADABLE_IMAGES
        nonfinite, stop, too_many = self.ctx.any_of(not finite, self.stop_signal is not None,
                                                    len(self.skipped) > limit)
        self.halt = "nonfinite" if nonfinite else "unreadable" if too_many else "signal" if stop else None
        if self.halt is not None:
            with torch.no_grad():
                for buffer, saved in zip(self.model.buffers(), buffers):
                    buffer.copy_(saved)
            return loss.detach(), terms, False
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.TRAIN.CLIP_GRAD_NORM > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.TRAIN.CLIP_GRAD_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach(), terms, True

    def _note_skipped(self, reasons):
        limit = self.cfg.DATASET.MAX_UNREADABLE_IMAGES
        for reason in reasons:
            first = reason not in self.skipped
            self.skipped[reason] = self.skipped.get(reason, 0) + 1
            if first and len(self.skipped) <= limit:
                self.logger.warning(f"skipped an unreadable training image ({len(self.skipped)} so far, "
                                    f"DATASET.MAX_UNREADABLE_IMAGES {limit}): {reason}")

    def _halt(self, epoch, step, steps, loss, terms, meter, bar):
        """Stop the run as ``self.halt`` says, after saving what can be saved."""
        bar.close()
        where = f"epoch {epoch + 1} step {step + 1}/{steps}"
        if self.halt == "nonfinite":
            detail = ", ".join(f"{k} {float(v):.4g}" for k, v in terms.items())
            raise NonFiniteLossError(
                f"loss became {float(loss)} (on this or another process) at {where} ({detail}); stopped, "
                f"the last good checkpoint is {self.checkpoint_path}"
                + ("" if os.path.isfile(self.checkpoint_path) else " (none written yet)"))
        if self.halt == "unreadable":
            limit = self.cfg.DATASET.MAX_UNREADABLE_IMAGES
            if len(self.skipped) > limit:
                last = list(self.skipped)[-1]
                raise DataError(f"{len(self.skipped)} unreadable training images, more than DATASET."
                                f"MAX_UNREADABLE_IMAGES {limit}; the last: {last}")
            raise DataError(f"another process met more than DATASET.MAX_UNREADABLE_IMAGES {limit} unreadable "
                            "training images (see its warnings)")
        # A stop signal: the step was not applied, so the checkpoint holds the steps before it.
        if self._sampler_before_step is not None:
            self.sampler.load_state_dict(self._sampler_before_step)
        self._save_training_checkpoint(epoch, None, step=step, meter=meter)
        self._interrupted(f"at {where}")

    def _interrupted(self, where):
        name = signal.Signals(self.stop_signal or signal.SIGTERM).name
        raise TrainingInterrupted(f"{name} {where}: checkpoint saved to {self.checkpoint_path}; "
                                  "run the same command to resume", self.stop_signal or signal.SIGTERM)

    def train_epoch(self, epoch, start_step=0):
        cfg, ctx = self.cfg, self.ctx
        self.model.train()
        set_loader_epoch(self.train_loader, epoch, start_step)
        meter = _Meter()
        if start_step and self.resumed_meter:
            meter.sums, meter.count = dict(self.resumed_meter["sums"]), int(self.resumed_meter["count"])
        steps = start_step + len(self.train_loader)
        every = cfg.TRAIN.CHECKPOINT_STEPS
        bar = tqdm(total=steps, initial=start_step, desc=f"epoch {epoch + 1}/{cfg.TRAIN.END_EPOCH}", unit="step",
                   dynamic_ncols=True, leave=False, disable=not (ctx.is_main and self.show_progress),
                   mininterval=1.0, file=sys.stdout)
        start = time.time()
        images = 0
        for step, raw_batch in enumerate(iterate_loader(self.train_loader), start=start_step):
            loss, terms, applied = self.train_step(raw_batch)
            if not applied:
                self._halt(epoch, step, steps, loss, terms, meter, bar)
            n = raw_batch["images"].shape[0]
            images += n * ctx.world_size
            meter.update({"loss": loss, **terms}, n)
            self.global_step += 1
            speed = images / max(1e-9, time.time() - start)
            if ctx.is_main:
                means = meter.means()
                bar.set_postfix_str(" ".join(f"{k} {_fmt(v)}" for k, v in means.items()) + f" | {speed:.1f} img/s",
                                    refresh=False)
                bar.update(1)
                if self.writer is not None and (step % max(1, cfg.PRINT_FREQ) == 0 or step == steps - 1):
                    self.writer.add_scalar("train/loss", float(loss), self.global_step)
                    for key, value in terms.items():
                        self.writer.add_scalar(f"train/{key}", float(value), self.global_step)
                    self.writer.add_scalar("train/images_per_s", speed, self.global_step)
            if every and (step + 1) % every == 0 and step + 1 < steps:
                self._save_training_checkpoint(epoch, None, step=step + 1, meter=meter)
        bar.close()
        elapsed = time.time() - start
        means = self._all_mean(meter)
        return means, images / max(1e-9, elapsed), elapsed

    def _all_mean(self, meter):
        keys = sorted(meter.sums, key=lambda k: (k != "loss", k))  # the total first
        values = torch.tensor([meter.sums[k] for k in keys] + [meter.count], dtype=torch.float64, device=self.device)
        values = self.ctx.all_reduce_sum(values)
        count = max(1.0, values[-1].item())
        return {k: values[i].item() / count for i, k in enumerate(keys)}

    def val_archs(self):
        if not self.is_supernet:
            return [None]
        if self.sampler.fixed_arch is not None:
            return [self.sampler.fixed_arch]
        return [self.sampler.widest(), self.sampler.smallest()]

    @torch.no_grad()
    def validate(self):
        """Mean validation loss over the test split (and over the supernet's validated members)."""
        self.model.eval()
        set_loader_epoch(self.val_loader, 0)
        archs = self.val_archs()
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        bar = tqdm(total=len(self.val_loader) * len(archs), desc="validation loss", unit="step", leave=False,
                   dynamic_ncols=True, disable=not (self.ctx.is_main and self.show_progress), mininterval=1.0,
                   file=sys.stdout)
        for arch in archs:
            if arch is not None:
                self.model.set_active_arch(arch)
            for raw_batch in iterate_loader(self.val_loader):
                for reason in raw_batch.pop("skipped", []):
                    if reason not in self.val_skipped:
                        self.val_skipped.add(reason)
                        self.logger.warning(f"validation loss: skipped an unreadable image: {reason}")
                batch = prepare_batch(raw_batch, self.target_config, self.input_size(arch), self.device)
                with self._autocast():
                    outputs = self.model(batch.images)
                terms = self.criterion(outputs, batch.heatmaps, batch.masks, batch.joints)
                n = batch.images.shape[0]
                sums += torch.tensor([float(total(terms)) * n, n], dtype=torch.float64, device=self.device)
                bar.update(1)
        bar.close()
        self.model.train()
        sums = self.ctx.all_reduce_sum(sums)
        return (sums[0] / sums[1].clamp(min=1)).item()

    # ----------------------------------------------------------------------------- loop
    def _on_signal(self, signum, frame):
        if self.stop_signal is not None:  # the second one: stop at once (the checkpoint file is safe)
            signal.signal(signum, signal.SIG_DFL)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)
            return
        self.stop_signal = signum
        if self.ctx.is_main:  # no logging here: the handler may interrupt the logger itself
            os.write(2, f"{signal.Signals(signum).name} received: stopping after this step with a checkpoint "
                        "(send it again to stop at once)\n".encode())

    def fit(self):
        """Train from ``begin_epoch`` to ``TRAIN.END_EPOCH``. SIGINT and SIGTERM stop the run
        at the next step with a checkpoint (``TrainingInterrupted``)."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._fit()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self.close()

    def close(self):
        """Release the output folder (``fit`` does at its end; the process's end always does)."""
        if self._lock is not None:
            self._lock.release()

    def _fit(self):
        cfg, ctx = self.cfg, self.ctx
        end = cfg.TRAIN.END_EPOCH
        perf = None
        speed = 0.0
        if self.begin_epoch >= end:
            self.logger.info(f"already trained to TRAIN.END_EPOCH {end}")
        for epoch in range(self.begin_epoch, end):
            lr = self.optimizer.param_groups[0]["lr"]
            start_step = self.begin_step if epoch == self.begin_epoch else 0
            means, speed, elapsed = self.train_epoch(epoch, start_step)
            self.scheduler.step()
            perf = None
            if self.val_loader is not None and ((epoch + 1) % cfg.TRAIN.VAL_FREQ == 0 or epoch + 1 == end):
                perf = self.validate()
            improved = perf is not None and (self.best_perf is None or perf < self.best_perf)
            if improved or self.val_loader is None:
                self.best_perf, self.best_epoch = perf, epoch + 1
            summary = " ".join(f"{k} {_fmt(v)}" for k, v in means.items())
            skipped = f" | {len(self.skipped)} unreadable image(s) skipped so far" if self.skipped else ""
            self.logger.info(f"epoch {epoch + 1}/{end} | lr {lr:.2e} | {summary} | {speed:.1f} img/s, {elapsed:.0f}s"
                             + (f" | val loss {_fmt(perf)}{' (best)' if improved else ''}" if perf is not None else "")
                             + skipped)
            if ctx.is_main:
                self._write_epoch(epoch, means, speed, lr, perf, improved or self.val_loader is None)
            ctx.barrier()
            if ctx.any_of(self.stop_signal is not None)[0] and epoch + 1 < end:
                self._interrupted(f"after epoch {epoch + 1}")
        final = os.path.join(self.output_dir, FINAL_NAME)
        if ctx.is_main:
            save_checkpoint(self.model.state_dict(), final)
            if self.writer is not None:
                self.writer.close()
        ctx.barrier()
        best = os.path.join(self.output_dir, BEST_NAME)
        self.logger.info(f"final weights: {final}")
        if os.path.isfile(best):
            self.logger.info(f"best weights: {best}"
                             + (f" (epoch {self.best_epoch}, val loss {_fmt(self.best_perf)})" if self.best_perf is not None else ""))
        return {
            "output_dir": self.output_dir,
            "checkpoint": self.checkpoint_path,
            "final_state": final,
            "model_best": best,
            "last_val_loss": perf,
            "best_val_loss": self.best_perf,
            "best_epoch": self.best_epoch,
            "images_per_s": speed,
        }

    def _write_epoch(self, epoch, means, speed, lr, perf, is_best):
        if self.writer is not None:
            self.writer.add_scalar("epoch/lr", lr, epoch + 1)
            self.writer.add_scalar("epoch/images_per_s", speed, epoch + 1)
            for key, value in means.items():
                self.writer.add_scalar(f"epoch/{key}", value, epoch + 1)
            if perf is not None:
                self.writer.add_scalar("val/loss", perf, epoch + 1)
            self.writer.flush()
        save_checkpoint(self.checkpoint_state(epoch + 1, perf), self.checkpoint_path)
        if is_best:
            save_checkpoint(self.model.state_dict(), os.path.join(self.output_dir, BEST_NAME))


    def _save_training_checkpoint(self, epoch, perf, step, meter):
        """A mid-epoch checkpoint, written by the first process while the others wait."""
        if self.ctx.is_main:
            save_checkpoint(self.checkpoint_state(epoch, perf, step=step, meter=meter), self.checkpoint_path)
            if self.writer is not None:
                self.writer.flush()
        self.ctx.barrier()


def run_record(cfg, run_info=None):
    """What a run's log starts with: the script's facts (command line, git state: ``run_info``),
    package versions and the resolved config."""
    import platform

    import cv2

    lines = [f"{key}: {value}" for key, value in (run_info or {}).items()]
    lines.append(f"versions: python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
                 f"opencv {cv2.__version__}, litepose {__version__}")
    lines.append("resolved config:")
    lines.extend("  " + line for line in cfg.dump().rstrip().splitlines())
    return "\n".join(lines)


def train(cfg, cfg_path=None, superconfig=None, teacher=None, teacher_arch=None, show_progress=True,
          run_info=None):
    """Train as ``dist_train.py`` does (one process, or one of ``torchrun``'s). Returns a summary
    dict: output folder, checkpoint paths, last and best validation loss, images/s."""
    ctx = setup_distributed(cfg)
    trainer = None
    try:
        trainer = Trainer(cfg, ctx, cfg_path, superconfig, teacher, teacher_arch, show_progress, run_info)
        return trainer.fit()
    finally:
        if trainer is not None:
            trainer.close()
        ctx.close()

