"""Latency measurement that survives a noisy machine.

Every candidate (a model on a backend) is a zero-argument callable that runs one batch
to completion. ``time_interleaved`` runs them round-robin, one call each per round, so
slow drift of the machine (other processes, clock changes, heat) hits all candidates
alike instead of whichever happened to run last; the starting candidate rotates every
round so none always runs right after the same neighbour. Reported: median and 90th
percentile of the per-call wall times.
"""

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm


@dataclass
class Timing:
    """Wall times of one candidate, in seconds."""

    samples: list

    @property
    def median_ms(self):
        return 1000.0 * statistics.median(self.samples)

    @property
    def p90_ms(self):
        return 1000.0 * float(np.percentile(self.samples, 90))

    @property
    def mean_ms(self):
        return 1000.0 * statistics.fmean(self.samples)


def torch_runner(model, x):
    """One synchronous forward of ``model`` on ``x`` (waits for the GPU when there is one)."""
    model = model.eval()
    cuda = x.device.type == "cuda"

    def run():
        with torch.inference_mode():
            out = model(x)
        if cuda:
            torch.cuda.synchronize(x.device)
        return out

    return run


def onnx_runner(session, x):
    """One ONNX Runtime call on ``x`` (a tensor or array) with the session's input name."""
    feed = {session.get_inputs()[0].name: x.detach().cpu().numpy() if torch.is_tensor(x) else x}

    def run():
        return session.run(None, feed)

    return run


def time_interleaved(runners, repeats, warmup=1, progress=True, description="timing"):
    """``{name: Timing}`` for ``{name: callable}``: ``warmup`` untimed rounds, then
    ``repeats`` timed rounds, each calling every runner once (rotating the order)."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    samples = {name: [] for name in names}
    for round_index in tqdm(range(repeats), desc=description, disable=not progress, leave=False):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runners[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: Timing(values) for name, values in samples.items()}
