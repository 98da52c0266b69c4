#!/usr/bin/env python
"""Loopback restart drill: two torchrun agents (``--nnodes 2``, c10d rendezvous on 127.0.0.1)
train a tiny LitePose, the worker of one rank is SIGKILLed after the first checkpoint, and
torchrun restarts the group, which resumes from the checkpoint and finishes.

    python -m benchmarks.loopback_restart --runs 5 [--max-restarts 1] [--kill-rank 1] [--workdir DIR]

Prints one line per run and a Markdown table: per agent, the restarts torchrun counted against
``--max-restarts`` (a worker that failed) and those it did not count (it saw the other agent
waiting at the rendezvous and restarted a healthy group), the workers' exit codes, and how many
starts failed to connect to their peers; each agent's whole log is kept as
``WORKDIR/runN-agentI.log``. Exits 1 when a run did not finish. Needs Linux's /proc
(it finds the workers as the agents' children). From Python, as tests/test_reliability.py does:

    run = run_loopback_restart("/tmp/loopback", max_restarts=1)
    print(run.line())
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.crash_drill import CONFIG, DRILL_ARCH, REPO
from litepose.cli import int_range, parse_args, run_cli
from litepose.errors import LitePoseError
from litepose.utils.io import check_output_file, ensure_writable_dir


def children(pid):
    """The process ids of ``pid``'s children (Linux)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        return []


def rank_of(pid):
    """The ``RANK`` torchrun gave process ``pid``, or -1."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            env = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
        return int(env.get(b"RANK", b"-1"))
    except (FileNotFoundError, ValueError):
        return -1


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Agent:
    """What one torchrun agent did, read from its log (``LOGLEVEL=INFO``)."""
    returncode: int
    worker_exits: list  # exit codes of its workers that failed (-9: the SIGKILL)
    counted_restarts: int  # "Worker group FAILED ... will restart": spent from --max-restarts
    free_restarts: int  # "Detected N new nodes ...": a healthy group restarted, not counted
    failed_connects: int  # starts whose Gloo process group could not connect to a peer
    output: str = field(repr=False, default="")

    @classmethod
    def from_output(cls, returncode, output):
        return cls(returncode, [int(code) for code in re.findall(r"failed \(exitcode: (-?\d+)\)", output)],
                   output.count("attempts left; will restart worker group"),
                   len(re.findall(r"Detected \d+ new nodes from group_rank=\d+; will restart worker group", output)),
                   len(re.findall(r"ProcessGroupGloo\.cpp:\d+\] Gloo connectFullMesh failed", output)), output)


@dataclass
class LoopbackRun:
    number: int
    agents: list
    killed_rank: int
    checkpoint_at_kill: int  # epochs finished in checkpoint.pth.tar when the kill came
    starts: list  # where each start of the group began: 0 for the beginning, else the epoch it resumed at
    final_epoch: int  # epochs finished in checkpoint.pth.tar at the end
    epochs: int
    duration_s: float
    load: tuple  # 1-minute load average at the start and at the end

    @property
    def finished(self):
        return all(a.returncode == 0 for a in self.agents) and self.final_epoch == self.epochs

    def line(self):
        agents = "; ".join(f"agent {i}: exit {a.returncode}, restarts {a.counted_restarts} counted + "
                           f"{a.free_restarts} not, worker exits {a.worker_exits or '-'}, "
                           f"failed connects {a.failed_connects}" for i, a in enumerate(self.agents))
        return (f"run {self.number}: rank {self.killed_rank} killed after epoch {self.checkpoint_at_kill}; "
                f"starts: {_starts(self.starts)}; {'finished' if self.finished else 'DID NOT FINISH'} in {self.duration_s:.0f} s "
                f"(load {self.load[0]:.1f} -> {self.load[1]:.1f}); {agents}")

    def tail(self, chars=3000):
        return "\n".join(f"--- agent {i} ---\n{a.output[-chars:]}" for i, a in enumerate(self.agents))


def _starts(starts):
    return ", ".join("beginning" if epoch == 0 else f"epoch {epoch}" for epoch in starts)


def _opts(workdir, epochs, dist_timeout):
    return ["DATASET.ROOT", str(workdir / "data"), "MODEL.ARCH", str(workdir / "drill_arch.json"), "DEVICE", "cpu",
            "OUTPUT_DIR", str(workdir / "output"), "LOG_DIR", str(workdir / "log"), "WORKERS", "0",
            "TRAIN.IMAGES_PER_GPU", "2", "TRAIN.END_EPOCH", str(epochs), "TRAIN.VAL_FREQ", "0",
            "TRAIN.LR_STEP", "[100]", "DIST_TIMEOUT", str(dist_timeout)]


def run_loopback_restart(workdir, max_restarts=1, kill_rank=1, epochs=6, dist_timeout=20, timeout=300, number=1):
    """One run in ``workdir`` (created; an earlier run's output there is replaced). Returns a
    ``LoopbackRun``; raises ``LitePoseError`` when no checkpoint came within ``timeout`` seconds."""
    import shutil

    from litepose.config import load_config
    from litepose.data.synthetic import generate_synthetic_dataset
    from litepose.train import run_dirs
    from litepose.train.checkpoint import CHECKPOINT_NAME, load_training_checkpoint

    workdir = Path(workdir).resolve()
    ensure_writable_dir(workdir, "loopback drill folder")
    if not (workdir / "data").is_dir():
        generate_synthetic_dataset(workdir / "data", {"train": 12, "val": 4}, seed=1, show_progress=False)
    (workdir / "drill_arch.json").write_text(json.dumps(DRILL_ARCH))
    for name in ("output", "log"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    opts = _opts(workdir, epochs, dist_timeout)
    checkpoint = Path(run_dirs(load_config(str(REPO / CONFIG), opts), CONFIG)[0]) / CHECKPOINT_NAME
    endpoint = f"127.0.0.1:{free_port()}"
    # LOGLEVEL=INFO: torchrun logs each restart and its reason.
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", LOGLEVEL="INFO")
    load = os.getloadavg()[0]
    started = time.time()
    agents = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "litepose-loopback",
         "--max-restarts", str(max_restarts), "--monitor-interval", "0.5", str(REPO / "dist_train.py"),
         "--cfg", str(REPO / CONFIG), "--no-progress", *opts], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=environment) for _ in range(2)]
    try:
        deadline = started + timeout
        while all(a.poll() is None for a in agents) and time.time() < deadline and not checkpoint.exists():
            time.sleep(0.05)
        if not checkpoint.exists():
            raise LitePoseError(f"loopback drill: no checkpoint after {time.time() - started:.0f} s")
        victims = [pid for agent in agents for pid in children(agent.pid) if rank_of(pid) == kill_rank]
        if not victims:
            raise LitePoseError(f"loopback drill: no worker of rank {kill_rank} found")
        at_kill = load_training_checkpoint(checkpoint)["epoch"]
        os.kill(victims[0], signal.SIGKILL)
        outputs = [agent.communicate(timeout=timeout)[0] for agent in agents]
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
                agent.communicate()
    for index, output in enumerate(outputs):  # the whole story of each agent, for a closer look
        (workdir / f"run{number}-agent{index}.log").write_text(output)
    everything = "\n".join(outputs)
    # Rank 0 says where each start of the group began (in time order: a later start resumes later).
    starts = sorted(int(epoch or 0) for epoch in re.findall(
        r"^(?:no checkpoint to resume from|resumed from .*: continuing at epoch (\d+))", everything, flags=re.MULTILINE))
    return LoopbackRun(number, [Agent.from_output(a.returncode, o) for a, o in zip(agents, outputs)], kill_rank,
                       at_kill, starts, load_training_checkpoint(checkpoint)["epoch"], epochs, time.time() - started,
                       (load, os.getloadavg()[0]))


def table(runs):
    lines = ["| run | killed | starts of the group | agent 0: restarts counted + not, worker exits | "
             "agent 1: restarts counted + not, worker exits | failed connects | finished | s | load |",
             "|---:|---|---|---|---|---:|---|---:|---|"]
    for run in runs:
        a, b = run.agents
        lines.append(f"| {run.number} | rank {run.killed_rank} after epoch {run.checkpoint_at_kill} | {_starts(run.starts)} | "
                     f"{a.counted_restarts} + {a.free_restarts}, {a.worker_exits or '-'} | "
                     f"{b.counted_restarts} + {b.free_restarts}, {b.worker_exits or '-'} | "
                     f"{a.failed_connects + b.failed_connects} | {'yes' if run.finished else 'no'} | "
                     f"{run.duration_s:.0f} | {run.load[0]:.1f} -> {run.load[1]:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    import tempfile

    from litepose.utils.io import atomic_write_text

    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--runs", type=int_range(1, 100), default=5, help="runs, one after the other")
    parser.add_argument("--max-restarts", type=int_range(0, 100), default=1, help="torchrun's --max-restarts")
    parser.add_argument("--kill-rank", type=int_range(0, 1), default=1, help="the rank whose worker is SIGKILLed")
    parser.add_argument("--dist-timeout", type=int_range(1, 3600), default=20, help="DIST_TIMEOUT of the run (s)")
    parser.add_argument("--workdir", help="where data and runs go (default: a new temporary folder)")
    parser.add_argument("--output", metavar="TABLE.md", help="also write the table here")
    args = parse_args(parser, argv)
    if not os.path.isdir("/proc/self/task"):
        raise LitePoseError("the loopback drill finds torchrun's workers through /proc (Linux)")
    if args.output:
        check_output_file(args.output, force=True, what="--output")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="litepose-loopback-"))
    runs = []
    for number in range(1, args.runs + 1):
        runs.append(run_loopback_restart(workdir, args.max_restarts, args.kill_rank, dist_timeout=args.dist_timeout,
                                         number=number))
        print(runs[-1].line(), flush=True)
    print(table(runs))
    if args.output:
        atomic_write_text(args.output, table(runs) + "\n")
    return 0 if all(run.finished for run in runs) else 1


if __name__ == "__main__":
    run_cli(main)
