#!/usr/bin/env python
"""Crash drill: SIGKILL a training run at random moments, restart it each time, and check that
it ends with the weights of an uninterrupted run (deterministic CPU mode).

    python -m benchmarks.crash_drill --kills 10 --seed 0 [--workdir DIR] [--output TABLE.md]

Prints one line per start and a Markdown table (RELIABILITY.md records one); exits 1 when the
final weights differ from the uninterrupted run's.

It trains a tiny LitePose on a small synthetic dataset with ``dist_train.py`` in deterministic
CPU mode (one thread, fixed seed) with a data-loading worker, validation every epoch and a
checkpoint every ``--checkpoint-steps`` steps, so that kills land during steps, data loading,
validation and checkpoint writes. From Python (``from benchmarks.crash_drill import run_crash_drill``, as
tests/test_reliability.py does):

    report = run_crash_drill("/tmp/drill", kills=5, seed=0)
    print(report.table())
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from litepose.errors import LitePoseError
from litepose.cli import SEED, int_range, parse_args, run_cli
from litepose.utils.io import check_output_file, ensure_writable_dir

REPO = Path(__file__).resolve().parents[1]  # benchmarks/crash_drill.py
CONFIG = "experiments/synthetic/quickstart.yaml"
# Small enough for seconds per epoch on one CPU thread, with every kind of layer the real ones have.
DRILL_ARCH = {"img_size": 64, "input_channel": 8, "deconv_setting": [8, 8, 8], "backbone_setting": [
    {"num_blocks": 1, "stride": s, "channel": c, "block_setting": [[2, 3]]} for s, c in zip((2, 2, 2, 1), (8, 8, 16, 16))]}


@dataclass
class Attempt:
    """One start of the training command."""
    number: int
    started_from: str  # where the run said it resumed ("epoch E step S"), or "the beginning"
    killed_after_s: float = None  # seconds after its start; None: it ran to the end
    checkpoint_at_kill: str = ""  # "epoch E step S" of checkpoint.pth.tar when the kill came
    writing_checkpoint: bool = False  # a temporary checkpoint file existed at the kill
    lost_s: float = 0.0  # seconds of work since the last checkpoint write (redone by the next start)


@dataclass
class DrillReport:
    attempts: list = field(default_factory=list)
    identical: bool = False
    max_abs_diff: float = float("nan")
    reference_s: float = 0.0
    drill_s: float = 0.0

    @property
    def kills(self):
        return [a for a in self.attempts if a.killed_after_s is not None]

    def table(self):
        lines = ["| start | resumed at | SIGKILL after (s) | checkpoint on disk then | during its write | "
                 "time since it or the start (s) |", "|---:|---|---:|---|---|---:|"]
        for a in self.attempts:
            if a.killed_after_s is None:
                lines.append(f"| {a.number} | {a.started_from} | ran to the end | | | |")
            else:
                lines.append(f"| {a.number} | {a.started_from} | {a.killed_after_s:.1f} | {a.checkpoint_at_kill} | "
                             f"{'yes' if a.writing_checkpoint else 'no'} | {a.lost_s:.1f} |")
        verdict = "identical to" if self.identical else "DIFFERENT from"
        lines.append("")
        lines.append(f"Final weights after {len(self.kills)} SIGKILL(s): {verdict} the uninterrupted run's (max abs "
                     f"difference {self.max_abs_diff:.3g}). Uninterrupted run {self.reference_s:.1f} s; interrupted "
                     f"run {self.drill_s:.1f} s over {len(self.attempts)} starts.")
        return "\n".join(lines)


def _checkpoint_position(path):
    import torch

    if not os.path.isfile(path):
        return "none", None
    mtime = os.path.getmtime(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    epoch, step = state["epoch"], state.get("step") or 0
    return (f"epoch {epoch + 1} step {step}" if step else f"after epoch {epoch}"), mtime


def _command(workdir, output, epochs, checkpoint_steps, seed):
    arch = workdir / "drill_arch.json"
    return [sys.executable, str(REPO / "dist_train.py"), "--cfg", str(REPO / CONFIG), "--no-progress",
            "DATASET.ROOT", str(workdir / "data"), "MODEL.ARCH", str(arch), "DEVICE", "cpu", "WORKERS", "1",
            "OUTPUT_DIR", str(output), "LOG_DIR", str(workdir / "log"), "TRAIN.IMAGES_PER_GPU", "2",
            "TRAIN.END_EPOCH", str(epochs), "TRAIN.LR_STEP", f"[{max(1, epochs - 1)}]", "TRAIN.VAL_FREQ", "1",
            "TRAIN.CHECKPOINT_STEPS", str(checkpoint_steps), "TRAIN.SEED", str(seed)]


def _environment():
    # One compute thread: the same floating-point reductions in every run, hence identical weights.
    # Unbuffered, so that a killed run's last lines are not lost with it.
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _run_to_end(command, timeout):
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=_environment())
    if result.returncode != 0:
        raise LitePoseError(f"crash drill: training failed (exit {result.returncode}): "
                            f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no message'}")
    return result


def _started_from(stdout):
    for line in stdout.splitlines():
        if line.startswith("resumed from") and "continuing at " in line:
            return line.split("continuing at ", 1)[-1]
        if line.startswith("no checkpoint to resume from"):
            return "the beginning"
    return "(killed during setup)"


def _output_dir(root):
    from litepose.train.checkpoint import CHECKPOINT_NAME

    found = list(Path(root).rglob(CHECKPOINT_NAME))
    return found[0].parent if found else None


def run_crash_drill(workdir, kills=5, seed=0, epochs=8, checkpoint_steps=3, train_images=16, timeout=600,
                    progress=None):
    """Run the drill in ``workdir`` (created; its previous drill outputs are replaced). Returns a
    ``DrillReport``. ``progress`` is called with one line per event, if given."""
    import shutil

    import torch

    from litepose.data.synthetic import generate_synthetic_dataset
    from litepose.train.checkpoint import CHECKPOINT_NAME, FINAL_NAME

    if kills < 0:
        raise LitePoseError(f"the number of kills must be >= 0, got {kills}")
    say = progress or (lambda line: None)
    workdir = Path(workdir).resolve()
    ensure_writable_dir(workdir, "crash drill folder")
    if not (workdir / "data").is_dir():
        generate_synthetic_dataset(workdir / "data", {"train": train_images, "val": 4}, seed=seed, show_progress=False)
    (workdir / "drill_arch.json").write_text(json.dumps(DRILL_ARCH))
    for name in ("reference", "drill", "log"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    report = DrillReport()
    rng = random.Random(seed)

    say("uninterrupted reference run ...")
    started = time.time()
    _run_to_end(_command(workdir, workdir / "reference", epochs, checkpoint_steps, seed), timeout)
    report.reference_s = time.time() - started
    say(f"reference run: {report.reference_s:.1f} s")

    command = _command(workdir, workdir / "drill", epochs, checkpoint_steps, seed)
    drill_started = time.time()
    final = None
    for number in range(1, kills + 1):
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=_environment())
        started = time.time()
        # Anywhere from the imports to about half the run: a kill may find any phase of it, and
        # most starts progress a little before theirs.
        delay = rng.uniform(0.1, 0.5) * report.reference_s
        while process.poll() is None and time.time() - started < delay:
            time.sleep(0.01)
        if process.poll() is not None:  # finished (or failed) before its kill
            stdout, stderr = process.communicate()
            if process.returncode != 0:
                raise LitePoseError(f"crash drill: start {number} failed (exit {process.returncode}): "
                                    f"{stderr.strip().splitlines()[-1] if stderr.strip() else 'no message'}")
            report.attempts.append(Attempt(number, _started_from(stdout)))
            say(f"start {number}: finished before its kill at {delay:.1f} s")
            final = stdout
            break
        process.send_signal(signal.SIGKILL)
        killed_at = time.time()
        stdout, _ = process.communicate()
        out = _output_dir(workdir / "drill")
        writing = bool(out and any(n.startswith(f".{CHECKPOINT_NAME}.") for n in os.listdir(out)))
        position, mtime = _checkpoint_position(out / CHECKPOINT_NAME) if out else ("none", None)
        attempt = Attempt(number, _started_from(stdout), killed_at - started, position, writing,
                          killed_at - max(mtime or started, started))
        report.attempts.append(attempt)
        say(f"start {number}: from {attempt.started_from}, SIGKILL after {attempt.killed_after_s:.1f} s, "
            f"checkpoint on disk: {position}" + (" (a write in progress)" if writing else ""))
    if final is None:
        final = _run_to_end(command, timeout).stdout
        report.attempts.append(Attempt(len(report.attempts) + 1, _started_from(final)))
    report.drill_s = time.time() - drill_started

    reference = torch.load(_output_dir(workdir / "reference") / FINAL_NAME, map_location="cpu", weights_only=True)
    drilled = torch.load(_output_dir(workdir / "drill") / FINAL_NAME, map_location="cpu", weights_only=True)
    if reference.keys() != drilled.keys():
        raise LitePoseError("crash drill: the two runs saved different tensors")
    report.max_abs_diff = max(float((reference[k].double() - drilled[k].double()).abs().max()) if reference[k].numel()
                              else 0.0 for k in reference)
    report.identical = all(torch.equal(reference[k], drilled[k]) for k in reference)
    say(f"final weights {'identical' if report.identical else 'differ'} (max abs difference {report.max_abs_diff:.3g})")
    return report


def main(argv=None):
    import tempfile

    from litepose.utils.io import atomic_write_text

    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))  # the first sentence
    parser.add_argument("--kills", type=int_range(0, 1000), default=5, help="SIGKILLs before the run may finish")
    parser.add_argument("--seed", type=SEED, default=0, help="seeds the kill times and the training run")
    parser.add_argument("--epochs", type=int_range(1, 1000), default=8, help="epochs of the drilled run")
    parser.add_argument("--checkpoint-steps", type=int_range(0, 100_000),
                        default=3, help="TRAIN.CHECKPOINT_STEPS of the run")
    parser.add_argument("--workdir", help="where data and runs go (default: a new temporary folder)")
    parser.add_argument("--output", metavar="TABLE.md", help="also write the table here")
    args = parse_args(parser, argv)
    if args.output:  # a table of an earlier drill is replaced: force
        check_output_file(args.output, force=True, what="--output")
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
