"""The annotation index per training process: parsed by each process, or built once and memory-mapped.

    python -m benchmarks.index_cache --root /tmp/coco_scale [--processes 8] [--parsing-together 3] [--output FILE]

Each figure is taken in fresh processes (what a training process pays when it starts), on the
training set of ``--root`` as ``build_dataset`` loads it:

- ``parse``: without a cache (``DATASET.INDEX_CACHE False``, and every library caller that
  passes no cache folder): the file parsed, checked and packed in this process;
- ``build``: the first process of a run with the cache: the same, then saved to the cache;
- ``load``: every other process of the run (and every restart): the index memory-mapped from the
  cache;
- ``together``: ``--processes`` processes started at once on an empty cache, as torchrun starts a
  node's processes: one builds while the others wait, then all map it; then the same number
  started again on the built cache (a restart); with ``--parsing-together N``, N processes
  without a cache, for comparison. Memory is read while all of them hold the index.

Per process: wall-clock and CPU seconds of ``build_dataset``, RSS added by it, peak RSS
(``ru_maxrss``), and USS and PSS (unique memory, and the process's share of shared pages: PSS
adds up across processes) after it. Timings on a shared machine are noisy; memory is not.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from litepose.cli import int_range, parse_args, run_cli
from litepose.errors import DataError

CHILD = """
import json, sys
from benchmarks.index_cache import child
child(*json.loads(sys.argv[1]))
"""


def child(root, cache, input_size, wait):
    """In a fresh process: ``build_dataset`` of ``root``'s training set (with the index cache
    folder ``cache``, or none), print one JSON line of its cost; with ``wait``, stay alive until
    stdin closes (so that the parent reads every process's memory while all hold the index)."""
    import resource

    import psutil

    from benchmarks.data_scale import dataset_config, memory_of
    from litepose.data.build import build_dataset

    __import__("pycocotools.mask")  # imported on a sample's first mask; not the index's memory
    me = psutil.Process()
    before = me.memory_info().rss
    start, cpu = time.perf_counter(), time.process_time()
    dataset = build_dataset(dataset_config(root), input_size, index_cache=cache or None, log=lambda _line: None)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss, uss, pss = memory_of(me)
    row = {"training_images": len(dataset), "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
           "index_rss_mb": round((rss - before) / 2**20), "rss_mb": round(rss / 2**20),
           "uss_mb": round((uss or 0) / 2**20), "pss_mb": round((pss or 0) / 2**20),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10),
           "mapped": type(dataset.annotations._blob).__name__ == "memmap"}
    print(json.dumps(row), flush=True)
    if wait:
        sys.stdin.read()


def _start(root, cache, input_size, wait=False):
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps([root, cache, input_size, wait])],
                            stdin=subprocess.PIPE if wait else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(process):
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise DataError(f"index measurement failed: {(process.stderr.read().strip().splitlines() or ['?'])[-1]}")
    return json.loads(line)


def measure_one(root, cache, input_size=256):
    process = _start(root, cache, input_size)
    row = _result(process)
    process.wait()
    return row


def measure_together(root, cache, processes, input_size=256):
    """``processes`` fresh processes started at once; each one's cost, and memory while all hold
    the index."""
    import psutil

    from benchmarks.data_scale import memory_of

    start = time.perf_counter()
    running = [_start(root, cache, input_size, wait=True) for _ in range(processes)]
    try:
        rows = [_result(p) for p in running]
        ready = time.perf_counter() - start
        memory = [memory_of(psutil.Process(p.pid)) for p in running]
    finally:
        for p in running:
            if p.stdin:
                p.stdin.close()
        for p in running:
            p.wait()
    return {"processes": processes, "all_ready_s": round(ready, 1),
            "seconds": [r["seconds"] for r in rows], "cpu_seconds": [r["cpu_seconds"] for r in rows],
            "peak_rss_mb": [r["peak_rss_mb"] for r in rows],
            "rss_mb_all_alive": [round(m[0] / 2**20) for m in memory],
            "uss_mb_all_alive": [round((m[1] or 0) / 2**20) for m in memory],
            "pss_mb_all_alive": [round((m[2] or 0) / 2**20) for m in memory],
            "total_pss_mb": round(sum(m[2] or 0 for m in memory) / 2**20)}


def measure_index(root, processes=8, repeat=2, parsing_together=0):
    """Every part, in fresh processes: one JSON row each (printed as it comes)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="litepose-index-cache-") as scratch:
        cache = os.path.join(scratch, "single")
        print("== build (first process of a run)", flush=True)
        rows.append({"part": "build", **measure_one(root, cache)})
        print(json.dumps(rows[-1]), flush=True)
        for run in range(repeat):
            for part in ("parse", "load"):
                print(f"== {part} ({run + 1}/{repeat})", flush=True)
                rows.append({"part": part, **measure_one(root, cache if part == "load" else None)})
                print(json.dumps(rows[-1]), flush=True)
        together = os.path.join(scratch, "together")
        for state in ("empty cache", "built cache"):
            print(f"== together: {processes} processes, {state}", flush=True)
            rows.append({"part": "together", "cache": state,
                         **measure_together(root, together, processes)})
            print(json.dumps(rows[-1]), flush=True)
        if parsing_together:
            print(f"== together: {parsing_together} processes, no cache", flush=True)
            row = measure_together(root, None, parsing_together)
            rows.append({"part": "together", "cache": "none", **row})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a dataset in COCO layout (make_synthetic_dataset --coco-scale)")
    parser.add_argument("--processes", type=int_range(1, 64), default=8, help="processes of 'together'")
    parser.add_argument("--repeat", type=int_range(1, 20), default=2, help="runs of 'parse' and 'load', alternated")
    parser.add_argument("--parsing-together", type=int_range(0, 64), default=0,
                        help="also start this many processes at once without a cache (each peaks near 1.1 GiB "
                             "above its imports at COCO's size; default 0: not run)")
    parser.add_argument("--output", help="append the JSON lines to this file")
    args = parse_args(parser, argv)
    if not os.path.isdir(args.root):
        raise DataError(f"dataset root not found: {args.root}")
    rows = measure_index(args.root, args.processes, args.repeat, args.parsing_together)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.output:
        with open(args.output, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({**row, "date": date}) + "\n")
    return 0


if __name__ == "__main__":
    run_cli(main)
