"""The data pipeline at COCO's size: annotation index, loader memory and speed, validation, resume.

    python tools/make_synthetic_dataset.py --out /tmp/coco_scale --coco-scale     # once, ~20 MB of JPEGs
    python -m benchmarks.data_scale --root /tmp/coco_scale [--checkpoint CKPT] [--only index memory ...]

Parts (``--only`` picks some; each prints one JSON line and a summary, all go to ``--output``):

- ``index``: the annotation index per training process (``benchmarks.index_cache``, fresh
  processes): parsed by the process, built into the run's cache, or memory-mapped from it; and
  ``--processes`` processes started at once on an empty and on a built cache;
- ``memory``: one full training epoch under ``torchrun --nproc_per_node --processes`` with
  ``--workers`` loader workers each, at ``--input-size`` (``benchmarks.loader_epoch``: each
  process builds its data as the trainer does and runs no training step): RSS, USS (unique
  memory: what copy-on-write has copied) and PSS of every process and worker at ``--points``
  points, and the node's total PSS; the processes share the index cache as the trainer's do
  (``--no-index-cache``: each parses). ``--annotation-only`` decodes no image (minutes, not an hour);
- ``speed``: images/s of one loader worker (full samples, ``--speed-batches`` batches of 8) at
  input 512 and 256, by the wall clock and per second of the worker's CPU time;
- ``valid``: ``valid.py`` at 512 with flip on ``--valid-images`` and twice as many validation
  images: seconds per image, by the wall clock and in CPU time (the difference of the two runs,
  so start-up cancels) and results
  size, extrapolated linearly to 5,000 images, and each run's peak RSS;
- ``placement``: the quickstart's CPU training epoch (160 images, one worker, one thread) with
  targets rendered by the training process and by the loader worker, interleaved;
- ``resume``: at the full training set, the batch a process resumed at a mid-epoch step loads
  (a fresh process, as after a kill) against the same step of an uninterrupted epoch: image ids
  and every tensor equal.

Timings on a shared machine are noisy; the memory figures are not.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from litepose.errors import DataError
from litepose.cli import input_size, int_range, parse_args, run_cli

QUICKSTART = "experiments/synthetic/quickstart.yaml"
PARTS = ("index", "memory", "speed", "valid", "resume", "placement")


def dataset_config(root, opts=()):
    from litepose.config import load_config

    return load_config(QUICKSTART, ["DATASET.ROOT", os.path.abspath(root), "DATASET.SYNTHETIC", "False",
                                    "DATASET.TRAIN", "train", "DATASET.TEST", "val", *opts])


def memory_of(process):
    """``(rss, uss, pss)`` bytes of a ``psutil.Process``; ``uss`` (pages no other process maps)
    and ``pss`` (each shared page divided among its sharers: these add up to the machine's
    total) from smaps, None where unreadable."""
    try:
        full = process.memory_full_info()
        return full.rss, getattr(full, "uss", None), getattr(full, "pss", None)
    except Exception:  # psutil.AccessDenied / NoSuchProcess: a worker that just exited
        return process.memory_info().rss, None, None


def _mb(value):
    return round((value or 0) / 2**20)


def sample_loader(loader, points, limit=None, progress=None):
    """Iterate ``loader``; at ``points`` evenly spaced batches record main and worker memory."""
    import psutil

    me = psutil.Process()
    total = len(loader) if limit is None else min(limit, len(loader))
    marks = {max(1, round(total * (k + 1) / points)) for k in range(points)}
    curve = []
    start = time.perf_counter()
    for count, batch in enumerate(loader, start=1):
        if isinstance(batch, dict) and "error" in batch:
            raise DataError(batch["error"])
        if count in marks:
            workers = [memory_of(child) for child in me.children()]
            rss, uss, pss = memory_of(me)
            curve.append({"batches": count, "seconds": round(time.perf_counter() - start, 1),
                          "main_rss_mb": _mb(rss), "main_uss_mb": _mb(uss), "main_pss_mb": _mb(pss),
                          "worker_rss_mb": [_mb(w[0]) for w in workers],
                          "worker_uss_mb": [_mb(w[1]) for w in workers],
                          "worker_pss_mb": [_mb(w[2]) for w in workers],
                          "total_pss_mb": _mb((pss or 0) + sum(w[2] or 0 for w in workers))})
            if progress:
                seconds = curve[-1]["seconds"]
                print(f"  {count}/{total} batches, {seconds:.0f} s, {count * loader.batch_size / seconds:.1f} images/s "
                      f"here: {curve[-1]}", flush=True)
        if count >= total:
            break
    return curve


def measure_memory(root, processes=2, workers=4, points=16, input_size=512, batch_size=16, annotation_only=False,
                   index_cache=True):
    """One full epoch under ``torchrun --nproc_per_node processes`` (``benchmarks.loader_epoch``):
    the memory of every process and loader worker along the way. ``index_cache``: the processes
    share one memory-mapped annotation index, as the trainer's do by default
    (``DATASET.INDEX_CACHE``); False: each parses the file."""
    with tempfile.TemporaryDirectory(prefix="litepose-epoch-") as scratch:
        return _epoch(root, processes, workers, points, input_size, batch_size, annotation_only,
                      os.path.join(scratch, "annotation_index") if index_cache else None)


def _epoch(root, processes, workers, points, input_size, batch_size, annotation_only, index_cache):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               "-m", "benchmarks.loader_epoch", "--root", os.path.abspath(root), "--workers", str(workers),
               "--input-size", str(input_size), "--batch-size", str(batch_size), "--points", str(points)]
    command += ["--annotation-only"] * annotation_only + (["--index-cache", index_cache] if index_cache else [])
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1")) as process:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if not line.startswith("{"):
                print(line, end="", flush=True)
            del lines[:-50]  # the last lines are all an error report needs
    if process.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise DataError(f"the loader epoch failed (exit {process.returncode}): {lines[-1] if lines else ''}")
    return json.loads(lines[-1])


def measure_speed(root, sizes=(512, 256), batches=12, batch_size=8, warmup=2):
    """Images/s of one loader worker per input size (full samples; targets are not built here):
    by the wall clock, and per second of the worker's CPU time (what one free core would give,
    which a busy machine disturbs less)."""
    import psutil

    from litepose.data.build import build_dataset, build_loader, iterate_loader, set_loader_epoch, \
        single_opencv_thread

    def worker_cpu():
        return sum(sum(child.cpu_times()[:2]) for child in psutil.Process().children())

    single_opencv_thread()
    cfg = dataset_config(root)
    rates, per_core = {}, {}
    for size in sizes:
        dataset = build_dataset(cfg, size)
        loader = build_loader(dataset, batch_size, workers=1)
        set_loader_epoch(loader, 0)
        start = cpu = None
        for count, _batch in enumerate(iterate_loader(loader)):
            if count == warmup:
                start, cpu = time.perf_counter(), worker_cpu()
            if count == warmup + batches:
                seconds, cpu = time.perf_counter() - start, worker_cpu() - cpu
                break
        rates[str(size)] = round(batches * batch_size / seconds, 2)
        per_core[str(size)] = round(batches * batch_size / cpu, 2)
        print(f"  {size}px: {rates[str(size)]} images/s per worker, {per_core[str(size)]} per CPU second", flush=True)
    return {"part": "speed", "images_per_s_per_worker": rates, "images_per_cpu_s": per_core,
            "batch_size": batch_size, "batches": batches}


def _children_cpu():
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _valid_run(root, checkpoint, limit, out):
    import psutil

    command = [sys.executable, "valid.py", "--cfg", QUICKSTART, "--limit", str(limit), "--input-size", "512",
               "--output-dir", out, "DATASET.ROOT", os.path.abspath(root), "DATASET.SYNTHETIC", "False",
               "DATASET.TEST", "val", "TEST.FLIP_TEST", "True", "TEST.MODEL_FILE", checkpoint]
    start, cpu = time.perf_counter(), _children_cpu()
    process = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    output = process.stdout.read()
    process.wait()
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if process.returncode != 0:
        raise DataError(f"valid.py failed: {output.strip().splitlines()[-1] if output.strip() else process.returncode}")
    results = [os.path.join(d, f) for d, _, files in os.walk(out) for f in files if f.endswith(".json")]
    size = max((os.path.getsize(p) for p in results), default=0)
    return seconds, peak, size, cpu


def measure_valid(root, checkpoint, images=20):
    with tempfile.TemporaryDirectory() as scratch:
        small = _valid_run(root, checkpoint, images, os.path.join(scratch, "a"))
        large = _valid_run(root, checkpoint, 2 * images, os.path.join(scratch, "b"))
    per_image = (large[0] - small[0]) / images
    cpu_per_image = (large[3] - small[3]) / images
    startup = small[0] - per_image * images
    result_bytes = (large[2] - small[2]) / images
    return {"part": "valid", "images": [images, 2 * images], "seconds": [round(small[0], 1), round(large[0], 1)],
            "s_per_image": round(per_image, 3), "cpu_s_per_image": round(cpu_per_image, 3),
            "startup_s": round(startup, 1),
            "peak_rss_mb": [round(small[1] / 2**20), round(large[1] / 2**20)],
            "results_bytes_per_image": round(result_bytes),
            # Peak memory follows the largest image, not the count (results are the only state
            # kept per image): compare the two runs' peaks rather than extrapolate them.
            "extrapolated_5000": {"minutes": round((startup + 5000 * per_image) / 60, 1),
                                  "results_mb": round((small[2] + (5000 - images) * result_bytes) / 2**20, 1)}}


RESUME_CHILD = """
import hashlib, json, sys
from benchmarks.data_scale import resumed_batch_digest
print(json.dumps(resumed_batch_digest(*json.loads(sys.argv[1]))))
"""


def resumed_batch_digest(root, epoch, step, rank, world_size, batch_size, input_size, uninterrupted):
    """Image ids and a digest of every tensor of the batch at ``step`` of ``epoch`` for ``rank``:
    iterating from the epoch's start (``uninterrupted``) or resuming at ``step`` as the trainer
    does after a restart (``set_loader_epoch(loader, epoch, step)``)."""
    import hashlib

    import torch

    from litepose.data.build import build_dataset, build_loader, iterate_loader, set_loader_epoch

    cfg = dataset_config(root)
    dataset = build_dataset(cfg, input_size)
    loader = build_loader(dataset, batch_size, workers=0, seed=cfg.TRAIN.SEED, rank=rank, world_size=world_size)
    set_loader_epoch(loader, epoch, 0 if uninterrupted else step)
    if uninterrupted:
        # Skip the first ``step`` batches by index only (loading them would take hours).
        indices = list(iter(loader.sampler))[step * batch_size:(step + 1) * batch_size]
        batch = check_samples([dataset[i] for i in indices])
    else:
        batch = next(iterate_loader(loader))
    digest = hashlib.sha256()
    for key in ("images", "source_keypoints", "person_sizes", "placement"):
        digest.update(batch[key].numpy().tobytes())
    for mask in batch["masks"]:
        digest.update(mask.numpy().tobytes())
    return {"image_ids": [int(i) for i in batch["image_id"]], "digest": digest.hexdigest(),
            "steps_per_epoch": len(dataset) // world_size // batch_size, "training_images": len(dataset),
            "torch": torch.__version__}


def check_samples(samples):
    from litepose.data.dataset import check_batch, collate_samples

    return check_batch(collate_samples(samples))


def measure_resume(root, epoch=3, world_size=2, batch_size=8, input_size=256, fraction=0.61):
    """The resumed batch against the uninterrupted one at ``fraction`` of an epoch, each in a
    fresh process."""
    from litepose.data.build import build_dataset

    images = len(build_dataset(dataset_config(root), input_size))
    step = int(images // world_size // batch_size * fraction)
    rows = {}
    for uninterrupted in (True, False):
        args = [root, epoch, step, 1, world_size, batch_size, input_size, uninterrupted]
        out = subprocess.run([sys.executable, "-c", RESUME_CHILD, json.dumps(args)], capture_output=True, text=True,
                             check=False)
        if out.returncode != 0:
            raise DataError(f"resume check failed: {out.stderr.strip().splitlines()[-1]}")
        rows["uninterrupted" if uninterrupted else "resumed"] = json.loads(out.stdout.strip().splitlines()[-1])
    same = rows["uninterrupted"] == rows["resumed"]
    return {"part": "resume", "epoch": epoch, "step": step, "rank": 1, "world_size": world_size,
            "same_next_batch": same, **rows}


def measure_placement(images=160, rounds=2, threads=1):
    """The quickstart's training epoch on the CPU (``images`` drawn synthetic images, one loader
    worker, ``threads`` compute threads) with its targets rendered by the training process and
    by the loader worker, interleaved over ``rounds``; and the parts of a step: loading a batch
    (worker), rendering its targets, the rest of the step."""
    import torch

    from benchmarks.benchmark_train import benchmark_trainer
    from litepose.data.build import build_loader, iterate_loader, set_loader_epoch, single_opencv_thread
    from litepose.data.synthetic import generate_synthetic_dataset
    from litepose.data.targets import render_targets

    torch.set_num_threads(threads)
    single_opencv_thread()
    with tempfile.TemporaryDirectory(prefix="litepose-placement-") as folder:
        root = os.path.join(folder, "data")
        generate_synthetic_dataset(root, {"train": images}, seed=0, show_progress=False)
        opts = ["DATASET.ROOT", root, "DATASET.SYNTHETIC", "False", "DEVICE", "cpu", "TRAIN.END_EPOCH", "1",
                "TRAIN.CHECKPOINT_STEPS", "0"]
        with benchmark_trainer(QUICKSTART, opts, workdir=folder) as trainer:
            cfg, dataset = trainer.cfg, trainer.train_loader.dataset
            loaders = {place: build_loader(dataset, cfg.TRAIN.IMAGES_PER_GPU, 1, True, cfg.TRAIN.SEED,
                                           worker_targets=trainer.target_config if place == "workers" else None)
                       for place in ("main", "workers")}
            epochs = {"main": [], "workers": []}
            for round_ in range(rounds):
                for place in (("main", "workers") if round_ % 2 == 0 else ("workers", "main")):
                    trainer.train_loader = loaders[place]
                    _means, _speed, seconds = trainer.train_epoch(0)
                    epochs[place].append(round(seconds, 2))
                    print(f"  epoch with targets rendered by {place}: {seconds:.1f} s", flush=True)
            # The parts, in this process: a batch's targets, against the epoch's mean step.
            loader = build_loader(dataset, cfg.TRAIN.IMAGES_PER_GPU, 0, True, cfg.TRAIN.SEED)
            set_loader_epoch(loader, 0)
            batches = [batch for _, batch in zip(range(8), iterate_loader(loader))]
            start = time.perf_counter()
            for batch in batches:
                render_targets(batch, trainer.target_config, dataset.input_size, "cpu")
            render = (time.perf_counter() - start) / len(batches)
    steps = len(loaders["main"])
    return {"part": "placement", "images": images, "batch_size": cfg.TRAIN.IMAGES_PER_GPU, "steps": steps,
            "threads": threads, "input_size": dataset.input_size, "epoch_s": epochs,
            "render_ms_per_batch": round(render * 1000, 1),
            "mean_step_ms": {k: round(sum(v) / len(v) / steps * 1000) for k, v in epochs.items()}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a dataset in COCO layout (make_synthetic_dataset --coco-scale)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=None, help="parts to run (default: all)")
    parser.add_argument("--checkpoint", help="checkpoint of experiments/synthetic/quickstart.yaml for 'valid'")
    parser.add_argument("--processes", type=int_range(1, 64), default=2,
                        help="torchrun processes of 'memory' (--nproc_per_node) and processes started together "
                             "in 'index'")
    parser.add_argument("--workers", type=int_range(1, 64), default=4, help="loader workers per process of 'memory'")
    parser.add_argument("--input-size", type=input_size, default=512, help="input size of 'memory'")
    parser.add_argument("--points", type=int_range(1, 1000), default=16, help="memory samples across the epoch")
    parser.add_argument("--annotation-only", action="store_true",
                        help="'memory' reads every annotation but decodes no image (minutes instead of an hour)")
    parser.add_argument("--no-index-cache", action="store_true",
                        help="'memory': every process parses the annotation file (DATASET.INDEX_CACHE False)")
    parser.add_argument("--speed-batches", type=int_range(1, 100_000), default=12,
                        help="batches of 8 timed per size in 'speed'")
    parser.add_argument("--valid-images", type=int_range(1, 2500), default=20,
                        help="images of the smaller 'valid' run")
    parser.add_argument("--output", help="append the JSON lines to this file")
    args = parse_args(parser, argv)
    if not os.path.isdir(args.root):
        raise DataError(f"dataset root not found: {args.root}")
    parts = args.only or list(PARTS)
    if "valid" in parts and not args.checkpoint:
        parser.error("'valid' needs --checkpoint (a checkpoint of experiments/synthetic/quickstart.yaml)")
    for part in parts:
        print(f"== {part}", flush=True)
        if part == "index":
            from benchmarks.index_cache import measure_index

            row = {"part": "index", "rows": measure_index(args.root, args.processes, repeat=1)}
        elif part == "memory":
            row = measure_memory(args.root, args.processes, args.workers, args.points, args.input_size,
                                 annotation_only=args.annotation_only, index_cache=not args.no_index_cache)
        elif part == "speed":
            row = measure_speed(args.root, batches=args.speed_batches)
        elif part == "valid":
            row = measure_valid(args.root, args.checkpoint, args.valid_images)
        elif part == "resume":
            row = measure_resume(args.root)
        else:
            row = measure_placement()
        row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        line = json.dumps(row)
        print(line, flush=True)
        if args.output:
            with open(args.output, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
    return 0


if __name__ == "__main__":
    run_cli(main)
