#!/usr/bin/env python
"""GPU figures in one prepared run (issue 17): CUDA tests, training and loader throughput, latency.

    python -m benchmarks.device_check --output device_check.md [--force] [--time-budget 420]
    python -m benchmarks.device_check --dry-run --output /tmp/dry.md      # the same code paths on CPU, tiny sizes

One command for the ~15 minutes a GPU machine is lent, written to finish in under 8 minutes on
one GPU. In order:

1. tests: the tests marked ``cuda`` (``tests/test_cuda.py``), in a pytest subprocess.
2. training: images/s and peak GPU memory (torch.cuda.max_memory_allocated) of the project's real
   training step (``Trainer.train_step``: targets built on the device, forward, loss, backward,
   optimiser, loss scaling) on one batch of the synthetic dataset kept in host memory, for the
   supernet (experiments/coco/mobilenet/supermobile.yaml, one sampled sub-network per step at
   its own input size) and LitePose-XS/S/M/L (mobile.yaml + mobile_configs/search-*.json) at the
   configs' TRAIN.IMAGES_PER_GPU, with TRAIN.AMP off and on.
3. loader: images/s of the data pipeline (read, augment, targets on the device) with one loader
   worker per CPU core, at the paper's input sizes (256, 448, 512).
4. latency: batch-1 CUDA latency of LitePose-XS/S/M/L and the baselines (HigherHRNet-W24,
   EfficientHRNet-H-1) in PyTorch float32 and float16, and ONNX Runtime's CUDA and TensorRT
   execution providers when this ONNX Runtime has them (skipped with the reason otherwise).

The report (Markdown) is rewritten atomically after every step, so a run cut short still leaves
the figures measured so far; an existing file is only replaced with --force. Everything
intermediate (synthetic data unless --data-root, run folders, TensorRT engines) goes to a
temporary folder that is removed at the end. Exit status: 0 when every check passed, 1 when one
failed or was cut short by --time-budget (the report says which), 2 for bad input.

--dry-run runs the same code on the CPU at tiny sizes (input 64, batch 2, 2 steps, 2 models, one
CPU thread) in well under a minute; its report says "dry run on CPU: figures are not GPU figures".
"""

import argparse
import contextlib
import copy
import datetime
import gc
import importlib.util
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field

from benchmarks import benchmark, benchmark_train
from litepose.cli import input_size, int_range, number_range, parse_args, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/device_check.py
CUDA_TESTS = os.path.join("tests", "test_cuda.py")
CHECKS = ("tests", "training", "loader", "latency")
MOBILE = "experiments/coco/mobilenet/mobile.yaml"
SUPERMOBILE = "experiments/coco/mobilenet/supermobile.yaml"
TRAIN_MODELS = {  # name -> (config, architecture for --superconfig)
    "supernet": (SUPERMOBILE, None),
    **{name: (MOBILE, f"mobile_configs/search-{name}.json") for name in ("XS", "S", "M", "L")},
}
LATENCY_BACKENDS = ("float32", "float16", "onnxruntime", "tensorrt")
DRY_RUN_BANNER = "dry run on CPU: figures are not GPU figures"

# Values of the GPU run, and of --dry-run, for every option the dry run shrinks.
DEFAULTS = dict(train_models=["supernet", "XS", "S", "M", "L"], steps=20, warmup_steps=5, batch_size=None,
                input_size=None, loader_sizes=[256, 448, 512], loader_batches=40,
                latency_models=["XS", "S", "M", "L", "W24", "H-1"], repeats=50, latency_warmup=5,
                synthetic_images=640)
DRY_RUN = dict(train_models=["supernet", "XS"], steps=2, warmup_steps=1, batch_size=2, input_size=64,
               loader_sizes=[64], loader_batches=2, latency_models=["XS", "H-1"], repeats=2, latency_warmup=1,
               synthetic_images=8)


# ----------------------------------------------------------------------------- results

@dataclass
class Section:
    """One check of the report: its rows, notes, and the errors that make it fail."""

    name: str
    title: str
    status: str = "not run"  # not run | ok | failed | incomplete | skipped
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    left_out: list = field(default_factory=list)  # measurements skipped because --time-budget was spent
    seconds: float = 0.0

    def fail(self, what, exc):
        self.errors.append(f"{what}: {_one_line(exc)}")

    def leave_out(self, what, budget):
        self.left_out.append(what)
        self.notes.append(f"{what}: not measured, --time-budget {budget.seconds:.0f} s was spent")

    def finish(self, seconds):
        self.seconds = seconds
        self.status = ("failed" if self.errors else "incomplete" if self.left_out else
                       "ok" if self.rows else "skipped")

    @property
    def passed(self):
        return self.status in ("ok", "skipped")


def _one_line(exc):
    if isinstance(exc, str):
        return exc
    text = str(exc).strip()
    return f"{type(exc).__name__}: {(text.splitlines() or [''])[0][:300]}"


class CheckFailed(Exception):
    """A measurement that ran but did not give a valid figure."""


class Unavailable(Exception):
    """A backend this machine does not have (reported as skipped, with the reason)."""


@dataclass
class Plan:
    """Everything a run measures, from the command line (``build_plan``)."""

    device: object
    dry_run: bool
    checks: tuple
    train_models: list
    steps: int
    warmup_steps: int
    batch_size: object
    input_size: object
    loader_sizes: list
    loader_batches: int
    workers: int
    latency_models: list
    backends: tuple
    repeats: int
    latency_warmup: int
    latency_dataset: str
    synthetic_images: int
    data_root: object
    time_budget: float
    tests_timeout: float
    progress: bool


class Budget:
    """Wall-clock budget: steps that would start after it is spent are skipped with a reason."""

    def __init__(self, seconds):
        self.seconds, self.start = seconds, time.monotonic()

    @property
    def elapsed(self):
        return time.monotonic() - self.start

    def spent(self):
        return self.seconds > 0 and self.elapsed > self.seconds


# ----------------------------------------------------------------------------- helpers

def _repo_path(path):
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def _free_memory(device):
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _one_cpu_thread():
    """The dry run's compute on one thread (the Trainer leaves it alone when OMP_NUM_THREADS is
    set): on a small shared CPU, threads that wait for a busy core made it several times slower."""
    import torch

    saved_env, saved_threads = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved_env
        torch.set_num_threads(saved_threads)


def synthetic_opts(root):
    return ["DATASET.ROOT", str(root), "DATASET.SYNTHETIC", "True", "DATASET.TRAIN", "train", "DATASET.TEST", "val"]


def prepare_data(plan, workdir, show_progress):
    """The synthetic dataset's folder: ``--data-root`` (generated there if absent), else a small one
    generated in ``workdir``. Returns (root, note)."""
    from litepose.data.synthetic import ensure_synthetic_dataset, generate_synthetic_dataset

    if plan.data_root:
        generated = ensure_synthetic_dataset(plan.data_root, show_progress=show_progress)
        return plan.data_root, f"synthetic dataset {'generated in' if generated else 'reused from'} {plan.data_root}"
    root = os.path.join(workdir, "synthetic")
    generate_synthetic_dataset(root, {"train": plan.synthetic_images, "val": 2}, show_progress=show_progress)
    return root, f"synthetic dataset of {plan.synthetic_images} training images generated in a temporary folder"


# ----------------------------------------------------------------------------- 1. CUDA tests

def run_cuda_tests(plan, workdir, section):
    """The tests marked ``cuda`` in a pytest subprocess (a clean CUDA context; one of them starts
    torchrun); one row per test from pytest's JUnit XML. In a dry run CUDA is hidden from it."""
    junit = os.path.join(workdir, "cuda-tests.xml")
    command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", f"--junitxml={junit}",
               CUDA_TESTS]
    env = dict(os.environ)
    if plan.dry_run:
        env["CUDA_VISIBLE_DEVICES"] = ""
    section.notes.append(f"`python -m pytest -q -m cuda {CUDA_TESTS}`"
                         + (" with CUDA hidden (dry run)" if plan.dry_run else ""))
    try:
        process = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                 timeout=plan.tests_timeout)
    except subprocess.TimeoutExpired:
        section.fail("pytest", f"did not finish within {plan.tests_timeout:.0f} s")
        return
    if not os.path.isfile(junit):
        tail = (process.stdout + process.stderr).strip().splitlines()[-1:] or ["no output"]
        section.fail("pytest", f"exit status {process.returncode}, no report: {tail[0]}")
        return
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                detail = (child.get("message") or child.text or "").strip().splitlines()
                detail = detail[0][:200] if detail else ""
        row = dict(test=case.get("name"), outcome=outcome, seconds=float(case.get("time") or 0.0), detail=detail)
        section.rows.append(row)
        if outcome in ("failed", "error"):
            section.fail(row["test"], detail or outcome)
    if not section.rows:
        section.fail("pytest", f"no tests marked cuda were collected from {CUDA_TESTS} "
                               f"(exit status {process.returncode})")
    elif process.returncode not in (0, 1):
        section.fail("pytest", f"exit status {process.returncode}")


# ----------------------------------------------------------------------------- 2. training

def measure_training(plan, model_name, amp, data_root, workdir):
    """Images/s and peak memory of ``Trainer.train_step`` (the step ``dist_train.py`` runs) on one
    batch of the synthetic dataset, after ``plan.warmup_steps`` untimed steps
    (``benchmarks.benchmark_train.time_train_step``)."""
    cfg_path, arch = TRAIN_MODELS[model_name]
    opts = synthetic_opts(data_root) + ["TRAIN.AMP", str(amp), "DEVICE", str(plan.device)]
    if plan.batch_size:
        opts += ["TRAIN.IMAGES_PER_GPU", str(plan.batch_size)]
    if plan.input_size:
        opts += ["TRAIN.INPUT_SIZE", str(plan.input_size)]
    _free_memory(plan.device)
    with benchmark_train.benchmark_trainer(_repo_path(cfg_path), opts, _repo_path(arch) if arch else None,
                                           workdir) as trainer:
        row = benchmark_train.time_train_step(trainer, plan.steps, plan.warmup_steps)
    del trainer
    _free_memory(plan.device)
    return dict(model=model_name, **row)


def check_training(plan, data_root, workdir, section, progress, budget):
    for model_name in plan.train_models:
        for amp in (False, True):
            what = f"{model_name}, AMP {'on' if amp else 'off'}"
            progress.set_postfix_str(f"training {what}")
            if budget.spent():
                section.leave_out(what, budget)
            else:
                try:
                    section.rows.append(measure_training(plan, model_name, amp, data_root, workdir))
                except Exception as exc:  # one failed model (e.g. out of memory) does not stop the others
                    section.fail(what, exc)
            progress.update()
    section.notes.append("The step alone (`Trainer.train_step`, as `dist_train.py` runs it) on one batch kept in "
                         "host memory" + (" (pinned)" if plan.device.type == "cuda" else "")
                         + ": host-to-device copy, targets built on the device, forward, loss, backward, Adam, "
                         f"loss scaling; {plan.warmup_steps} untimed step(s) first. The supernet trains one sampled "
                         "sub-network per step (the release's rule), so its figure is a mean over sub-networks"
                         + ("; their layer shapes change from step to step, and with CUDNN.BENCHMARK True (the "
                            "config's) the first step of each new shape includes cuDNN's autotuning, which a long "
                            "run amortises: early in training this figure is a lower bound."
                            if plan.device.type == "cuda" else "."))


# ----------------------------------------------------------------------------- 3. loader

def check_loader(plan, data_root, section, progress, budget):
    from litepose.config import load_config

    measure_data_pipeline = benchmark_train.measure_data_pipeline
    opts = synthetic_opts(data_root) + ["DEVICE", str(plan.device)]
    if plan.batch_size:
        opts += ["TRAIN.IMAGES_PER_GPU", str(plan.batch_size)]
    cfg = load_config(_repo_path(MOBILE), opts)
    for size in plan.loader_sizes:
        progress.set_postfix_str(f"loader at {size}px")
        if budget.spent():
            section.leave_out(f"{size}px", budget)
        else:
            # Both placements of the targets: on the device (the trainer's on a GPU) and in the
            # loader workers on the CPU (its placement on a CPU, the release's everywhere).
            for in_workers in (False, True):
                try:
                    result = measure_data_pipeline(cfg, size, plan.device, plan.loader_batches, workers=plan.workers,
                                                   worker_targets=in_workers)
                    if not result["images_per_s"] > 0:
                        raise CheckFailed(f"measured {result['images_per_s']} images/s")
                    section.rows.append(dict(input=size, workers=result["workers"], batch=result["batch_size"],
                                             batches=plan.loader_batches, images_per_s=result["images_per_s"],
                                             targets=result["targets"]))
                except Exception as exc:
                    section.fail(f"{size}px" + (" (targets in workers)" if in_workers else ""), exc)
        progress.update()
    section.notes.append(f"`measure_data_pipeline` of benchmarks.benchmark_train: read, augment, warp and ignore masks "
                         f"in {plan.workers} loader worker(s) (one per CPU core), then targets on {plan.device} "
                         "or rendered by the workers on the CPU (column 'targets'); "
                         "2 untimed batches first.")


# ----------------------------------------------------------------------------- 4. latency

def _outputs(value):
    import torch

    if torch.is_tensor(value):
        return [value.detach().float().cpu()]
    if isinstance(value, (list, tuple)):
        return [o for v in value for o in _outputs(v)]
    return [torch.as_tensor(value).float()]


def _relative_diff(reference, outputs):
    """Largest |output - reference| over all outputs, relative to the largest |reference|."""
    diff = max(float((o - r).abs().max()) for r, o in zip(reference, outputs))
    scale = max(float(r.abs().max()) for r in reference)
    return diff / max(scale, 1e-12)


def _iobinding_runner(session, x, device_index):
    """One ONNX Runtime call with input and outputs on the GPU (no host copies), and a
    function returning the last outputs."""
    import onnxruntime as ort

    binding = session.io_binding()
    value = ort.OrtValue.ortvalue_from_numpy(x.detach().cpu().numpy(), "cuda", device_index)
    binding.bind_ortvalue_input(session.get_inputs()[0].name, value)
    for output in session.get_outputs():
        binding.bind_output(output.name, "cuda", device_index)

    def run():
        session.run_with_iobinding(binding)

    return run, binding.copy_outputs_to_cpu


def latency_runner(backend, model, onnx_bytes, x, plan, workdir):
    """``(runner, outputs)`` for one backend: ``runner()`` runs batch 1 to completion,
    ``outputs()`` gives what the last call returned. Raises ``Unavailable`` with the reason when
    the backend does not exist here."""
    from litepose.deploy import onnx_runner, torch_runner

    device = plan.device
    if backend in ("float32", "float16"):
        net, inputs = (model, x) if backend == "float32" else (copy.deepcopy(model).half(), x.half())
        run = torch_runner(net, inputs)
        last = []

        def keep():
            last[:] = [run()]

        return keep, lambda: last[0]
    import onnxruntime as ort

    from litepose.runtime.onnx_backend import onnx_session as _onnx_session  # the one place sessions are built

    available = ort.get_available_providers()
    if backend == "onnxruntime":
        if device.type != "cuda":  # the dry run's stand-in: the same export and session on the CPU
            session = _onnx_session(onnx_bytes, providers=["CPUExecutionProvider"])
            run = onnx_runner(session, x)
            last = []

            def keep():
                last[:] = [run()]

            return keep, lambda: last[0]
        if "CUDAExecutionProvider" not in available:
            raise Unavailable(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider "
                              "(pip install onnxruntime-gpu)")
        session = _onnx_session(onnx_bytes, providers=[("CUDAExecutionProvider", {"device_id": device.index or 0})])
        if session.get_providers()[0] != "CUDAExecutionProvider":
            raise Unavailable(f"the CUDA execution provider did not load (session runs on {session.get_providers()})")
        return _iobinding_runner(session, x, device.index or 0)
    if backend == "tensorrt":
        if device.type != "cuda":
            raise Unavailable("TensorRT needs a CUDA device")
        if "TensorrtExecutionProvider" not in available:
            raise Unavailable(f"onnxruntime {ort.__version__} has no TensorrtExecutionProvider "
                              "(needs onnxruntime-gpu built with TensorRT, and TensorRT's libraries)")
        cache = os.path.join(workdir, "tensorrt")
        os.makedirs(cache, exist_ok=True)
        options = {"device_id": device.index or 0, "trt_fp16_enable": True, "trt_engine_cache_enable": True,
                   "trt_engine_cache_path": cache}
        session = _onnx_session(onnx_bytes, providers=[("TensorrtExecutionProvider", options),
                                             ("CUDAExecutionProvider", {"device_id": device.index or 0})])
        if session.get_providers()[0] != "TensorrtExecutionProvider":
            raise Unavailable("the TensorRT execution provider did not load "
                              f"(session runs on {session.get_providers()})")
        return _iobinding_runner(session, x, device.index or 0)
    raise ValueError(f"unknown backend {backend!r}")


def prepare_latency_model(name, plan, workdir, budget):
    """A zoo model (as benchmarks.benchmark builds it: random weights with trained-like statistics)
    on the device, with a runner per backend (called once: warm-up, outputs checked against
    float32); the backends that are not available here, that failed, or that the time budget left
    out, each with the reason."""
    import torch

    from litepose.deploy import example_input, export_onnx, fuse_bn

    entry = benchmark.resolve_models([name])[0]
    _, model, size = benchmark.build_zoo_model(entry, plan.latency_dataset, plan.input_size)
    model = model.to(plan.device).eval()
    x = example_input(size, device=plan.device)
    onnx_bytes = None
    runners, diffs, skipped, errors, left_out = {}, {}, {}, {}, []
    reference = None
    for backend in plan.backends:
        if budget.spent():  # a TensorRT engine build can take minutes: do not start one late
            left_out.append(backend)
            continue
        try:
            if backend in ("onnxruntime", "tensorrt") and onnx_bytes is None:
                if importlib.util.find_spec("onnxruntime") is None:
                    raise Unavailable("onnxruntime is not installed")
                onnx_bytes = export_onnx(fuse_bn(model).cpu(), size)  # BN folded, as tools/export.py exports
                model.to(plan.device)
            run, outputs = latency_runner(backend, model, onnx_bytes, x, plan, workdir)
            run()  # the first call: cuDNN autotuning, ONNX Runtime's allocations, TensorRT's engine build
            result = _outputs(outputs())
            if not all(bool(torch.isfinite(o).all()) for o in result):
                raise CheckFailed("non-finite outputs")
            if backend == "float32":
                reference = result
            diffs[backend] = _relative_diff(reference, result) if reference is not None else None
            runners[backend] = run
        except Unavailable as exc:
            skipped[backend] = str(exc)
        except Exception as exc:
            errors[backend] = str(exc) if isinstance(exc, CheckFailed) else _one_line(exc)
    return dict(model=entry.name, input=size, runners=runners, diffs=diffs, skipped=skipped, errors=errors,
                left_out=left_out)


def check_latency(plan, workdir, section, progress, budget):
    import torch

    from litepose.deploy import time_interleaved

    if plan.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as benchmarks.benchmark; TF32 stays at PyTorch's default
    prepared = []
    for name in (entry.name for entry in benchmark.resolve_models(plan.latency_models)):
        progress.set_postfix_str(f"latency: preparing {name}")
        if budget.spent():
            section.leave_out(name, budget)
        else:
            try:
                prepared.append(prepare_latency_model(name, plan, workdir, budget))
                for backend in prepared[-1]["left_out"]:
                    section.leave_out(f"{name}, {backend_title(backend, plan)}", budget)
            except Exception as exc:
                section.fail(name, exc)
        progress.update()
    progress.set_postfix_str("latency: timing")
    runners = {(p["model"], b): run for p in prepared for b, run in p["runners"].items()}
    timings = {}
    if runners:
        try:
            timings = time_interleaved(runners, plan.repeats, plan.latency_warmup, progress=plan.progress,
                                       description="latency rounds")
        except Exception as exc:
            section.fail("timing", exc)
    progress.update()
    skip_notes = {}
    for p in prepared:
        row = dict(model=p["model"], input=p["input"], ms={}, diffs=p["diffs"])
        for backend in plan.backends:
            timing = timings.get((p["model"], backend))
            if timing is not None:
                if not timing.median_ms > 0:
                    section.fail(f"{p['model']} {backend}", f"median {timing.median_ms} ms")
                row["ms"][backend] = (timing.median_ms, timing.p90_ms)
            elif backend in p["errors"]:
                section.fail(f"{p['model']} {backend}", p["errors"][backend])
            elif backend in p["skipped"]:
                skip_notes.setdefault(f"{backend_title(backend, plan)} skipped: {p['skipped'][backend]}",
                                      []).append(p["model"])
        section.rows.append(row)
    for note, models in skip_notes.items():
        section.notes.append(f"{note} ({', '.join(models)})")
    section.notes.append(f"Batch 1, median / p90 ms over {plan.repeats} rounds after {plan.latency_warmup} warm-up "
                         "rounds, every model and backend once per round (`litepose.deploy.time_interleaved`). "
                         "Random weights with trained-like statistics (`realistic_weights_`, as benchmarks.benchmark). "
                         + ("PyTorch eager with cuDNN autotuning (TF32 as PyTorch's default); ONNX Runtime runs the "
                            "BN-folded export with input and outputs bound on the GPU; TensorRT may use float16. "
                            if plan.device.type == "cuda" else
                            "PyTorch eager; ONNX Runtime runs the BN-folded export on the CPU in place of the GPU. ")
                         + "Agreement: largest |output - float32| relative to the largest |float32 output|.")


def backend_title(backend, plan):
    cuda = plan.device.type == "cuda"
    return {"float32": "PyTorch float32", "float16": "PyTorch float16",
            "onnxruntime": "ONNX Runtime CUDA EP" if cuda else "ONNX Runtime CPU EP (dry-run stand-in)",
            "tensorrt": "ONNX Runtime TensorRT EP"}[backend]


# ----------------------------------------------------------------------------- report

def _fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def machine_description(plan):
    import torch

    parts = [f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores "
             f"({plan.workers} usable by this process)", f"Python {platform.python_version()}",
             f"torch {torch.__version__}"]
    if plan.device.type == "cuda":
        props = torch.cuda.get_device_properties(plan.device)
        parts.insert(0, f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB, compute capability "
                        f"{props.major}.{props.minor}), CUDA {torch.version.cuda}, "
                        f"cuDNN {torch.backends.cudnn.version()}")
    try:
        import onnxruntime as ort

        parts.append(f"onnxruntime {ort.__version__} ({', '.join(ort.get_available_providers())})")
    except ImportError:
        parts.append("onnxruntime not installed")
    return "; ".join(parts)


def render_report(plan, sections, meta, finished):
    lines = ["# LitePose device check (issue 17)", ""]
    if plan.dry_run:
        lines += [f"**{DRY_RUN_BANNER}.**", ""]
    if not finished:
        lines += ["**Incomplete: the run has not finished (or was stopped); figures so far.**", ""]
    lines += [f"Command: `{meta['command']}`", "", f"Machine: {meta['machine']}.", "",
              f"Date: {meta['date']}. Device: {plan.device}. Elapsed: {meta['elapsed']:.0f} s. {meta['data']}.", ""]
    lines += ["## Summary", "", "| check | status | seconds | errors | not measured (time budget) |",
              "|---|---|---|---|---|"]
    for s in sections:
        lines.append(f"| {s.title} | {s.status} | {s.seconds:.0f} | {len(s.errors)} | {len(s.left_out)} |")
    lines += ["", f"Result: {verdict(sections) if finished else 'in progress'}.", ""]
    for s in sections:
        if s.status == "not run":
            continue
        lines += [f"## {s.title}", ""]
        lines += globals()[f"_table_{s.name}"](s, plan)
        if s.notes:
            lines += [""] + [f"- {note}" for note in s.notes]
        if s.errors:
            lines += ["", "Errors:", ""] + [f"- {error}" for error in s.errors]
        lines.append("")
    return "\n".join(lines)


def verdict(sections):
    """One line: every check passed, or which did not and why."""
    bad = [f"{s.title} {s.status}" for s in sections if not s.passed]
    return "FAILED: " + ", ".join(bad) if bad else "all checks passed"


def _table_tests(section, plan):
    lines = ["| test | outcome | seconds | detail |", "|---|---|---|---|"]
    for r in section.rows:
        lines.append(f"| {r['test']} | {r['outcome']} | {r['seconds']:.1f} | {r['detail'].replace('|', '/')} |")
    counts = {}
    for r in section.rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return lines + ["", "Outcomes: " + (", ".join(f"{n} {k}" for k, n in counts.items()) or "none") + "."]


def _table_training(section, plan):
    lines = ["| model | input | batch | AMP | steps | images/s | ms/step | peak memory (MiB) | loss | loss scale |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in section.rows:
        scale = "n/a" if r["loss_scale"] is None else f"{r['loss_scale']:g}"
        lines.append(f"| {r['model']} | {r['input']} | {r['batch']} | {r['amp']} | {r['steps']} | "
                     f"{r['images_per_s']:.1f} | {r['ms_per_step']:.1f} | {_fmt(r['peak_mib'], 0)} | "
                     f"{r['loss']:.4g} | {scale} |")
    return lines


def _table_loader(section, plan):
    lines = ["| input | workers | targets | batch | batches timed | images/s |", "|---|---|---|---|---|---|"]
    for r in section.rows:
        lines.append(f"| {r['input']} | {r['workers']} | {r['targets']} | {r['batch']} | {r['batches']} "
                     f"| {r['images_per_s']:.1f} |")
    return lines


def _table_latency(section, plan):
    titles = [backend_title(b, plan) for b in plan.backends]
    lines = ["Latency (ms, median / p90):", "", "| model | input | " + " | ".join(titles) + " |",
             "|---|---|" + "---|" * len(titles)]
    for r in section.rows:
        cells = [f"{r['ms'][b][0]:.2f} / {r['ms'][b][1]:.2f}" if b in r["ms"] else "n/a" for b in plan.backends]
        lines.append(f"| {r['model']} | {r['input']} | " + " | ".join(cells) + " |")
    others = [b for b in plan.backends if b != "float32"]
    if others:
        lines += ["", "Agreement with PyTorch float32 (relative largest difference):", "",
                  "| model | " + " | ".join(backend_title(b, plan) for b in others) + " |",
                  "|---|" + "---|" * len(others)]
        for r in section.rows:
            cells = [f"{r['diffs'][b]:.1e}" if r["diffs"].get(b) is not None else "n/a" for b in others]
            lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return lines


# ----------------------------------------------------------------------------- running

class _Progress:
    """One tqdm bar over every step of the run."""

    def __init__(self, total, enabled):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="device check", unit="step", disable=not enabled, file=sys.stdout,
                        dynamic_ncols=True)

    def set_postfix_str(self, text):
        self.bar.set_postfix_str(text, refresh=True)

    def update(self, n=1):
        self.bar.update(n)

    def close(self):
        self.bar.close()


def run_checks(plan, output, command):
    """Run the plan's checks, rewriting the report at ``output`` after each; returns the sections."""
    from litepose.utils.io import atomic_write_text

    budget = Budget(plan.time_budget)
    titles = dict(tests="CUDA tests", training="Training throughput", loader="Data loader throughput",
                  latency="Inference latency")
    sections = [Section(name, titles[name]) for name in plan.checks]
    meta = dict(command=command, machine=machine_description(plan), date=datetime.date.today().isoformat(),
                elapsed=0.0, data="Data: not prepared yet")
    total = (("tests" in plan.checks) + ("training" in plan.checks) * 2 * len(plan.train_models)
             + ("loader" in plan.checks) * len(plan.loader_sizes)
             + ("latency" in plan.checks) * (len(plan.latency_models) + 1))
    progress = _Progress(total, plan.progress)

    def write(finished=False):
        meta["elapsed"] = budget.elapsed
        atomic_write_text(output, render_report(plan, sections, meta, finished))

    write()
    try:
        with contextlib.ExitStack() as stack:
            if plan.dry_run:
                stack.enter_context(_one_cpu_thread())
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="litepose-device-check-"))
            data_root = None
            for section in sections:
                start = time.monotonic()
                try:
                    if section.name == "tests":
                        progress.set_postfix_str("CUDA tests (pytest)")
                        run_cuda_tests(plan, workdir, section)
                        progress.update()
                    elif section.name in ("training", "loader") and data_root is None:
                        progress.set_postfix_str("synthetic dataset")
                        data_root, meta["data"] = prepare_data(plan, workdir, plan.progress)
                    if section.name == "training":
                        check_training(plan, data_root, workdir, section, progress, budget)
                    elif section.name == "loader":
                        check_loader(plan, data_root, section, progress, budget)
                    elif section.name == "latency":
                        check_latency(plan, workdir, section, progress, budget)
                except Exception as exc:  # a check that breaks as a whole fails; the others still run
                    section.fail("check", exc)
                    section.notes.append("traceback: " + " | ".join(
                        line.strip() for line in traceback.format_exc().strip().splitlines()[-4:]))
                section.finish(time.monotonic() - start)
                write()
        write(finished=True)
    finally:
        progress.close()
    return sections


def build_parser():
    def shrunk(key, text, default=None):
        value = DEFAULTS[key] if default is None else default
        value = " ".join(map(str, value)) if isinstance(value, list) else value
        dry = DRY_RUN[key]
        dry = " ".join(map(str, dry)) if isinstance(dry, list) else dry
        return f"{text} (default: {value}; with --dry-run: {dry})"

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, metavar="PATH", help="the Markdown report to write (required)")
    parser.add_argument("--force", action="store_true", help="replace an existing report (default: refuse)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the same code paths on the CPU at tiny sizes, to check the tool (default: off)")
    parser.add_argument("--checks", nargs="+", choices=CHECKS, default=list(CHECKS),
                        help=f"which checks to run (default: {' '.join(CHECKS)})")
    parser.add_argument("--device", default="cuda", metavar="DEVICE",
                        help="the GPU to measure (default: cuda; cpu with --dry-run)")
    parser.add_argument("--data-root", metavar="DIR", default=None,
                        help="synthetic dataset to use (generated there if absent) (default: a small one generated "
                             "in a temporary folder)")
    parser.add_argument("--synthetic-images", type=int_range(1, 1_000_000), default=None, metavar="N",
                        help=shrunk("synthetic_images", "training images generated when --data-root is not given"))
    parser.add_argument("--train-models", nargs="+", choices=list(TRAIN_MODELS), default=None,
                        help=shrunk("train_models", "models whose training step is timed"))
    parser.add_argument("--steps", type=int_range(1, 100_000), default=None, metavar="N",
                        help=shrunk("steps", "timed training steps per model"))
    parser.add_argument("--warmup-steps", type=int_range(0, 100_000), default=None, metavar="N",
                        help=shrunk("warmup_steps", "untimed training steps first"))
    parser.add_argument("--batch-size", type=int_range(1, 4096), default=None, metavar="N",
                        help=shrunk("batch_size", "images per training step and loader batch",
                                     default="the configs' TRAIN.IMAGES_PER_GPU, 16"))
    parser.add_argument("--input-size", type=input_size, default=None, metavar="PX",
                        help=shrunk("input_size", "one input size for training and latency",
                                     default="each architecture's img_size, the baselines' DATASET.INPUT_SIZE"))
    parser.add_argument("--loader-sizes", nargs="+", type=input_size, default=None, metavar="PX",
                        help=shrunk("loader_sizes", "input sizes of the loader measurement"))
    parser.add_argument("--loader-batches", type=int_range(1, 100_000), default=None, metavar="N",
                        help=shrunk("loader_batches", "loader batches timed per size"))
    parser.add_argument("--workers", type=int_range(0, 1024), default=None, metavar="N",
                        help="loader workers (default: the CPU cores this process may use)")
    parser.add_argument("--latency-models", nargs="+", default=None, metavar="NAME",
                        help=shrunk("latency_models", "models timed (names of benchmarks.benchmark)"))
    parser.add_argument("--backends", nargs="+", choices=LATENCY_BACKENDS, default=list(LATENCY_BACKENDS),
                        help=f"latency backends (default: {' '.join(LATENCY_BACKENDS)})")
    parser.add_argument("--repeats", type=int_range(1, 100_000), default=None, metavar="N",
                        help=shrunk("repeats", "timed latency rounds"))
    parser.add_argument("--latency-warmup", type=int_range(0, 100_000), default=None, metavar="N",
                        help=shrunk("latency_warmup", "untimed latency rounds first"))
    parser.add_argument("--latency-dataset", choices=("crowd_pose", "coco"), default="crowd_pose",
                        help="joint count of the timed heads, 14 or 17 (default: crowd_pose, as benchmarks.benchmark)")
    parser.add_argument("--time-budget", type=number_range(above=0, high=86_400), metavar="S", default=420.0,
                        help="seconds after which the remaining measurements are skipped, 0 for none (default: 420)")
    parser.add_argument("--tests-timeout", type=number_range(above=0, high=86_400), metavar="S", default=300.0,
                        help="seconds the CUDA tests may take (default: 300)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    return parser


def build_plan(args, parser):
    """A ``Plan`` from parsed arguments; input errors become ``parser.error`` or ``ConfigError``."""
    from litepose.data.build import available_cores
    from litepose.errors import ConfigError
    from litepose.utils.device import resolve_device

    values = {}
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        values[key] = given if given is not None else (DRY_RUN if args.dry_run else DEFAULTS)[key]
    for key in ("steps", "loader_batches", "repeats", "synthetic_images"):
        if values[key] < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1, got {values[key]}")
    for key in ("warmup_steps", "latency_warmup"):
        if values[key] < 0:
            parser.error(f"--{key.replace('_', '-')} must be >= 0, got {values[key]}")
    if values["batch_size"] is not None and values["batch_size"] < 1:
        parser.error(f"--batch-size must be at least 1, got {values['batch_size']}")
    for size in ([values["input_size"]] if values["input_size"] else []) + list(values["loader_sizes"]):
        if size <= 0 or size % 32:
            parser.error(f"input sizes must be positive multiples of 32, got {size}")
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    benchmark.resolve_models(values["latency_models"])  # an unknown name: one line now, not after minutes
    if args.data_root is not None and os.path.exists(args.data_root) and not os.path.isdir(args.data_root):
        raise ConfigError(f"--data-root is not a folder: {args.data_root}")
    if args.dry_run:
        if args.device not in ("cuda", "cpu"):
            raise ConfigError(f"--dry-run runs on the CPU; drop --device {args.device}")
        device = resolve_device("cpu")
    else:
        import torch

        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("no CUDA GPU here: this check measures a GPU (--dry-run checks the tool on the CPU)")
        device = resolve_device(args.device)
        if device.type != "cuda":
            raise ConfigError(f"--device must be a CUDA device, got {args.device} (--dry-run for the CPU)")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return Plan(device=device, dry_run=args.dry_run, checks=tuple(c for c in CHECKS if c in args.checks),
                workers=available_cores() if args.workers is None else args.workers,
                backends=tuple(b for b in LATENCY_BACKENDS if b in args.backends),
                latency_dataset=args.latency_dataset, data_root=args.data_root, time_budget=args.time_budget,
                tests_timeout=args.tests_timeout, progress=not args.no_progress, **values)


def main(argv=None):
    from litepose.utils.io import check_output_file

    parser = build_parser()
    args = parse_args(parser, argv)
    check_output_file(args.output, args.force, "--output")
    plan = build_plan(args, parser)
    command = "python -m benchmarks.device_check " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    sections = run_checks(plan, args.output, command)
    print(f"wrote {args.output}: {verdict(sections)}" + (f" ({DRY_RUN_BANNER})" if plan.dry_run else ""))
    return 0 if all(s.passed for s in sections) else 1


if __name__ == "__main__":
    run_cli(main)
