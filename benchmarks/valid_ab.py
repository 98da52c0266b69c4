#!/usr/bin/env python
"""valid.py before and after a change: time per image and people, image for image.

    python -m benchmarks.valid_ab --before /tmp/main-tree --after . [--rounds 5] [--threads 1] \
        [--work DIR] -- --cfg experiments/synthetic/quickstart.yaml TEST.MODEL_FILE ckpt.pth.tar [...]

``--before`` and ``--after`` are two checkouts of the repository (``git archive REV | tar -x
-C DIR`` gives one of any revision). Every round runs each checkout's own ``valid.py`` with the
arguments after ``--`` in a fresh process (working directory the checkout, ``PYTHONPATH`` its
``lib``; ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and OpenCV's ``OPENCV_FOR_THREADS_NUM`` set to
``--threads``), alternating which one goes first, so that a machine busier in one round slows
both alike. Each run's ``metrics.md`` gives its
milliseconds per image (network, aggregate, grouping) and AP; its results JSON its people.

Printed: per checkout the median over rounds of every stage and of their sum, the ratio
after / before (of the medians, and within each round), the AP of each, how many images have
the same people (same count, keypoints and scores equal to ``--atol``) in every round, and the
largest differences between matched people.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

STAGES = ("network", "aggregate", "grouping")


def _parser():
    from litepose.cli import THREADS, int_range, number_range

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, metavar="DIR", help="checkout of the revision before")
    parser.add_argument("--after", required=True, metavar="DIR", help="checkout of the revision after")
    parser.add_argument("--rounds", type=int_range(1, 1000), default=5, help="runs of each checkout (default 5)")
    parser.add_argument("--threads", type=THREADS, default=1, help="OMP/MKL/OpenCV threads of each run (default 1)")
    parser.add_argument("--atol", type=number_range(0), default=0.0,
                        help="largest keypoint or score difference that counts as the same (default 0: exact)")
    parser.add_argument("--work", metavar="DIR", help="where the runs write (default: a new temporary folder)")
    parser.add_argument("valid_args", nargs=argparse.REMAINDER, help="-- then valid.py's arguments")
    return parser


def checkout_env(tree, threads):
    """The environment of a run in checkout ``tree``: its ``lib`` first on ``PYTHONPATH``, OpenMP,
    MKL and OpenCV at ``threads`` threads."""
    env = dict(os.environ, PYTHONPATH=os.path.join(tree, "lib"))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM"):
        env[name] = str(threads)
    return env


def _run(tree, valid_args, output_dir, threads):
    env = checkout_env(tree, threads)
    command = [sys.executable, os.path.join(tree, "valid.py"), *valid_args, "--output-dir", output_dir]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise SystemExit(f"valid.py failed in {tree} (exit {done.returncode}): {tail[0] if tail else ''}")
    table = open(os.path.join(output_dir, "metrics.md"), encoding="utf-8").read()
    ms = re.search(r"ms per image: (.*)", table).group(1)
    stages = {name: float(value) for name, value in re.findall(r"(\w+) ([0-9.]+)", ms)}
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")]
    ap = float(rows[2][rows[0].index("AP")])
    results = [os.path.join(output_dir, f) for f in os.listdir(output_dir) if f.endswith("_results.json")]
    with open(results[0], encoding="utf-8") as handle:
        people = json.load(handle)
    return stages, ap, people


def _by_image(people):
    images = {}
    for person in people:
        images.setdefault(person["image_id"], []).append((person["keypoints"], person["score"]))
    return images


def _same(a, b, atol):
    if len(a) != len(b):
        return False
    return all(max(abs(x - y) for x, y in zip(ka + [sa], kb + [sb])) <= atol for (ka, sa), (kb, sb) in zip(a, b))


def _largest_differences(people, images, rounds):
    """Largest position and score differences between people of the same image and rank, over
    images where both checkouts found the same number of people."""
    position = score = 0.0
    for r in range(rounds):
        for image in images:
            a, b = people["before"][r].get(image, []), people["after"][r].get(image, [])
            if len(a) != len(b):
                continue
            for (ka, sa), (kb, sb) in zip(a, b):
                for j in range(0, len(ka), 3):
                    position = max(position, abs(ka[j] - kb[j]), abs(ka[j + 1] - kb[j + 1]))
                    score = max(score, abs(ka[j + 2] - kb[j + 2]))
                score = max(score, abs(sa - sb))
    return position, score


def main(argv=None):
    args = _parser().parse_args(argv)
    valid_args = args.valid_args[1:] if args.valid_args[:1] == ["--"] else args.valid_args
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    work = args.work or tempfile.mkdtemp(prefix="valid_ab-")
    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    times = {name: [] for name in trees}
    aps, people = {}, {name: [] for name in trees}
    for round_index in range(args.rounds):
        order = list(trees) if round_index % 2 == 0 else list(trees)[::-1]
        for name in order:
            stages, ap, found = _run(trees[name], valid_args, os.path.join(work, f"{name}-{round_index}"), args.threads)
            times[name].append(stages)
            aps.setdefault(name, set()).add(ap)
            people[name].append(_by_image(found))
            print(f"round {round_index + 1} {name}: " + ", ".join(f"{s} {stages[s]:.1f}" for s in STAGES)
                  + f" ms, AP {ap:.3f}", flush=True)
    medians = {name: {s: statistics.median(t[s] for t in times[name]) for s in STAGES} for name in trees}
    for name in trees:
        medians[name]["total"] = statistics.median(sum(t[s] for s in STAGES) for t in times[name])
    print(f"\nmedian ms per image over {args.rounds} rounds (threads {args.threads}):")
    print("| stage | before | after | after / before |\n|---|---|---|---|")
    for stage in (*STAGES, "total"):
        b, a = medians["before"][stage], medians["after"][stage]
        print(f"| {stage} | {b:.2f} | {a:.2f} | {a / b if b else float('nan'):.2f} |")
    paired = {stage: sorted((t_after[stage] if stage in STAGES else sum(t_after[s] for s in STAGES))
                            / (t_before[stage] if stage in STAGES else sum(t_before[s] for s in STAGES))
                            for t_before, t_after in zip(times["before"], times["after"]))
              for stage in (*STAGES, "total")}
    print("after / before within each round (the two runs of a round ran back to back): "
          + "; ".join(f"{stage} median {statistics.median(r):.2f}, range {r[0]:.2f}-{r[-1]:.2f}"
                      for stage, r in paired.items()))
    print(f"AP before {sorted(aps['before'])}, after {sorted(aps['after'])}")
    images = sorted(set().union(*people["before"], *people["after"]))
    same = sum(all(_same(people["before"][r].get(i, []), people["after"][r].get(i, []), args.atol)
                   for r in range(args.rounds)) for i in images)
    print(f"images with the same people (atol {args.atol}): {same} of {len(images)}")
    position, score = _largest_differences(people, images, args.rounds)
    print(f"largest difference between matched people: {position:.3g} px in position, {score:.3g} in a score "
          f"(joint or person)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
