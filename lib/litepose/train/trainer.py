"""The training loop of ``dist_train.py``: fixed networks, the supernet, distillation; one process
or many. Its parts live beside it: rare events (a loss that is not finite, unreadable images,
stop signals) in ``faults.py``, resuming in ``resume.py``, logs and TensorBoard in ``run_log.py``.

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

At each validation the first process also evaluates the keypoint AP on the first
``TRAIN.VAL_AP_IMAGES`` test images as ``valid.py`` does (``val_ap.py``), into ``train.log`` and
TensorBoard (``val/AP``, ``val/AP50``, ``val/AP75``, ``val/AR``; 4 images drawn with the predicted
people), after the epoch's checkpoint is saved; it changes nothing training uses.
"""

import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ..arch import default_input_size, describe_arch, load_arch
from ..data.build import (build_dataset, build_loader, default_workers, ensure_dataset, iterate_loader,
                          set_loader_epoch)
from ..data.index_cache import CACHE_DIR_NAME
from ..data.targets import TargetConfig, prepare_batch
from ..errors import CheckpointError, ConfigError, LitePoseError
from ..loss import PoseLoss, total
from ..models import LitePose, SuperLitePose, build_model, load_checkpoint
from ..models.checkpoint import extract_state_dict, load_state_dict_checked, read_checkpoint
from ..models.space import ArchManager
from ..utils.io import ensure_writable_dir, lock_folder, path_problem, remove_stale_temporaries
from .checkpoint import BEST_NAME, CHECKPOINT_NAME, FINAL_NAME, load_training_checkpoint, run_dirs, save_checkpoint
from .distributed import setup_distributed
from .faults import (NONFINITE, UNREADABLE, StepGuard, StopSignals, UnreadableImages, interrupted_error,
                     nonfinite_loss_error)
from .resume import (Progress, check_resumable, check_training_checkpoint, checkpoint_state, checkpoint_to_resume,
                     restore_training_state)
from .run_log import Meter, RunWriter, epoch_line, fmt, run_record, setup_logger
from .val_ap import ValidationAP

HEAD_KEYS = ("deconv", "final")  # what the release leaves out when initialising from MODEL.PRETRAINED


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
        self.logger = setup_logger(self.output_dir, ctx.is_main)
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
        # The annotation index is built once per run and memory-mapped by its processes and restarts.
        index = dict(index_cache=os.path.join(self.output_dir, CACHE_DIR_NAME) if cfg.DATASET.INDEX_CACHE else None,
                     log=self.logger.info if ctx.is_main else None, warn=self.logger.warning)
        train_set = build_dataset(cfg, self.data_size, "train", augment=True, **index)
        # On a CPU the loader workers render a fixed network's targets, overlapping the step (the
        # release's placement); on a GPU, or for the supernet's per-resolution targets, the step does.
        self.worker_targets = self.device.type == "cpu" and workers > 0 and not self.is_supernet
        self.train_loader = build_loader(train_set, cfg.TRAIN.IMAGES_PER_GPU, workers, cfg.TRAIN.SHUFFLE,
                                         cfg.TRAIN.SEED, ctx.rank, ctx.world_size, drop_last=True, pin_memory=pin,
                                         worker_targets=self.target_config if self.worker_targets else None)
        self.val_loader = None
        if cfg.TRAIN.VAL_FREQ > 0:
            try:
                val_set = build_dataset(cfg, self.data_size, "test", augment=False, **index)
            except LitePoseError as exc:
                raise type(exc)(f"{exc} (validation set; TRAIN.VAL_FREQ 0 trains without validation)") from None
            for path in val_set.missing:
                self.logger.warning(f"left out of the validation set: image not found: {path}")
            self.val_loader = build_loader(val_set, cfg.TRAIN.IMAGES_PER_GPU, workers, False, cfg.TRAIN.SEED,
                                           ctx.rank, ctx.world_size, drop_last=False, pin_memory=pin)
        # Built on every process (a bad TEST setting stops all of them now); the first evaluates.
        self.val_ap = ValidationAP(cfg, cfg.TRAIN.VAL_AP_IMAGES, input_size=cfg.TRAIN.INPUT_SIZE, model=self.model) \
            if self.val_loader is not None and cfg.TRAIN.VAL_AP_IMAGES > 0 else None
        self.last_ap = None
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
        self.skipped = UnreadableImages(cfg.DATASET.MAX_UNREADABLE_IMAGES, self.logger,
                                        self.train_loader.dataset.missing)
        self.val_skipped = set()
        self.signals = StopSignals(announce=ctx.is_main)
        self.guard = StepGuard(self.model, ctx, self.sampler)  # after _wrap: SyncBatchNorm may replace the model
        self.halt = None
        self._resume()
        self.writer = RunWriter(self.tb_dir, self.run_record, self.global_step, self.global_step) if ctx.is_main \
            else None

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
            self.data_size = default_input_size(cfg, self.model, cfg.TRAIN.INPUT_SIZE)
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
        path = checkpoint_to_resume(self.cfg, self.checkpoint_path)
        if path is None:
            self.logger.info(f"no checkpoint to resume from: starting at epoch {self.begin_epoch + 1}")
            return
        checkpoint = load_training_checkpoint(path)
        check_training_checkpoint(checkpoint, path, self.cfg.MODEL.NAME, self.arch)
        check_resumable(checkpoint, path, self.ctx.world_size, self.cfg.TRAIN.IMAGES_PER_GPU)
        progress = restore_training_state(checkpoint, path, self.model, self.optimizer, self.scheduler, self.scaler,
                                          self.sampler)
        self.begin_epoch, self.begin_step, self.resumed_meter = progress.epoch, progress.step, progress.meter
        self.best_perf, self.best_epoch = progress.best_perf, progress.best_epoch
        self.global_step = progress.global_step
        self.logger.info(f"resumed from {path}: continuing at epoch {self.begin_epoch + 1}"
                         + (f" step {self.begin_step + 1}" if self.begin_step else ""))

    def checkpoint_state(self, next_epoch, perf, step=0, meter=None):
        """What ``checkpoint.pth.tar`` holds: training continues at epoch ``next_epoch`` (0-based)
        after its first ``step`` steps (``meter``: the running means of those)."""
        progress = Progress(next_epoch, step, meter.state() if meter is not None else None, self.best_perf,
                            self.best_epoch, self.global_step)
        return checkpoint_state(progress, perf, self.cfg, self.arch, self.model, self.optimizer, self.scheduler,
                                self.scaler, self.sampler, self.ctx.world_size)

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
        the update whether to halt instead (``self.halt``, see ``faults.py``): a loss that is not
        finite, a stop signal, too many unreadable images, on any of them; then nothing changes,
        on every one."""
        self.skipped.note(raw_batch.pop("skipped", []))
        self.guard.begin()
        archs = self.step_archs()
        batches = [prepare_batch(raw_batch, self.target_config, self.input_size(a), self.device) for a in archs]
        with self._autocast():
            outputs = self.runner([b.images for b in batches], archs)
        loss, terms = self.losses(batches, outputs)
        self.halt = self.guard.verdict(loss, self.stop_signal is not None, self.skipped.too_many)
        if self.halt is not None:
            self.guard.undo_forward()
            return loss.detach(), terms, False
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.TRAIN.CLIP_GRAD_NORM > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.TRAIN.CLIP_GRAD_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach(), terms, True

    @property
    def stop_signal(self):
        """The stop signal received (SIGINT, SIGTERM) while ``fit()`` runs, or None."""
        return self.signals.received

    @stop_signal.setter
    def stop_signal(self, signum):
        self.signals.received = signum

    def _halt(self, epoch, step, steps, loss, terms, meter, bar):
        """Stop the run as ``self.halt`` says, after saving what can be saved."""
        bar.close()
        where = f"epoch {epoch + 1} step {step + 1}/{steps}"
        if self.halt == NONFINITE:
            raise nonfinite_loss_error(loss, terms, where, self.checkpoint_path)
        if self.halt == UNREADABLE:
            raise self.skipped.halt_error()
        # A stop signal: the step was not applied, so the checkpoint holds the steps before it.
        self.guard.rewind_sampler()
        self._save_training_checkpoint(epoch, None, step=step, meter=meter)
        raise interrupted_error(self.stop_signal, f"at {where}", self.checkpoint_path)

    def train_epoch(self, epoch, start_step=0):
        cfg, ctx = self.cfg, self.ctx
        self.model.train()
        set_loader_epoch(self.train_loader, epoch, start_step)
        meter = Meter(**self.resumed_meter) if start_step and self.resumed_meter else Meter()
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
                bar.set_postfix_str(" ".join(f"{k} {fmt(v)}" for k, v in means.items()) + f" | {speed:.1f} img/s",
                                    refresh=False)
                bar.update(1)
                if self.writer is not None and (step % max(1, cfg.PRINT_FREQ) == 0 or step == steps - 1):
                    self.writer.step(self.global_step, loss, terms, speed)
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
    def fit(self):
        """Train from ``begin_epoch`` to ``TRAIN.END_EPOCH``. SIGINT and SIGTERM stop the run
        at the next step with a checkpoint (``TrainingInterrupted``)."""
        try:
            with self.signals.installed():
                return self._fit()
        finally:
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
            self.logger.info(epoch_line(epoch, end, lr, means, speed, elapsed, perf, improved, len(self.skipped)))
            if ctx.is_main:
                self._write_epoch(epoch, means, speed, lr, perf, improved or self.val_loader is None)
                if perf is not None and self.val_ap is not None:
                    self._keypoint_ap(epoch)
            ctx.barrier()  # the other processes wait here for the first one's checkpoint and AP
            if ctx.any_of(self.stop_signal is not None)[0] and epoch + 1 < end:
                raise interrupted_error(self.stop_signal, f"after epoch {epoch + 1}", self.checkpoint_path)
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
                             + (f" (epoch {self.best_epoch}, val loss {fmt(self.best_perf)})" if self.best_perf is not None else ""))
        return {
            "output_dir": self.output_dir,
            "checkpoint": self.checkpoint_path,
            "final_state": final,
            "model_best": best,
            "last_val_loss": perf,
            "best_val_loss": self.best_perf,
            "best_epoch": self.best_epoch,
            "last_val_ap": self.last_ap,
            "images_per_s": speed,
        }

    def _keypoint_ap(self, epoch):
        """After the epoch's checkpoint is saved: the keypoint AP on the first TRAIN.VAL_AP_IMAGES
        test images (of the supernet's widest or fixed member), logged and in TensorBoard."""
        result = self.val_ap(self.model, self.device, self.val_archs()[0])
        self.last_ap = result.metrics["AP"]
        self.logger.info(result.line())
        if self.writer is not None:
            self.writer.keypoint_ap(epoch, result)

    def _write_epoch(self, epoch, means, speed, lr, perf, is_best):
        if self.writer is not None:
            self.writer.epoch(epoch, means, speed, lr, perf)
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

