#!/usr/bin/env python
"""Time LitePose-XS/S/M/L beside YOLO11n-pose and YOLOv8n-pose in ONNX Runtime and OpenVINO.

    python tools/compare_alternatives.py --output-dir bench/alternatives [--plot docs/alternatives.png] \
        [--runtimes onnx openvino] [--threads 1 2] [--repeats 20] [--litepose XS S M L] \
        [--yolo yolo11n-pose yolov8n-pose] [--yolo-sizes 640 litepose]

Every network has random weights (latency does not depend on them) and BN folded; YOLO is built
from the model definitions shipped in ultralytics, kept offline (YOLO_OFFLINE=1: nothing is
downloaded). YOLO runs at 640 and at LitePose's input sizes ('litepose'). All networks and
runtimes are interleaved round by round. Writes DIR/alternatives.md (times beside the published
COCO AP, with its source), DIR/alternatives.json and the plot of AP against latency (default
DIR/alternatives.png). Needs the optional packages ultralytics and openvino.
"""

import argparse
import os

from litepose.utils.cli import THREADS, int_range, parse_args, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    import datetime
    import json
    import platform

    import importlib.util

    spec = importlib.util.spec_from_file_location("alternatives", os.path.join(REPO, "tools", "alternatives.py"))
    alternatives = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(alternatives)  # the tools' own module beside this script
    LITEPOSE_MODELS, PUBLISHED_AP, YOLO_MODELS = alternatives.LITEPOSE_MODELS, alternatives.PUBLISHED_AP, alternatives.YOLO_MODELS
    build_candidates, markdown, plot = alternatives.build_candidates, alternatives.markdown, alternatives.plot
    time_candidates = alternatives.time_candidates
    from litepose.deploy.formats import require, versions
    from litepose.utils.io import atomic_write_text, check_output_file, ensure_writable_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="where the table and the plot go")
    parser.add_argument("--plot", metavar="PNG", default=None, help="plot path (default: DIR/alternatives.png)")
    parser.add_argument("--runtimes", nargs="+", choices=("onnx", "openvino"), default=["onnx", "openvino"],
                        help="runtimes to time")
    parser.add_argument("--threads", type=THREADS, nargs="+", default=[1, 2], help="intra-op thread counts")
    parser.add_argument("--repeats", type=int_range(1, 100_000), default=20, help="timed rounds per thread count")
    parser.add_argument("--litepose", nargs="*", choices=LITEPOSE_MODELS, default=list(LITEPOSE_MODELS),
                        help="LitePose architectures")
    parser.add_argument("--yolo", nargs="*", choices=YOLO_MODELS, default=list(YOLO_MODELS), help="YOLO pose models")
    parser.add_argument("--yolo-sizes", nargs="+", default=["640", "litepose"],
                        help="YOLO input sizes: numbers, or 'litepose' for every LitePose input size")
    args = parse_args(parser, argv)
    if args.repeats < 1 or any(t < 1 for t in args.threads):
        parser.error("--repeats and --threads must be at least 1")
    for item in args.yolo_sizes:
        if item != "litepose" and (not item.isdigit() or int(item) % 32 or int(item) <= 0):
            parser.error(f"--yolo-sizes: {item!r} is neither 'litepose' nor a positive multiple of 32")
    for runtime in args.runtimes:
        require(runtime, "timing")
    ensure_writable_dir(args.output_dir)
    plot_path = args.plot or os.path.join(args.output_dir, "alternatives.png")
    check_output_file(plot_path, force=True, what="--plot")  # replaced on every run, as the table is

    candidates = build_candidates(REPO, args.yolo, args.litepose, args.yolo_sizes)
    time_candidates(candidates, args.runtimes, args.threads, args.repeats)
    table = markdown(candidates, args.runtimes, args.threads)
    found = versions()
    try:
        from importlib import metadata

        found["ultralytics"] = metadata.version("ultralytics")
    except Exception:
        pass
    sources = sorted({source for _, _, source in PUBLISHED_AP.values()})
    text = "\n".join([
        "# LitePose beside YOLO-pose: measured latency, published accuracy", "",
        f"- date {datetime.date.today().isoformat()}; machine {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; " + ", ".join(f"{k} {v}" for k, v in found.items()),
        f"- network only, 1x3xSxS float32, random weights, BN folded; median (p90) of {args.repeats} interleaved "
        "rounds", "- AP: COCO val2017 keypoint AP as published (not measured here): " + "; ".join(sources), "",
        table, ""])
    atomic_write_text(os.path.join(args.output_dir, "alternatives.md"), text)
    record = [{"model": c.name, "input_size": c.size, "gmacs": c.gmacs, "published_ap": c.published_ap,
               "latency": [{"runtime": r, "threads": t, "median_ms": v.median_ms, "p90_ms": v.p90_ms,
                            "samples_s": v.samples} for (r, t), v in c.timings.items()]} for c in candidates]
    atomic_write_text(os.path.join(args.output_dir, "alternatives.json"), json.dumps(record, indent=1) + "\n")
    os.makedirs(os.path.dirname(os.path.abspath(plot_path)), exist_ok=True)
    plot(candidates, args.runtimes, args.threads, plot_path)
    print(table)
    print(f"wrote {os.path.join(args.output_dir, 'alternatives.md')}, alternatives.json, {plot_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
