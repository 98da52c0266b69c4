#!/usr/bin/env python
"""The realtime preset's pre- plus post-processing against XS's network, before and after a change.

    python -m benchmarks.realtime_ab --before /tmp/main-tree --after . [--rounds 4] [--frames 24] \
        [--threads 1] [--work DIR]

``--before`` and ``--after`` are two checkouts of the repository (``git archive REV | tar -x
-C DIR`` gives one of any revision). Every round runs each checkout's own
``benchmarks.compare_alternatives`` for LitePose-XS at 256, ``realtime`` preset, one ONNX Runtime
session of ``--threads`` threads, ``--frames`` timed frames on both kinds of outputs (the
random-weight network's and maps drawn at the annotated people), in a fresh process
(environment as ``benchmarks.valid_ab`` sets it; both read the frames from ``--data``), alternating which checkout goes first, so that a
machine busier in one round slows both alike.

Printed per checkout and kind: (pre + post) / network per frame, median and worst over all its
frames, and the medians of the network and of pre + post; then after / before of the median
share within each round (the two runs of a round ran back to back).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchmarks.valid_ab import checkout_env

KINDS = ("random", "annotated")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parser():
    from litepose.cli import THREADS, int_range

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, metavar="DIR", help="checkout of the revision before")
    parser.add_argument("--after", required=True, metavar="DIR", help="checkout of the revision after")
    parser.add_argument("--rounds", type=int_range(1, 1000), default=4, help="runs of each checkout (default 4)")
    parser.add_argument("--frames", type=int_range(1, 100_000), default=24, help="timed frames per run (default 24)")
    parser.add_argument("--threads", type=THREADS, default=1, help="ONNX Runtime / OMP / OpenCV threads (default 1)")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(REPO), "shared", "data"),
                        help="folder holding coco_mini, given to both checkouts (default: ../shared/data)")
    parser.add_argument("--work", metavar="DIR", help="where the runs write (default: a new temporary folder)")
    return parser


def _run(tree, output_dir, frames, threads, data):
    """``{kind: [(pre_ms, network_ms, post_ms), ...]}`` of one compare_alternatives run in ``tree``."""
    command = [sys.executable, "-m", "benchmarks.compare_alternatives", "--output-dir", output_dir,
               "--litepose", "XS", "--presets", "realtime", "--yolo", "--rtmo", "--kinds", *KINDS,
               "--threads", str(threads), "--rounds", str(frames), "--data", data]
    done = subprocess.run(command, cwd=tree, env=checkout_env(tree, threads), capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise SystemExit(f"compare_alternatives failed in {tree} (exit {done.returncode}): {tail[0] if tail else ''}")
    with open(os.path.join(output_dir, "alternatives.json"), encoding="utf-8") as handle:
        (record,) = json.load(handle)
    return {kind: record["kinds"][kind]["samples_ms"] for kind in KINDS}


def _share(samples):
    return [(pre + post) / network for pre, network, post in samples]


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    for option in ("before", "after"):
        if not os.path.isfile(os.path.join(getattr(args, option), "benchmarks", "compare_alternatives.py")):
            parser.error(f"--{option} {getattr(args, option)}: not a checkout of this repository "
                         "(no benchmarks/compare_alternatives.py)")
    work = args.work or tempfile.mkdtemp(prefix="realtime_ab-")
    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    samples = {name: [] for name in trees}
    for round_index in range(args.rounds):
        for name in (list(trees) if round_index % 2 == 0 else list(trees)[::-1]):
            found = _run(trees[name], os.path.join(work, f"{name}-{round_index}"), args.frames, args.threads,
                         os.path.abspath(args.data))
            samples[name].append(found)
            print(f"round {round_index + 1} {name}: " + ", ".join(
                f"{kind} {100 * statistics.median(_share(found[kind])):.1f} %" for kind in KINDS), flush=True)
    print(f"\nXS at 256, realtime preset, {args.threads} thread(s), {args.rounds} rounds of {args.frames} frames:")
    print("| checkout | outputs | frames | network ms | pre + post ms | (pre + post) / network, median | worst |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        for name in trees:
            rows = [row for found in samples[name] for row in found[kind]]
            share = _share(rows)
            print(f"| {name} | {kind} | {len(rows)} | {statistics.median(r[1] for r in rows):.1f} | "
                  f"{statistics.median(r[0] + r[2] for r in rows):.1f} | {100 * statistics.median(share):.1f} % | "
                  f"{100 * max(share):.0f} % |")
    for kind in KINDS:
        ratios = sorted(statistics.median(_share(a[kind])) / statistics.median(_share(b[kind]))
                        for b, a in zip(samples["before"], samples["after"]))
        print(f"{kind}: after / before of the median share within each round: median {statistics.median(ratios):.2f}, "
              f"range {ratios[0]:.2f}-{ratios[-1]:.2f}")
    return 0


if __name__ == "__main__":
    from litepose.cli import run_cli

    run_cli(main)
