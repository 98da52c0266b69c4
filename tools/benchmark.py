#!/usr/bin/env python
"""Latency of LitePose against HigherHRNet and EfficientHRNet, side by side in one run.

    python tools/benchmark.py --output bench/ [--models XS S M L W24 H-1] [--repeats 20]
        [--warmup 2] [--threads 2] [--input-size 512] [--device all|cpu|cuda]
        [--backends eager fused onnx e2e] [--dataset crowd_pose|coco]

Every model runs in every backend (PyTorch eager, PyTorch with BN folded, ONNX Runtime,
end to end with grouping), interleaved round-robin so the machine's drift cancels; batch 1,
median and p90 over --repeats calls after --warmup rounds. Models run at their own input
size (LitePose: the architecture's img_size; baselines: DATASET.INPUT_SIZE) unless
--input-size sets one for all. Writes OUTPUT/benchmark.md (table and speed-ups),
benchmark.png (latency against MACs) and benchmark.json (every sample); prints the table.
"""

import argparse

from litepose.utils.cli import parse_args, run_cli


def main(argv=None):
    import datetime
    import json
    import os
    import platform
    import shlex
    import sys

    import onnxruntime
    import torch

    from litepose.deploy.benchmark import (BACKENDS, DEFAULT_MODELS, BenchmarkSettings, available_devices, markdown_table,
                                      plot_latency, results_as_dict, run_benchmark)
    from litepose.utils.io import atomic_write_bytes, atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for benchmark.md/.png/.json")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help="zoo names (LitePose-XS/S/M/L, HigherHRNet-W24/W32/W48, EfficientHRNet-H-1, or short: "
                             "XS, W24, H-1) or CONFIG.yaml[:ARCH.json]")
    parser.add_argument("--dataset", choices=("crowd_pose", "coco"), default="crowd_pose",
                        help="joint count of the heads (14 or 17)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--device", default="all", help="all (CPU, and CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch and ONNX Runtime")
    parser.add_argument("--input-size", type=int, default=None, help="one square input size for every model")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per model and backend")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    args = parse_args(parser, argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.input_size is not None and (args.input_size <= 0 or args.input_size % 32):
        parser.error(f"--input-size must be a positive multiple of 32, got {args.input_size}")

    settings = BenchmarkSettings(models=tuple(args.models), dataset=args.dataset, backends=tuple(args.backends),
                                 devices=available_devices(args.device), threads=args.threads,
                                 input_size=args.input_size, repeats=args.repeats, warmup=args.warmup)
    load_before = os.getloadavg()[0]
    results = run_benchmark(settings)
    load_after = os.getloadavg()[0]

    command = "python tools/benchmark.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
               f"{torch.get_num_threads()} PyTorch threads, torch {torch.__version__}, "
               f"onnxruntime {onnxruntime.__version__}"
               + (f", GPU {torch.cuda.get_device_name(0)}" if "cuda" in " ".join(settings.devices) else ""))
    header = (f"Command: `{command}`\n\nMachine: {machine}. Date: {datetime.date.today().isoformat()}. "
              f"{args.repeats} timed rounds after {args.warmup} warm-up rounds, models interleaved. "
              f"Load average {load_before:.1f} before, {load_after:.1f} after.\n\n")
    table = markdown_table(results)
    os.makedirs(args.output, exist_ok=True)
    atomic_write_text(os.path.join(args.output, "benchmark.md"), header + table)
    atomic_write_bytes(os.path.join(args.output, "benchmark.png"), plot_latency(results))
    atomic_write_text(os.path.join(args.output, "benchmark.json"),
                      json.dumps(dict(command=command, machine=machine, results=results_as_dict(results)), indent=1))
    print(table)  # ends with the speed-ups of each LitePose over the reference baselines
    print(f"wrote {os.path.join(args.output, 'benchmark.md')}, benchmark.png, benchmark.json")
    return 0


if __name__ == "__main__":
    run_cli(main)
