#!/usr/bin/env python
"""Crash drill: SIGKILL a training run at random moments, restart it each time, and check that
it ends with the weights of an uninterrupted run (deterministic CPU mode).

    python tools/crash_drill.py --kills 10 --seed 0 [--workdir DIR] [--output TABLE.md]

Prints one line per start and a Markdown table (RELIABILITY.md records one); exits 1 when the
final weights differ from the uninterrupted run's.
"""

import argparse
import os

from litepose.utils.cli import parse_args, run_cli


def main(argv=None):
    import tempfile

    from litepose.train.crash_drill import run_crash_drill
    from litepose.utils.io import atomic_write_text, ensure_writable_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs before the run may finish")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill times and the training run")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the drilled run")
    parser.add_argument("--checkpoint-steps", type=int, default=3, help="TRAIN.CHECKPOINT_STEPS of the run")
    parser.add_argument("--workdir", help="where data and runs go (default: a new temporary folder)")
    parser.add_argument("--output", metavar="TABLE.md", help="also write the table here")
    args = parse_args(parser, argv)
    if args.output:
        ensure_writable_dir(os.path.dirname(os.path.abspath(args.output)))
    workdir = args.workdir or tempfile.mkdtemp(prefix="litepose-drill-")
    report = run_crash_drill(workdir, kills=args.kills, seed=args.seed, epochs=args.epochs,
                             checkpoint_steps=args.checkpoint_steps, progress=print)
    table = report.table()
    print(table)
    if args.output:
        atomic_write_text(args.output, table + "\n")
    return 0 if report.identical else 1


if __name__ == "__main__":
    run_cli(main)
