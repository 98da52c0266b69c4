"""The rare events of a training run: a loss that is not finite, unreadable training images, a
stop signal (SIGINT, SIGTERM).

Every process checks for them at every step, after the forward pass and before the update, and
all of them agree (one small all-reduce) whether to halt: then the step changes nothing, on every
process. What the step's forward pass moved (BatchNorm's running statistics, the architecture
sampler) is put back; the loop saves a checkpoint where that makes sense and raises one of the
errors below.
"""

import contextlib
import os
import signal
import threading

import torch

from ..errors import DataError, LitePoseError

# Why a step halted (``Trainer.halt``); None when it did not.
NONFINITE, UNREADABLE, SIGNAL = "nonfinite", "unreadable", "signal"


class NonFiniteLossError(LitePoseError):
    """The loss became NaN or infinite; training stopped, the last good checkpoint is kept."""


class TrainingInterrupted(LitePoseError):
    """SIGINT or SIGTERM stopped the run after a checkpoint was saved; the same command resumes it."""

    label = "stopped"

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + int(signum)  # the shell's convention for a death by that signal


def nonfinite_loss_error(loss, terms, where, checkpoint_path):
    detail = ", ".join(f"{k} {float(v):.4g}" for k, v in terms.items())
    return NonFiniteLossError(
        f"loss became {float(loss)} (on this or another process) at {where} ({detail}); stopped, "
        f"the last good checkpoint is {checkpoint_path}"
        + ("" if os.path.isfile(checkpoint_path) else " (none written yet)"))


def interrupted_error(signum, where, checkpoint_path):
    signum = signum or signal.SIGTERM
    return TrainingInterrupted(f"{signal.Signals(signum).name} {where}: checkpoint saved to {checkpoint_path}; "
                               "run the same command to resume", signum)


class UnreadableImages:
    """The unreadable training images this process met: reason -> times, in the order first met
    (the files listed but missing first). Each new one is a warning while they are within
    ``DATASET.MAX_UNREADABLE_IMAGES`` (``limit``); past it the run halts."""

    def __init__(self, limit, logger, missing=()):
        self.limit, self.logger = limit, logger
        self.counts = {f"image not found: {path}": 1 for path in missing}
        for reason in self.counts:
            logger.warning(f"left out of the training set: {reason}")

    def __len__(self):
        return len(self.counts)

    @property
    def too_many(self):
        return len(self.counts) > self.limit

    def note(self, reasons):
        for reason in reasons:
            first = reason not in self.counts
            self.counts[reason] = self.counts.get(reason, 0) + 1
            if first and len(self.counts) <= self.limit:
                self.logger.warning(f"skipped an unreadable training image ({len(self.counts)} so far, "
                                    f"DATASET.MAX_UNREADABLE_IMAGES {self.limit}): {reason}")

    def halt_error(self):
        """The error of a run halted for unreadable images (here or on another process)."""
        if self.too_many:
            last = list(self.counts)[-1]
            return DataError(f"{len(self.counts)} unreadable training images, more than DATASET."
                             f"MAX_UNREADABLE_IMAGES {self.limit}; the last: {last}")
        return DataError(f"another process met more than DATASET.MAX_UNREADABLE_IMAGES {self.limit} unreadable "
                         "training images (see its warnings)")


class StopSignals:
    """SIGINT and SIGTERM while ``installed()``: the first asks the run to stop after the current
    step with a checkpoint (``received`` holds it), the second stops the process at once (the
    checkpoint file is safe: it is written atomically)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, announce=True):
        self.received = None
        self.announce = announce  # the first process says it on stderr; the others keep quiet

    def handle(self, signum, frame=None):
        if self.received is not None:  # the second one
            signal.signal(signum, signal.SIG_DFL)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)
            return
        self.received = signum
        if self.announce:  # no logging here: the handler may interrupt the logger itself
            os.write(2, f"{signal.Signals(signum).name} received: stopping after this step with a checkpoint "
                        "(send it again to stop at once)\n".encode())

    @contextlib.contextmanager
    def installed(self):
        """The handlers for the block, the previous ones after it (signals reach only the main
        thread: elsewhere nothing is installed)."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self.handle) for sig in self.SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class StepGuard:
    """Lets a training step be called off after its forward pass with nothing changed.

    ``begin()`` before the forward pass saves what it moves: BatchNorm's running statistics, and
    the architecture sampler's state (a halted step is redone on resume, so its sub-networks must
    be drawn again from there). ``verdict()`` after it says whether every process goes on (None)
    or why they all halt; ``undo_forward()`` and ``rewind_sampler()`` put the saved state back.
    """

    def __init__(self, model, ctx, sampler=None):
        self.model, self.ctx, self.sampler = model, ctx, sampler
        self._buffers = []
        self._sampler_state = None

    def begin(self):
        self._sampler_state = self.sampler.state_dict() if self.sampler is not None else None
        self._buffers = [b.detach().clone() for b in self.model.buffers()]

    def verdict(self, loss, stop_requested, too_many_unreadable):
        """``NONFINITE``, ``UNREADABLE``, ``SIGNAL`` or None, the same on every process (every
        process must call it, at every step)."""
        finite = bool(torch.isfinite(loss.detach()).item())
        nonfinite, stop, too_many = self.ctx.any_of(not finite, stop_requested, too_many_unreadable)
        return NONFINITE if nonfinite else UNREADABLE if too_many else SIGNAL if stop else None

    def undo_forward(self):
        with torch.no_grad():
            for buffer, saved in zip(self.model.buffers(), self._buffers):
                buffer.copy_(saved)

    def rewind_sampler(self):
        if self._sampler_state is not None:
            self.sampler.load_state_dict(self._sampler_state)
