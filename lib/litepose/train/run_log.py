"""What a run tells: console and ``train.log`` lines, the record a log starts with, running means
of the loss terms, and TensorBoard's scalars and validation pictures (written by the first
process only).
"""

import logging
import os
import platform
import sys

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__
from .checkpoint import LOG_NAME

LOGGER_NAME = "litepose.train"


class _TqdmHandler(logging.Handler):
    """Console log lines that do not break the progress bar. Progress and logs go to stdout;
    stderr carries only warnings and the one-line error that stops a run."""

    def emit(self, record):
        tqdm.write(self.format(record), file=sys.stderr if record.levelno >= logging.WARNING else sys.stdout)


def setup_logger(output_dir, is_main):
    """The ``litepose.train`` logger: INFO on the console and in ``output_dir/train.log`` for the
    first process, warnings only on the console for the others."""
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


def run_record(cfg, run_info=None):
    """What a run's log starts with: the script's facts (command line, git state: ``run_info``),
    package versions and the resolved config."""
    import cv2

    lines = [f"{key}: {value}" for key, value in (run_info or {}).items()]
    lines.append(f"versions: python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
                 f"opencv {cv2.__version__}, litepose {__version__}")
    lines.append("resolved config:")
    lines.extend("  " + line for line in cfg.dump().rstrip().splitlines())
    return "\n".join(lines)


def fmt(value):
    """A loss value, readable both near 1 and near 0."""
    return f"{value:.3e}" if abs(value) < 1e-2 else f"{value:.4f}"


class Meter:
    """Means of the loss terms over an epoch's images so far."""

    def __init__(self, sums=None, count=0):
        self.sums, self.count = dict(sums or {}), int(count)

    def update(self, terms, n):
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * n
        self.count += n

    def means(self):
        return {k: v / max(1, self.count) for k, v in self.sums.items()}

    def state(self):
        """What a mid-epoch checkpoint keeps of it."""
        return {"sums": dict(self.sums), "count": self.count}


def epoch_line(epoch, end, lr, means, speed, elapsed, perf=None, improved=False, skipped=0):
    """The log line that closes an epoch (``epoch`` 0-based)."""
    summary = " ".join(f"{k} {fmt(v)}" for k, v in means.items())
    return (f"epoch {epoch + 1}/{end} | lr {lr:.2e} | {summary} | {speed:.1f} img/s, {elapsed:.0f}s"
            + (f" | val loss {fmt(perf)}{' (best)' if improved else ''}" if perf is not None else "")
            + (f" | {skipped} unreadable image(s) skipped so far" if skipped else ""))


class RunWriter:
    """TensorBoard's event files of a run: the run record as text, the step's and the epoch's
    scalars. ``purge_step`` (a resumed run's global step) drops events a killed run wrote after
    its checkpoint."""

    def __init__(self, log_dir, record, purge_step=None, step=0):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir, purge_step=purge_step or None)
        # Markdown in TensorBoard's text tab: indented lines render as code.
        self.writer.add_text("run", "\n".join("    " + line for line in record.splitlines()), step)

    def step(self, global_step, loss, terms, speed):
        self.writer.add_scalar("train/loss", float(loss), global_step)
        for key, value in terms.items():
            self.writer.add_scalar(f"train/{key}", float(value), global_step)
        self.writer.add_scalar("train/images_per_s", speed, global_step)

    def epoch(self, epoch, means, speed, lr, perf=None):
        """Scalars of the finished epoch ``epoch`` (0-based; written at ``epoch + 1``), then flushed."""
        self.writer.add_scalar("epoch/lr", lr, epoch + 1)
        self.writer.add_scalar("epoch/images_per_s", speed, epoch + 1)
        for key, value in means.items():
            self.writer.add_scalar(f"epoch/{key}", value, epoch + 1)
        if perf is not None:
            self.writer.add_scalar("val/loss", perf, epoch + 1)
        self.writer.flush()

    def keypoint_ap(self, epoch, result):
        """A validation's keypoint AP (a ``val_ap.KeypointAP``) after epoch ``epoch`` (0-based):
        ``val/AP`` and the other scalars, and the drawn images as ``val/predictions/<image id>``."""
        for tag, value in result.metrics.items():
            self.writer.add_scalar(f"val/{tag}", value, epoch + 1)
        for image_id, picture in result.drawn:
            self.writer.add_image(f"val/predictions/{image_id}", picture, epoch + 1, dataformats="HWC")
        self.writer.flush()

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()
