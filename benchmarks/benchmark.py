#!/usr/bin/env python
"""Latency of LitePose against HigherHRNet and EfficientHRNet, side by side in one run.

    python -m benchmarks.benchmark --output bench/ [--models XS S M L W24 H-1] [--repeats 20]
        [--warmup 2] [--threads 2] [--input-size 512] [--device all|cpu|cuda]
        [--backends eager fused onnx e2e] [--dataset crowd_pose|coco]

Every model runs in every backend (PyTorch eager, PyTorch with BN folded, ONNX Runtime,
end to end with grouping), interleaved round-robin so the machine's drift cancels; batch 1,
median and p90 over --repeats calls after --warmup rounds. Models run at their own input
size (LitePose: the architecture's img_size; baselines: DATASET.INPUT_SIZE) unless
--input-size sets one for all. Writes OUTPUT/benchmark.md (table and speed-ups),
benchmark.png (latency against MACs) and benchmark.json (every sample); prints the table.

From Python (``from benchmarks import benchmark``: tests/test_benchmark.py, benchmarks/device_check.py):
``run_benchmark`` builds each model from its experiment config (``build_zoo_model``), counts its
MACs and parameters, prepares every backend and times all of them interleaved
(``litepose.deploy.time_interleaved``) so the figures of one run are comparable with each other;
``markdown_table``, ``speedups`` and ``plot_latency`` present the result. Models get random
weights that behave like trained ones (``litepose.deploy.realistic_weights_``).

A figure the run cannot vouch for is said: ``timing_warnings`` gives one ``warning:`` line (on
stderr, and under the tables of benchmark.md) for each model and backend whose repeats spread
more than 20 % of their median, and for each comparison (a speed-up; BN folded or ONNX Runtime
against eager) whose ratio lies within the spread of its two rows (``litepose.deploy.latency``).
"""

import argparse
import io
import os
import statistics
from dataclasses import dataclass, field

from litepose.errors import ConfigError
from litepose.cli import THREADS, input_size, int_range, parse_args, run_cli

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/benchmark.py

BACKENDS = ("eager", "fused", "onnx", "e2e")
BACKEND_TITLES = {
    "eager": "PyTorch eager",
    "fused": "PyTorch, BN folded",
    "onnx": "ONNX Runtime",
    "e2e": "end to end (folded, grouping)",
}


@dataclass(frozen=True)
class ZooEntry:
    """A benchmarked model: experiment config (``{dataset}`` is filled in) and LitePose arch."""

    name: str
    config: str
    arch: str = None

    @property
    def is_litepose(self):
        return self.arch is not None


_MOBILE = "experiments/{dataset}/mobilenet/mobile.yaml"
ZOO = {entry.name: entry for entry in (
    ZooEntry("LitePose-XS", _MOBILE, "mobile_configs/search-XS.json"),
    ZooEntry("LitePose-S", _MOBILE, "mobile_configs/search-S.json"),
    ZooEntry("LitePose-M", _MOBILE, "mobile_configs/search-M.json"),
    ZooEntry("LitePose-L", _MOBILE, "mobile_configs/search-L.json"),
    ZooEntry("HigherHRNet-W24", "experiments/{dataset}/higher_hrnet/w24_512_adam_lr1e-3.yaml"),
    ZooEntry("HigherHRNet-W32", "experiments/{dataset}/higher_hrnet/w32_512_adam_lr1e-3.yaml"),
    ZooEntry("HigherHRNet-W48", "experiments/{dataset}/higher_hrnet/w48_640_adam_lr1e-3.yaml"),
    ZooEntry("EfficientHRNet-H-1", "experiments/{dataset}/efficient_hrnet/H-1.yaml"),
)}
DEFAULT_MODELS = ("LitePose-XS", "LitePose-S", "LitePose-M", "LitePose-L", "HigherHRNet-W24", "EfficientHRNet-H-1")
# The paper's comparison: every LitePose against these two.
REFERENCE_BASELINES = ("HigherHRNet-W24", "EfficientHRNet-H-1")


def _key(name):
    return name.lower().replace("-", "").replace("_", "")


_ALIASES = {_key(name): name for name in ZOO}
_ALIASES.update({_key(name.split("-", 1)[1]): name for name in ZOO})  # XS, W24, H-1, ...


def resolve_models(names):
    """Zoo entries for names like ``LitePose-S``, ``S``, ``W24``, ``h1`` (case and dashes
    ignored), or custom ``CONFIG.yaml`` / ``CONFIG.yaml:ARCH.json`` entries."""
    entries = []
    for name in names:
        if name.endswith((".yaml", ".json")) or ".yaml:" in name:
            config, _, arch = name.partition(":")
            label = os.path.splitext(os.path.basename(arch or config))[0]
            entries.append(ZooEntry(label, config, arch or None))
        elif _key(name) in _ALIASES:
            entries.append(ZOO[_ALIASES[_key(name)]])
        else:
            raise ConfigError(f"unknown model '{name}' (known: {', '.join(ZOO)}; or CONFIG.yaml[:ARCH.json])")
    return entries


def _repo_path(path):
    return path if os.path.isabs(path) or os.path.exists(path) else os.path.join(REPO_ROOT, path)


@dataclass
class ModelResult:
    name: str
    device: str
    input_size: int
    macs: int
    params: int
    is_litepose: bool
    timings: dict = field(default_factory=dict)  # backend -> Timing
    notes: list = field(default_factory=list)
    stages_ms: dict = field(default_factory=dict)  # end to end: median ms of network, aggregate, grouping


@dataclass
class BenchmarkSettings:
    models: tuple = DEFAULT_MODELS
    dataset: str = "crowd_pose"
    backends: tuple = ("eager", "fused", "onnx", "e2e")
    devices: tuple = ("cpu",)
    threads: int = None
    input_size: int = None  # None: each model's own size
    repeats: int = 20
    warmup: int = 2
    progress: bool = True


def available_devices(requested="all"):
    """``all``: the CPU, plus the first GPU when there is one; else the named device."""
    import torch

    from litepose.utils.device import resolve_device

    if requested == "all":
        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    return (str(resolve_device(requested)),)


def build_zoo_model(entry, dataset="crowd_pose", input_size=None):
    """``(config, model, input size)`` of a zoo entry as the benchmark times it: its experiment
    config for ``dataset``, the model (a supernet's active sub-network), random weights with a
    trained network's statistics (``realistic_weights_``) at ``input_size``, else the
    architecture's img_size, else the config's DATASET.INPUT_SIZE. On the CPU, in eval mode."""
    from litepose.arch import default_input_size
    from litepose.config import load_config
    from litepose.deploy.latency import realistic_weights_
    from litepose.models import load_model

    cfg = load_config(_repo_path(entry.config.format(dataset=dataset)))
    model = load_model(cfg, _repo_path(entry.arch) if entry.arch else None, required=False)  # random weights
    size = default_input_size(cfg, model, input_size)
    return cfg, realistic_weights_(model, size), size


def _runners(entry, cfg, model, size, device, settings):
    """``{backend: callable}`` for the backends that exist for this model and device."""
    import torch

    from litepose.deploy import export_onnx, fuse_bn, onnx_runner, onnx_session, torch_runner
    from litepose.deploy.latency import end_to_end_runner

    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    runners, notes = {}, []
    model = model.to(device)
    fused = fuse_bn(model).to(device) if {"fused", "onnx", "e2e"} & set(settings.backends) else None
    if "eager" in settings.backends:
        runners["eager"] = torch_runner(model, x)
    if "fused" in settings.backends:
        runners["fused"] = torch_runner(fused, x)
    if "onnx" in settings.backends:
        try:
            session = onnx_session(export_onnx(fused.cpu(), size), settings.threads, device)
            runners["onnx"] = onnx_runner(session, x)
        except Exception as exc:  # a missing provider is a note in the table, not a failed run
            notes.append(f"ONNX Runtime skipped: {str(exc).splitlines()[0][:120]}")
        fused.to(device)
    if "e2e" in settings.backends:
        runners["e2e"] = end_to_end_runner(fused, cfg, size, device)
    return runners, notes


def run_benchmark(settings):
    """Measure every model of ``settings`` on every device; returns ``[ModelResult]``. With
    ``settings.progress``, tqdm bars name the model being built or prepared and count the calls
    of the timing rounds."""
    import torch
    from tqdm import tqdm

    from litepose.deploy import time_interleaved
    from litepose.models import profile_model

    if settings.threads:
        torch.set_num_threads(settings.threads)
    entries = resolve_models(settings.models)
    prepared = []
    bar = tqdm(entries, desc="building models", unit="model", disable=not settings.progress, leave=False)
    for entry in bar:
        bar.set_postfix_str(entry.name)
        cfg, model, size = build_zoo_model(entry, settings.dataset, settings.input_size)
        prepared.append((entry, cfg, model, size, profile_model(model, size)))
    results = []
    for device in settings.devices:
        if device.startswith("cuda"):
            torch.backends.cudnn.benchmark = True
        runners, device_results = {}, []
        bar = tqdm(prepared, desc=f"preparing backends ({device})", unit="model", disable=not settings.progress,
                   leave=False)
        for entry, cfg, model, size, profile in bar:
            bar.set_postfix_str(entry.name)
            model_runners, notes = _runners(entry, cfg, model, size, device, settings)
            result = ModelResult(entry.name, device, size, profile.macs, profile.params, entry.is_litepose,
                                 notes=notes)
            device_results.append(result)
            runners.update({(result.name, backend): run for backend, run in model_runners.items()})
        timings = time_interleaved(runners, settings.repeats, settings.warmup, settings.progress,
                                   description=f"timing ({device})")
        for result in device_results:
            result.timings = {backend: timings[(result.name, backend)] for backend in settings.backends
                              if (result.name, backend) in timings}
            stage_times = getattr(runners.get((result.name, "e2e")), "stage_times", None)
            if stage_times:
                stage_times = stage_times[-settings.repeats:]  # the timed calls, not the warm-up
                result.stages_ms = {stage: 1000.0 * statistics.median(t[stage] for t in stage_times)
                                    for stage in stage_times[0]}
        results.extend(device_results)
        for entry, cfg, model, size, profile in prepared:
            model.cpu()
    return results


# Speed-ups compare networks, as the paper does: the end-to-end time of random weights depends
# on how many peaks their meaningless heatmaps give grouping, not only on the model.
SPEEDUP_BACKENDS = ("eager", "fused", "onnx")


def speedups(results, baselines=REFERENCE_BASELINES, backends=SPEEDUP_BACKENDS):
    """``[(device, backend, litepose, baseline, factor)]``: baseline median / LitePose median."""
    rows = []
    for base in (r for r in results if r.name in baselines):
        for lite in (r for r in results if r.is_litepose and r.device == base.device):
            for backend, timing in lite.timings.items():
                if backend in backends and backend in base.timings:
                    rows.append((lite.device, backend, lite.name, base.name,
                                 base.timings[backend].median_ms / timing.median_ms))
    return rows


# Backends read against PyTorch eager in the table: BN folding and ONNX Runtime should be faster.
COMPARED_TO_EAGER = ("fused", "onnx")


def timing_warnings(results, limit=None):
    """``warning:`` lines for the figures of ``results`` that the run cannot vouch for: a model
    and backend whose repeats spread more than ``limit`` (default ``SPREAD_LIMIT``, 20 %) of
    their median, then each comparison whose ratio is within the spread of its two rows: every
    speed-up of ``speedups``, and each model's BN-folded and ONNX Runtime time against its eager
    one. Empty when every figure is steady."""
    from litepose.deploy.latency import SPREAD_LIMIT, comparison_warning, spread_warning

    limit = SPREAD_LIMIT if limit is None else limit
    several_devices = len({r.device for r in results}) > 1

    def where(r):
        return f" on {r.device}" if several_devices else ""

    lines = [spread_warning(f"{r.name} {backend}{where(r)}", timing.samples, limit)
             for r in results for backend, timing in r.timings.items()]
    for r in results:
        eager = r.timings.get("eager")
        for backend in (b for b in COMPARED_TO_EAGER if eager and b in r.timings):
            lines.append(comparison_warning(f"{r.name}{where(r)} eager / {backend}", eager.samples,
                                            r.timings[backend].samples))
    by_name = {(r.device, r.name): r for r in results}
    for device, backend, lite, base, _ in speedups(results):
        lines.append(comparison_warning(f"{base} / {lite} {backend}{where(by_name[(device, lite)])}",
                                        by_name[(device, base)].timings[backend].samples,
                                        by_name[(device, lite)].timings[backend].samples))
    return [line for line in lines if line]


def markdown_table(results, backends=BACKENDS):
    """One Markdown table per device: MACs, parameters, median / p90 latency per backend."""
    lines = []
    for device in dict.fromkeys(r.device for r in results):
        rows = [r for r in results if r.device == device]
        shown = [b for b in backends if any(b in r.timings for r in rows)]
        lines.append(f"Device: {device}. Latency in ms, median / p90, batch 1.")
        lines.append("")
        stages = any(r.stages_ms for r in rows)
        titles = [BACKEND_TITLES[b] for b in shown] + (["end to end: network / aggregate / grouping"] if stages else [])
        lines.append("| model | input | GMACs | params (M) | " + " | ".join(titles) + " |")
        lines.append("|---|---|---|---|" + "---|" * len(titles))
        for r in rows:
            cells = [f"{r.timings[b].median_ms:.1f} / {r.timings[b].p90_ms:.1f}" if b in r.timings else "n/a"
                     for b in shown]
            if stages:
                cells.append(" / ".join(f"{ms:.1f}" for ms in r.stages_ms.values()) if r.stages_ms else "n/a")
            lines.append(f"| {r.name} | {r.input_size} | {r.macs / 1e9:.2f} | {r.params / 1e6:.2f} | "
                         + " | ".join(cells) + " |")
        notes = {}
        if stages:
            notes["end to end runs random weights: a large share of their heatmap pixels pass the detection "
                  "threshold, so grouping works near its worst case (every joint at its peak limit); "
                  "trained models on real images give it far fewer candidates"] = [r.name for r in rows]
        for r in rows:
            for note in r.notes:
                notes.setdefault(note, []).append(r.name)
        if notes:
            lines.append("")
            lines.extend(f"- {note} ({'all models' if len(names) == len(rows) else ', '.join(names)})"
                         for note, names in notes.items())
        lines.append("")
    ups = speedups(results)
    if ups:
        shown = [b for b in backends if any(u[1] == b for u in ups)]
        factors = {(d, lite, base, b): f for d, b, lite, base, f in ups}
        lines.append("Speed-up of each LitePose (baseline median / LitePose median):")
        lines.append("")
        lines.append("| device | LitePose | against | " + " | ".join(BACKEND_TITLES[b] for b in shown) + " |")
        lines.append("|---|---|---|" + "---|" * len(shown))
        for device, lite, base in dict.fromkeys((d, lite, base) for d, _, lite, base, _ in ups):
            cells = [f"{factors[(device, lite, base, b)]:.2f}x" if (device, lite, base, b) in factors else "n/a"
                     for b in shown]
            lines.append(f"| {device} | {lite} | {base} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_latency(results, backends=BACKENDS):
    """PNG bytes: median latency against GMACs, one marker shape per model, one colour per
    backend, one panel per device (log-log axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = list(dict.fromkeys(r.device for r in results))
    figure, axes = plt.subplots(1, len(devices), figsize=(7 * len(devices), 5), squeeze=False)
    markers = "os^Dv<>pPX*h"
    names = list(dict.fromkeys(r.name for r in results))
    colours = dict(zip(backends, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for axis, device in zip(axes[0], devices):
        for r in (r for r in results if r.device == device):
            marker = markers[names.index(r.name) % len(markers)]
            for backend, timing in r.timings.items():
                axis.scatter(r.macs / 1e9, timing.median_ms, marker=marker, color=colours[backend], s=50)
            if r.timings:
                top = max(t.median_ms for t in r.timings.values())
                axis.annotate(r.name, (r.macs / 1e9, top), textcoords="offset points", xytext=(5, 5), fontsize=8)
        for backend in backends:
            if any(backend in r.timings for r in results if r.device == device):
                axis.scatter([], [], color=colours[backend], marker="o", label=BACKEND_TITLES[backend])
        axis.set_xscale("log")
        axis.set_yscale("log")
        _plain_log_ticks(axis.xaxis, [r.macs / 1e9 for r in results if r.device == device])
        _plain_log_ticks(axis.yaxis, [t.median_ms for r in results if r.device == device for t in r.timings.values()])
        axis.set_xlabel("GMACs")
        axis.set_ylabel("median latency (ms), batch 1")
        axis.set_title(f"latency vs MACs on {device}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    return buffer.getvalue()


def _plain_log_ticks(axis, values):
    """Ticks 1, 2, 5 x 10^k printed as plain numbers on a log axis."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    if not values:
        return
    low, high = min(values) / 1.5, max(values) * 1.5
    ticks = [m * 10 ** e for e in range(-2, 6) for m in (1, 2, 5) if low <= m * 10 ** e <= high]
    axis.set_ticks(ticks)
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def results_as_dict(results):
    """JSON-ready results (every sample kept, so other statistics can be computed later)."""
    return [dict(model=r.name, device=r.device, input_size=r.input_size, macs=r.macs, params=r.params,
                 notes=r.notes, end_to_end_stages_ms=r.stages_ms, timings_ms={b: dict(median=t.median_ms, p90=t.p90_ms,
                                                    samples=[s * 1000.0 for s in t.samples])
                                            for b, t in r.timings.items()})
            for r in results]


def main(argv=None):
    import datetime
    import json
    import platform
    import shlex
    import sys

    import onnxruntime
    import torch

    from litepose.utils.io import atomic_write_bytes, atomic_write_text, ensure_writable_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for benchmark.md/.png/.json")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help="zoo names (LitePose-XS/S/M/L, HigherHRNet-W24/W32/W48, EfficientHRNet-H-1, or short: "
                             "XS, W24, H-1) or CONFIG.yaml[:ARCH.json]")
    parser.add_argument("--dataset", choices=("crowd_pose", "coco"), default="crowd_pose",
                        help="joint count of the heads (14 or 17)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--device", default="all", help="all (CPU, and CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=THREADS, default=None, help="CPU threads for PyTorch and ONNX Runtime")
    parser.add_argument("--input-size", type=input_size, default=None, help="one square input size for every model")
    parser.add_argument("--repeats", type=int_range(1, 100_000), default=20, help="timed calls per model and backend")
    parser.add_argument("--warmup", type=int_range(0, 100_000), default=2, help="untimed rounds first")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parse_args(parser, argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")

    resolve_models(args.models)  # an unknown model is one line before the output folder is made
    ensure_writable_dir(args.output, "--output folder")
    settings = BenchmarkSettings(models=tuple(args.models), dataset=args.dataset, backends=tuple(args.backends),
                                 devices=available_devices(args.device), threads=args.threads,
                                 input_size=args.input_size, repeats=args.repeats, warmup=args.warmup,
                                 progress=not args.no_progress)
    load_before = os.getloadavg()[0]
    results = run_benchmark(settings)
    load_after = os.getloadavg()[0]

    command = "python -m benchmarks.benchmark " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
               f"{torch.get_num_threads()} PyTorch threads, torch {torch.__version__}, "
               f"onnxruntime {onnxruntime.__version__}"
               + (f", GPU {torch.cuda.get_device_name(0)}" if "cuda" in " ".join(settings.devices) else ""))
    header = (f"Command: `{command}`\n\nMachine: {machine}. Date: {datetime.date.today().isoformat()}. "
              f"{args.repeats} timed rounds after {args.warmup} warm-up rounds, models interleaved. "
              f"Load average {load_before:.1f} before, {load_after:.1f} after.\n\n")
    table = markdown_table(results)
    warnings = timing_warnings(results)
    written = header + table + ("\n" + "\n".join(f"- {line}" for line in warnings) + "\n" if warnings else "")
    atomic_write_text(os.path.join(args.output, "benchmark.md"), written)
    atomic_write_bytes(os.path.join(args.output, "benchmark.png"), plot_latency(results))
    atomic_write_text(os.path.join(args.output, "benchmark.json"),
                      json.dumps(dict(command=command, machine=machine, results=results_as_dict(results),
                                      warnings=warnings), indent=1))
    print(table)  # ends with the speed-ups of each LitePose over the reference baselines
    for line in warnings:
        print(line, file=sys.stderr)
    print(f"wrote {os.path.join(args.output, 'benchmark.md')}, benchmark.png, benchmark.json")
    return 0


if __name__ == "__main__":
    run_cli(main)
