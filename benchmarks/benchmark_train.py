#!/usr/bin/env python
"""Training throughput: images/s of the data pipeline alone and of the training step alone.

    python -m benchmarks.benchmark_train [--archs XS S] [--batches 20] [--steps 10] [--amp] [KEY VALUE ...]
    python -m benchmarks.benchmark_train --cfg CFG.yaml [--superconfig ARCH.json] [...]
    python -m benchmarks.benchmark_train --fault-overhead [--archs XS] [--batch-size 8] [--repeats 6] [--steps 3]

The data pipeline (read, augment, warp, ignore masks, then targets on the device) runs with the
config's WORKERS (at most the CPU cores); the step is ``Trainer.train_step``, the one
``dist_train.py`` runs (targets built on the device, forward, loss, backward, optimiser, loss
scaling), repeated on one batch kept in host memory after --warmup-steps untimed steps. When the
step is faster than the pipeline, data loading starves the network.

Without --cfg: experiments/coco/mobilenet/mobile.yaml on the embedded synthetic dataset
(generated under DATASET.ROOT if absent), one row per --archs (default XS S). With --cfg: the
model that config trains with ``dist_train.py --cfg CFG.yaml [--superconfig ARCH.json]``
(MODEL.ARCH, the supernet sampling one sub-network per step, or a baseline), or one row per
--archs. Inputs at the Trainer's size (the architecture's img_size unless TRAIN.INPUT_SIZE).

--fault-overhead: what the step pays for its fault handling (``litepose/train/faults.py``:
saving BatchNorm's statistics and the sampler's state, the finiteness check, the processes'
agreement), as the step with it against the step without it, interleaved (--repeats rounds of
--steps steps each way, the order alternating), and as the time of those calls on their own.

From Python (``from benchmarks import benchmark_train``, as ``benchmarks.device_check`` does):
``measure_data_pipeline``, ``benchmark_trainer``, ``time_train_step`` and ``measure_fault_overhead``.
"""

import contextlib
import logging
import os
import tempfile
import time

from litepose.cli import config_parser, int_range, load_cli_config, parse_args, run_cli

DEFAULT_CFG = "experiments/coco/mobilenet/mobile.yaml"
SYNTHETIC = ["DATASET.ROOT", "data/synthetic", "DATASET.SYNTHETIC", "True", "DATASET.TRAIN", "train",
             "DATASET.TEST", "val"]


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_data_pipeline(cfg, input_size, device, batches=20, batch_size=None, workers=None, warmup=2,
                          progress=False, worker_targets=False):
    """Images/s of loading, augmenting and preparing batches (targets built on ``device``, or on
    the CPU by the loader workers with ``worker_targets``), with ``workers`` loader processes
    (default: ``WORKERS``, at most the cores). Returns a dict."""
    from tqdm import tqdm

    from litepose.data.build import build_dataset, build_loader, default_workers, ensure_dataset, iterate_loader, \
        set_loader_epoch, single_opencv_thread
    from litepose.data.targets import TargetConfig, prepare_batch

    ensure_dataset(cfg, show_progress=False)
    workers = default_workers(cfg) if workers is None else workers
    if workers > 0:
        single_opencv_thread()  # the forked workers are the parallelism (what dist_train.py sets)
    batch_size = batch_size or cfg.TRAIN.IMAGES_PER_GPU
    dataset = build_dataset(cfg, input_size, "train", augment=True)
    sigma = TargetConfig.from_config(cfg)
    loader = build_loader(dataset, batch_size, workers, shuffle=True, seed=cfg.TRAIN.SEED,
                          pin_memory=device.type == "cuda", worker_targets=sigma if worker_targets else None)
    images, start, epoch = 0, None, 0
    bar = tqdm(total=warmup + batches, desc=f"data pipeline at {input_size}px", unit="batch", leave=False,
               disable=not progress)
    with bar:
        while True:
            set_loader_epoch(loader, epoch)
            for raw in iterate_loader(loader):
                prepare_batch(raw, sigma, input_size, device)
                _sync(device)
                bar.update()
                if warmup > 0:
                    warmup -= 1
                    if warmup == 0:
                        start = time.perf_counter()
                    continue
                images += raw["images"].shape[0]
                batches -= 1
                if batches == 0:
                    elapsed = time.perf_counter() - start
                    return {"images_per_s": images / elapsed, "workers": workers, "batch_size": batch_size,
                            "input_size": input_size, "targets": "workers" if worker_targets else str(device)}
            epoch += 1


@contextlib.contextmanager
def _quiet_training_logs():
    """The Trainer's INFO lines (output folder, model, data) are noise here; warnings still show."""
    from litepose.train.run_log import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    keep = logging.Filter()
    keep.filter = lambda record: record.levelno >= logging.WARNING
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


@contextlib.contextmanager
def benchmark_trainer(cfg_path, opts=(), superconfig=None, workdir=None):
    """The ``Trainer`` that ``dist_train.py --cfg cfg_path [--superconfig ...] opts`` builds, for
    timing its step: its outputs go to a temporary folder (inside ``workdir`` if given), with no
    resume, no validation and no loader workers (the step is timed on one batch), and its INFO
    logs are quiet. The process is configured as ``dist_train.py`` configures it (cuDNN switches,
    CPU threads: ``configure_process``). Closed on exit (TensorBoard writer, log file, output
    folder lock)."""
    from litepose.config import load_config
    from litepose.train import Trainer
    from litepose.train.distributed import DistContext
    from litepose.train.process import configure_process
    from litepose.utils.device import resolve_device

    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="litepose-benchmark-train-", dir=workdir))
        cfg = load_config(cfg_path, list(opts) + [
            "OUTPUT_DIR", os.path.join(folder, "output"), "LOG_DIR", os.path.join(folder, "log"),
            "AUTO_RESUME", "False", "TRAIN.VAL_FREQ", "0", "WORKERS", "0"])
        device = resolve_device(cfg.DEVICE)
        configure_process(cfg, device.type)
        stack.enter_context(_quiet_training_logs())
        trainer = Trainer(cfg, DistContext(device=device), cfg_path=cfg_path, superconfig=superconfig,
                          show_progress=False)
        try:
            yield trainer
        finally:
            if trainer.writer is not None:
                trainer.writer.close()
            for handler in list(trainer.logger.handlers):
                if isinstance(handler, logging.FileHandler):  # its file is in the folder about to go
                    trainer.logger.removeHandler(handler)
                    handler.close()
            trainer.close()


def time_train_step(trainer, steps=10, warmup=2, progress=False):
    """Images/s and peak CUDA memory of ``trainer.train_step`` on the first batch of its training
    loader, kept in host memory and given to every step, after ``warmup`` untimed steps. Raises
    ``LitePoseError`` when a step halts (a loss that is not finite). Returns a dict."""
    import torch
    from tqdm import tqdm

    from litepose.data.build import iterate_loader, set_loader_epoch
    from litepose.errors import LitePoseError

    device = trainer.device
    set_loader_epoch(trainer.train_loader, 0)
    raw = next(iterate_loader(trainer.train_loader))
    batch = raw["images"].shape[0]
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start, loss = None, None
    for step in tqdm(range(warmup + steps), desc="training steps", unit="step", leave=False, disable=not progress):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        loss, _, applied = trainer.train_step(dict(raw))  # train_step pops the batch's "skipped"
        if not applied:
            raise LitePoseError(f"the training step halted ({trainer.halt}) at step {step + 1}, loss {float(loss):.4g}")
    _sync(device)
    elapsed = time.perf_counter() - start
    if trainer.is_supernet and trainer.arch is None and not trainer.cfg.TRAIN.INPUT_SIZE:
        sizes = sorted(trainer.sampler.space.img_sizes)
        size = f"{sizes[0]}-{sizes[-1]} (sampled)"
    else:
        size = str(trainer.input_size(trainer.arch))
    return dict(input=size, batch=batch, amp=(("float16" if cuda else "bfloat16") if trainer.amp else "off"),
                steps=steps, images_per_s=steps * batch / elapsed, ms_per_step=1000.0 * elapsed / steps,
                peak_mib=torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None, loss=float(loss),
                loss_scale=trainer.scaler.get_scale() if trainer.scaler.is_enabled() else None)


def _no_fault_handling(guard):
    """``guard`` (a ``StepGuard``) doing nothing: no state saved, never a halt."""
    from litepose.train.faults import StepGuard

    class Unguarded(StepGuard):
        def begin(self):
            pass

        def verdict(self, loss, stop_requested, too_many_unreadable):
            return None

    return Unguarded(guard.model, guard.ctx, guard.sampler)


def measure_fault_overhead(trainer, repeats=6, steps=3, warmup=2, calls=200, progress=False):
    """The training step of ``trainer`` with its fault handling and without it, on the first
    batch of its loader kept in host memory: ``repeats`` rounds of ``steps`` timed steps each way,
    and a third way, a control, without it again (its ratio to "without" is the noise floor:
    anything within it is not a difference this machine can show). The order rotates between
    rounds (a noisy machine drifts; each round's ratio compares neighbours), after ``warmup``
    untimed steps each way. Each is timed on the wall clock and in this process's CPU time. Then
    the fault handling's own calls (``begin`` and ``verdict`` of the ``StepGuard``) are timed
    ``calls`` times on their own. Returns a dict: per round the ms per step each way (wall, CPU),
    the median ratios, the calls' ms per step."""
    import statistics

    from tqdm import tqdm

    from litepose.data.build import iterate_loader, set_loader_epoch
    from litepose.errors import LitePoseError

    device = trainer.device
    set_loader_epoch(trainer.train_loader, 0)
    raw = next(iterate_loader(trainer.train_loader))
    guarded = trainer.guard
    guards = {"on": guarded, "off": _no_fault_handling(guarded), "control": _no_fault_handling(guarded)}

    def run(guard, count):
        trainer.guard = guard
        try:
            _sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(count):
                loss, _, applied = trainer.train_step(dict(raw))
                if not applied:
                    raise LitePoseError(f"the training step halted ({trainer.halt}), loss {float(loss):.4g}")
                bar.update()
            _sync(device)
            return 1000.0 * (time.perf_counter() - wall) / count, 1000.0 * (time.process_time() - cpu) / count
        finally:
            trainer.guard = guarded

    timed = {key: [] for key in guards}  # (wall ms, CPU ms) per round
    keys = list(guards)
    with tqdm(total=len(guards) * (warmup + repeats * steps), desc="steps with and without fault handling",
              unit="step", leave=False, disable=not progress) as bar:
        if warmup:
            for guard in guards.values():
                run(guard, warmup)
        for round_ in range(repeats):
            for key in keys[round_ % len(keys):] + keys[:round_ % len(keys)]:
                timed[key].append(run(guards[key], steps))

    # The calls alone, on its real buffers and a loss like the step's (a scalar, what verdict checks).
    loss = trainer.train_step(dict(raw))[0]
    _sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        guarded.begin()
    _sync(device)
    begin_ms = 1000.0 * (time.perf_counter() - start) / calls
    start = time.perf_counter()
    for _ in range(calls):
        guarded.verdict(loss, False, False)
    _sync(device)
    verdict_ms = 1000.0 * (time.perf_counter() - start) / calls
    ratios = {}
    for key in ("on", "control"):
        for clock, index in (("wall", 0), ("cpu", 1)):
            ratios[f"{key}_{clock}"] = [a[index] / b[index] for a, b in zip(timed[key], timed["off"])]
    step_ms = statistics.median(b[0] for b in timed["off"])
    return dict(batch=raw["images"].shape[0], input=trainer.input_size(trainer.arch), on=timed["on"],
                off=timed["off"], control=timed["control"], ratios=ratios,
                median_ratios={key: statistics.median(values) for key, values in ratios.items()},
                step_ms=step_ms, begin_ms=begin_ms,
                verdict_ms=verdict_ms, calls_percent=100.0 * (begin_ms + verdict_ms) / step_ms,
                buffers=sum(1 for _ in trainer.model.buffers()),
                buffer_mib=sum(b.numel() * b.element_size() for b in trainer.model.buffers()) / 2**20,
                processes=trainer.ctx.world_size)


def _print_fault_overhead(name, row):
    print(f"{name}: input {row['input']}, batch {row['batch']}, {row['processes']} process(es); "
          f"{row['buffers']} buffers ({row['buffer_mib']:.3f} MiB) saved per step")
    print("| round | with fault handling (wall / CPU ms per step) | without | control: without again | "
          "ratio with / without (wall, CPU) | ratio control / without (wall, CPU) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for index, (on, off, control) in enumerate(zip(row["on"], row["off"], row["control"]), start=1):
        print(f"| {index} | {on[0]:.1f} / {on[1]:.1f} | {off[0]:.1f} / {off[1]:.1f} | {control[0]:.1f} / "
              f"{control[1]:.1f} | {on[0] / off[0]:.4f}, {on[1] / off[1]:.4f} | {control[0] / off[0]:.4f}, "
              f"{control[1] / off[1]:.4f} |")
    for key, what in (("on", "with / without"), ("control", "control / without (the noise floor)")):
        for clock in ("wall", "cpu"):
            values = row["ratios"][f"{key}_{clock}"]
            median = row["median_ratios"][f"{key}_{clock}"]
            print(f"median ratio {what}, {'wall clock' if clock == 'wall' else 'CPU time'}: {median:.4f} "
                  f"({100 * (median - 1):+.2f} %; rounds {min(values):.4f} to {max(values):.4f})")
    print(f"the calls alone: begin {row['begin_ms']:.3f} ms + verdict {row['verdict_ms']:.3f} ms per step = "
          f"{row['calls_percent']:.3f} % of the median step without them ({row['step_ms']:.1f} ms)", flush=True)


def main(argv=None):
    import platform

    import torch

    from litepose.utils.device import resolve_device

    parser = config_parser(__doc__.splitlines()[0], require_cfg=False)
    archs = parser.add_mutually_exclusive_group()
    archs.add_argument("--archs", nargs="+", default=None, metavar="NAME",
                       help="released architectures (mobile_configs/search-NAME.json) or JSON paths, one row each "
                            "(default: XS S without --cfg; the config's own model with --cfg)")
    archs.add_argument("--superconfig", metavar="ARCH.json", help="one architecture, as dist_train.py's option")
    parser.add_argument("--batches", type=int_range(1, 100_000), default=20, help="batches timed for the data pipeline")
    parser.add_argument("--steps", type=int_range(1, 100_000), default=10, help="training steps timed")
    parser.add_argument("--warmup-steps", type=int_range(0, 100_000), default=2, help="untimed training steps first")
    parser.add_argument("--batch-size", type=int_range(1, 4096),
                        default=None, help="images per batch (TRAIN.IMAGES_PER_GPU)")
    parser.add_argument("--workers", type=int_range(0, 1024),
                        default=None, help="loader workers (default: WORKERS, at most the cores)")
    parser.add_argument("--amp", action="store_true", help="time the step with mixed precision (TRAIN.AMP True)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--fault-overhead", action="store_true",
                        help="time the step with and without its fault handling instead (default --archs XS)")
    parser.add_argument("--repeats", type=int_range(1, 1000),
                        default=6, help="with --fault-overhead: rounds of --steps each way")
    args = parse_args(parser, argv)
    if args.repeats <= 0:
        parser.error(f"--repeats must be positive, got {args.repeats}")
    if args.fault_overhead and not args.archs and not args.superconfig and args.cfg is None:
        args.archs = ["XS"]
    if args.batches <= 0 or args.steps <= 0 or args.warmup_steps < 0:
        parser.error("--batches and --steps must be positive, --warmup-steps >= 0")
    if args.batch_size is not None and args.batch_size <= 0:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")
    if args.superconfig:
        rows = [(os.path.splitext(os.path.basename(args.superconfig))[0], args.superconfig)]
    elif args.archs or args.cfg is None:
        rows = [(name, name if name.endswith(".json") else f"mobile_configs/search-{name}.json")
                for name in args.archs or ["XS", "S"]]
    else:
        rows = [(os.path.splitext(os.path.basename(args.cfg))[0], None)]  # MODEL.ARCH, the supernet, a baseline
    args.opts = SYNTHETIC + list(args.opts) if args.cfg is None else list(args.opts)
    args.cfg = args.cfg or DEFAULT_CFG
    if args.batch_size:
        args.opts += ["TRAIN.IMAGES_PER_GPU", str(args.batch_size)]
    if args.amp:
        args.opts += ["TRAIN.AMP", "True"]
    cfg = load_cli_config(args)
    device = resolve_device(cfg.DEVICE)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}, " \
        f"{torch.get_num_threads()} threads"
    print(f"device: {device} ({where}); batch {cfg.TRAIN.IMAGES_PER_GPU}")
    if args.fault_overhead:
        for name, superconfig in rows:
            with benchmark_trainer(args.cfg, args.opts, superconfig) as trainer:
                row = measure_fault_overhead(trainer, args.repeats, args.steps, args.warmup_steps,
                                             progress=not args.no_progress)
            _print_fault_overhead(name, row)
        return 0
    print("| arch | input | data pipeline (img/s, workers) | training step (img/s) | bound by |")
    print("|---|---|---|---|---|")
    for name, superconfig in rows:
        with benchmark_trainer(args.cfg, args.opts, superconfig) as trainer:
            size = trainer.data_size
            data = measure_data_pipeline(cfg, size, device, args.batches, workers=args.workers,
                                         progress=not args.no_progress)
            step = time_train_step(trainer, args.steps, args.warmup_steps, progress=not args.no_progress)
        bound = "data" if data["images_per_s"] < step["images_per_s"] else "step"
        print(f"| {name} | {step['input']} | {data['images_per_s']:.1f} ({data['workers']}) | "
              f"{step['images_per_s']:.1f}{' (AMP)' if args.amp else ''} | {bound} |", flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
