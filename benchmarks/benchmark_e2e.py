#!/usr/bin/env python
"""End to end, frame in and people out: frames per second and per-stage times of PoseEstimator.

    python -m benchmarks.benchmark_e2e [--models XS S M L] [--backends onnx torch] [--threads 1 2]
        [--preset realtime|accurate] [--input-size N] [--frames 30] [--repeat 2] [--frame-size 640x480]
        [--max-people N|none] [--max-detections N] [--dataset coco|crowd_pose]
        [--checkpoint CKPT --cfg CFG.yaml --arch ARCH.json] [--json OUT.json]

Each model is LitePose-XS/S/M/L (``mobile_configs/search-*.json`` with
``experiments/<dataset>/mobilenet/mobile.yaml``) with random weights of a trained network's
scale (``realistic_weights_`` of ``litepose.deploy``): the worst case of decoding, since about half
of every heatmap passes the detection threshold. ``--checkpoint`` adds a trained model
(``--cfg``, ``--arch``). Backends: PyTorch eager (``torch``) and ONNX Runtime on the
BN-folded export with dynamic sizes (``onnx``); ``--threads`` sets PyTorch's, ONNX Runtime's
and OpenCV's thread counts. Frames are synthetic-dataset pictures (``data.synthetic.make_image``)
resized to ``--frame-size``, BGR as a camera gives them.

Per configuration: ``--repeat`` passes of ``--frames`` timed frames after two untimed ones;
printed are frames per second (over the whole call) and the median, 99th percentile and
maximum of every stage (preprocess = colour order, resize, normalisation; network; aggregate =
flip / resize / averaging; grouping = grouping and mapping back), and the share of pre- plus
post-processing in the network's time (per frame: median and maximum). A warning says when
the passes' medians differ by more than their spread (the largest interquartile range of a
pass): the machine was busier in one pass than in another.
"""

import argparse
import os
import statistics
import sys

from litepose.cli import SEED, THREADS, input_size, int_range
from benchmarks.rows import kept_on_interrupt, write_rows

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("preprocess", "network", "aggregate", "grouping")
MODELS = {"XS": "search-XS", "S": "search-S", "M": "search-M", "L": "search-L"}
MAX_FRAMES = 10_000
MAX_FRAME_BYTES = 2 * 2**30  # the generated frames are held in memory


def frame_size(text):
    """An argparse ``type`` for a frame size ``WxH``: ``(w, h)``, within the image limits every
    image reader applies (``litepose.data.image_header.size_problem``)."""
    from litepose.data.image_header import size_problem

    parts = str(text).lower().split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 640x480, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"a frame needs at least 1x1 pixels, got {text!r}")
    problem = size_problem(width, height)
    if problem:
        raise argparse.ArgumentTypeError(f"frames of {problem}")
    return width, height


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["XS"], metavar="NAME",
                        help="LitePose sizes among XS S M L (default XS); 'none' with --checkpoint only")
    parser.add_argument("--backends", nargs="+", default=["onnx", "torch"], choices=("onnx", "torch"))
    parser.add_argument("--threads", nargs="+", type=THREADS, default=[1], help="thread counts to run (default 1)")
    parser.add_argument("--preset", choices=("realtime", "accurate"), default="realtime")
    parser.add_argument("--input-size", type=input_size, default=None,
                        help="short side of the network input (default: each architecture's img_size)")
    parser.add_argument("--frames", type=int_range(1, MAX_FRAMES), default=30,
                        help=f"timed frames per pass (held in memory: at most {MAX_FRAMES} and {MAX_FRAME_BYTES // 2**30} GiB)")
    parser.add_argument("--repeat", type=int_range(1, 1000), default=2, help="passes per configuration")
    parser.add_argument("--frame-size", type=frame_size, default=(640, 480), metavar="WxH",
                        help="WxH of the frames (default 640x480)")
    parser.add_argument("--max-people", default="preset",
                        help="people cap of the decoding: a number, 'none', or 'preset' (the preset's)")
    parser.add_argument("--max-detections", default="preset",
                        help="detections per joint into matching: a number, 'none', or 'preset' (the preset's)")
    parser.add_argument("--dataset", choices=("coco", "crowd_pose"), default="coco")
    parser.add_argument("--checkpoint", help="also time this trained model (with --cfg and --arch)")
    parser.add_argument("--cfg", help="config of --checkpoint")
    parser.add_argument("--arch", help="architecture of --checkpoint")
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--json", metavar="OUT.json", help="write the figures here (refuses an existing file)")
    return parser


def _frames(count, size, seed):
    import cv2
    import numpy as np

    from litepose.data.synthetic import make_image

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        rgb, _ = make_image(rng)
        frames.append(cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)[:, :, ::-1].copy())
    return frames


def _stats(values):
    import numpy as np

    values = np.asarray(values, np.float64) * 1000.0
    return {"median": float(np.median(values)), "p99": float(np.percentile(values, 99)), "max": float(values.max())}


def _realistic_weights(model, size):
    from litepose.deploy.latency import realistic_weights_

    return realistic_weights_(model, size)


def _models(args):
    """``(name, cfg, model)`` with random weights (or the checkpoint's)."""
    from litepose.arch import default_input_size
    from litepose.config import load_config
    from litepose.models import build_model, load_model

    for name in args.models:
        if name.lower() == "none":
            continue
        key = name.upper().replace("LITEPOSE-", "")
        if key not in MODELS:
            raise SystemExit(f"unknown model {name!r} (known: {', '.join(MODELS)})")
        cfg = load_config(os.path.join(REPO_ROOT, "experiments", args.dataset, "mobilenet", "mobile.yaml"))
        arch = os.path.join(REPO_ROOT, "mobile_configs", MODELS[key] + ".json")
        model = build_model(cfg, arch)
        size = default_input_size(cfg, model, args.input_size)
        yield f"LitePose-{key} (random weights)", cfg, _realistic_weights(model, size)
    if args.checkpoint:
        if not args.cfg:
            raise SystemExit("--checkpoint needs --cfg (and --arch unless the config names MODEL.ARCH)")
        cfg = load_config(args.cfg)
        yield f"{os.path.basename(args.checkpoint)} (trained)", cfg, load_model(cfg, args.arch, args.checkpoint)


def _estimator(backend, cfg, model, threads, args):
    import torch

    from litepose import PoseEstimator
    from litepose.deploy import export_onnx, fuse_bn
    from litepose.arch import default_input_size

    size = default_input_size(cfg, model, args.input_size)
    overrides = {}
    for key in ("max_people", "max_detections"):
        value = getattr(args, key)
        if value != "preset":
            overrides[key] = None if value.lower() == "none" else int(value)
    if backend == "torch":
        torch.set_num_threads(threads)
        return PoseEstimator.from_model(model, cfg, preset=args.preset, device="cpu", input_size=size, **overrides)
    data = export_onnx(fuse_bn(model), size, dynamic=True)
    return PoseEstimator.from_onnx(data, cfg=cfg, input_size=size, preset=args.preset, threads=threads, **overrides)


def time_estimator(estimator, frames, passes, progress=True, description="frames"):
    """Per pass: ``{stage: [seconds per frame]}`` plus ``total`` (the whole call)."""
    import time

    from tqdm import tqdm

    for frame in frames[:2]:
        estimator(frame)
    results = []
    with tqdm(total=passes * len(frames), desc=description, unit="frame", disable=not progress, leave=False,
              dynamic_ncols=True) as bar:
        for _ in range(passes):
            times = {stage: [] for stage in STAGES + ("total",)}
            for frame in frames:
                start = time.perf_counter()
                people = estimator(frame)
                times["total"].append(time.perf_counter() - start)
                for stage in STAGES:
                    times[stage].append(people.times[stage])
                bar.update(1)
            results.append(times)
    return results


def summarise(passes):
    """Figures of the passes of one configuration, and a warning when they disagree."""
    import numpy as np

    merged = {stage: sum((p[stage] for p in passes), []) for stage in passes[0]}
    overhead = [(pre + agg + grp) / net for pre, net, agg, grp in
                zip(merged["preprocess"], merged["network"], merged["aggregate"], merged["grouping"])]
    medians = [statistics.median(p["total"]) for p in passes]
    spread = max(float(np.percentile(p["total"], 75) - np.percentile(p["total"], 25)) for p in passes)
    summary = {
        "frames": len(merged["total"]),
        "fps": len(merged["total"]) / sum(merged["total"]),
        "stages_ms": {stage: _stats(values) for stage, values in merged.items()},
        "overhead_share": {"median": float(np.median(overhead)), "max": float(np.max(overhead))},
        "pass_median_ms": [1000 * m for m in medians],
        "warning": None,
    }
    if len(passes) > 1 and max(medians) - min(medians) > spread:
        summary["warning"] = (f"passes disagree: medians {', '.join(f'{1000 * m:.1f}' for m in medians)} ms differ by "
                              f"more than their spread ({1000 * spread:.1f} ms); the machine's load changed")
    return summary


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    size = args.frame_size
    if args.frames * size[0] * size[1] * 3 > MAX_FRAME_BYTES:
        parser.error(f"--frames {args.frames} of {size[0]}x{size[1]} would hold more than "
                     f"{MAX_FRAME_BYTES // 2**30} GiB of frames in memory; give fewer or smaller frames")
    for key in ("max_people", "max_detections"):
        value = getattr(args, key)
        if value not in ("preset", "none") and not (value.isdigit() and int(value) > 0):
            parser.error(f"--{key.replace('_', '-')} must be a positive number, 'none' or 'preset', got {value!r}")
    if args.json:
        from litepose.errors import LitePoseError
        from litepose.utils.io import check_output_file

        try:
            check_output_file(args.json, what="--json", force_option=None)  # the tool never overwrites
        except LitePoseError as exc:
            parser.error(str(exc))
    unknown = [n for n in args.models if n.lower() != "none" and n.upper().replace("LITEPOSE-", "") not in MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r} (known: {', '.join(MODELS)})")
    frames = _frames(args.frames, size, args.seed)
    with kept_on_interrupt([], args.json) as rows:  # Ctrl-C: the finished rows are kept
        _run(args, frames, size, rows)
    print(f"(preset {args.preset}, {args.frames} frames x {args.repeat} passes, frames {size[0]}x{size[1]}, ms)")
    write_rows(args.json, rows)
    return rows


def _run(args, frames, size, rows):
    """Measure every configuration, appending its row to ``rows`` as soon as it is finished."""
    import cv2

    header = (f"{'model':34} {'backend':11} {'thr':>3} {'fps':>6} | " +
              " | ".join(f"{s[:9]:>9} med/p99/max" for s in STAGES) + " | pre+post/network med, max")
    print(header)
    for name, cfg, model in _models(args):
        for backend in args.backends:
            for threads in args.threads:
                cv2.setNumThreads(threads)
                estimator = _estimator(backend, cfg, model, threads, args)
                passes = time_estimator(estimator, frames, args.repeat, progress=not args.no_progress,
                                        description=f"{name} {backend} {threads}t")
                summary = summarise(passes)
                row = {"model": name, "backend": backend, "threads": threads, "preset": args.preset,
                       "input_size": estimator.settings.input_size, "frame_size": list(size),
                       "max_people": estimator.limits.max_people, "max_detections": estimator.limits.max_detections,
                       **summary}
                rows.append(row)
                stages = " | ".join("{median:6.1f}/{p99:6.1f}/{max:6.1f}".format(**summary["stages_ms"][s])
                                    for s in STAGES)
                share = summary["overhead_share"]
                print(f"{name:34} {backend:11} {threads:3d} {summary['fps']:6.1f} | {stages} | "
                      f"{100 * share['median']:5.1f} %, {100 * share['max']:5.1f} %", flush=True)
                if summary["warning"]:
                    print(f"warning: {name} {backend} {threads} thread(s): {summary['warning']}", file=sys.stderr)

if __name__ == "__main__":
    from litepose.cli import run_cli

    run_cli(lambda argv: main(argv) and 0)  # main returns the rows; the command exits 0
