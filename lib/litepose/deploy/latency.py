"""Latency measurement that survives a noisy machine.

Every candidate (a model on a backend) is a zero-argument callable that runs one batch
to completion. ``time_interleaved`` runs them round-robin, one call each per round, so
slow drift of the machine (other processes, clock changes, heat) hits all candidates
alike instead of whichever happened to run last; the starting candidate rotates every
round so none always runs right after the same neighbour. Reported: median and 90th
percentile of the per-call wall times.

Weights do not change the work a network does, so timed models may have random weights, as long
as they behave like trained ones (``realistic_weights_``): untrained HRNet weights (std 0.001)
would make activations denormal floats, which some CPUs process many times slower, and
unnormalised random ones give output maps of arbitrary scale, which changes how much grouping
finds.
"""

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from ..models.bn import recalibrate_bn


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


def end_to_end_runner(model, cfg, size, device):
    """A runner for the time per image of the whole test-time pipeline, ``PoseEstimator``'s (the
    one ``evaluate`` and ``benchmarks/benchmark_e2e.py`` run): resize and normalise a ``size`` x
    ``size`` RGB image, the network, map aggregation and associative-embedding grouping, as
    deployed (one scale, no flip test, no cap or person filter). The runner keeps the per-stage
    times of every call in ``runner.stage_times`` (network, with pre-processing as in
    ``evaluate``'s ``ms_per_image``; aggregate; grouping)."""
    from ..estimator import PoseEstimator

    estimator = PoseEstimator.from_model(model, cfg, device=device, input_size=size, flip=False, max_people=None,
                                         max_detections=None, min_person_score=None, person_nms=None)
    estimator.settings = dataclasses.replace(estimator.settings, scales=(1.0,))
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    stage_times = []

    def run():
        people = estimator(image, color="rgb")
        times = people.times
        stage_times.append({"network": times["preprocess"] + times["network"], "aggregate": times["aggregate"],
                            "grouping": times["grouping"]})
        return people

    run.stage_times = stage_times
    return run


@torch.no_grad()
def realistic_weights_(model, input_size, seed=0):
    """Random weights that behave like trained ones: He-normal convolutions, then BatchNorm
    statistics estimated on a random batch, so every normalised activation (and each
    model's output maps, which grouping reads) has a trained network's scale."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = module.weight[0].numel() if isinstance(module, nn.Conv2d) else \
                module.weight.shape[0] // module.groups * module.weight[0, 0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * math.sqrt(1.0 / fan_in))
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()
    images = torch.randn(2, 3, input_size, input_size, generator=generator)
    recalibrate_bn(model, [images])
    return model.eval()


def time_interleaved(runners, repeats, warmup=1, progress=True, description="timing"):
    """``{name: Timing}`` for ``{name: callable}``: ``warmup`` untimed rounds, then
    ``repeats`` timed rounds, each calling every runner once (rotating the order). With
    ``progress``, a tqdm bar advances after every call, warm-up included."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    names = list(runners)
    samples = {name: [] for name in names}
    with tqdm(total=(warmup + repeats) * len(names), desc=description, unit="call", disable=not progress,
              leave=False) as bar:
        for round_index in range(-warmup, repeats):
            bar.set_postfix_str(f"warm-up round {round_index + warmup + 1}/{warmup}" if round_index < 0 else
                                f"round {round_index + 1}/{repeats}", refresh=False)
            shift = round_index % len(names) if round_index >= 0 else 0
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                runners[name]()
                if round_index >= 0:
                    samples[name].append(time.perf_counter() - start)
                bar.update()
    return {name: Timing(values) for name, values in samples.items()}


# ------------------------------------------------------------------- when figures are unreliable
# Repeats of one candidate whose spread is larger than this share of their median measure the
# machine's load more than the candidate: the figure gets a warning.
SPREAD_LIMIT = 0.20
RERUN_ADVICE = "rerun on a quiet machine or with more --repeats"


@dataclass(frozen=True)
class Spread:
    """How far the timed repeats of one candidate lie apart, in ms: ``low`` to ``high`` is the
    range of the middle repeats (all of them up to 10 repeats; from 11 on, the fastest and the
    slowest tenth are left out, so one hiccup does not count), ``relative`` that range over
    the median."""

    low_ms: float
    high_ms: float
    median_ms: float
    repeats: int
    trimmed: bool

    @property
    def relative(self):
        if self.median_ms > 0:
            return (self.high_ms - self.low_ms) / self.median_ms
        return 0.0 if self.high_ms == self.low_ms else math.inf

    def describe(self):
        which = "middle 80 % of the repeats" if self.trimmed else "repeats"
        return (f"{which} range {_ms(self.low_ms)}-{_ms(self.high_ms)} ms "
                f"(spread {100 * self.relative:.0f} % of the median)")


def _ms(value):
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def repeat_spread(samples):
    """``Spread`` of timed repeats given in seconds (a ``Timing``'s samples)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no repeats to measure a spread of")
    cut = (len(ordered) - 1) // 10  # per side
    kept = ordered[cut:len(ordered) - cut]
    return Spread(1000.0 * kept[0], 1000.0 * kept[-1], 1000.0 * statistics.median(ordered), len(ordered), cut > 0)


def spread_warning(label, samples, limit=SPREAD_LIMIT, advice=RERUN_ADVICE):
    """One ``warning:`` line when the repeats of ``label`` spread more than ``limit`` of their
    median (``repeat_spread``), else None (also for a single repeat: nothing to compare)."""
    if len(samples) < 2:
        return None
    spread = repeat_spread(samples)
    if spread.relative <= limit:
        return None
    return (f"warning: {label}: {spread.describe()} > {100 * limit:.0f} %: the machine was busy; {advice}")


def comparison_warning(label, samples, other_samples, advice=RERUN_ADVICE):
    """One ``warning:`` line when the ratio of two candidates' medians (``label`` names them,
    e.g. ``"A / B"``) is inside the spread of their repeats: the two differ by less than each
    varies from call to call, so the ratio (a speed-up, or which is faster) is not measured.
    None when the ratio stands out of both spreads, or a side has a single repeat."""
    if len(samples) < 2 or len(other_samples) < 2:
        return None
    one, other = repeat_spread(samples), repeat_spread(other_samples)
    if one.median_ms <= 0 or other.median_ms <= 0:
        return None
    ratio = one.median_ms / other.median_ms
    spread = max(one.relative, other.relative)
    if max(ratio, 1.0 / ratio) - 1.0 >= spread:
        return None
    return (f"warning: {label}: ratio {ratio:.2f} is within the spread of their repeats ({100 * spread:.0f} % of "
            f"the median): not a measured difference; {advice}")
