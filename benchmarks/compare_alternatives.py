"""End to end beside the alternatives: LitePose, YOLO-pose and RTMO, frame in and people out.

    python -m benchmarks.compare_alternatives --output-dir bench/alternatives [--plot docs/alternatives_e2e.png]
        [--threads 1 2] [--rounds 16] [--litepose XS S M L] [--presets accurate realtime]
        [--yolo yolo11n-pose yolo11s-pose yolov8n-pose yolov8s-pose] [--rtmo rtmo-t rtmo-s]
        [--runtimes onnx openvino] [--kinds annotated random dense] [--data ../shared/data] [--crowds 4]

Every model runs in ONNX Runtime (with ``--runtimes onnx openvino`` in OpenVINO too, the same
exports; float32, CPU, ``--threads`` intra-op threads) on the same 640x480 frames, interleaved
round by round; each row gives the median per-frame network, pre- and post-processing times,
the median and 99th percentile of their sum, frames per second, and the published COCO AP with
its protocol (``--from-json`` draws a finished run's again). Post-processing is timed on the
random-weight network's
outputs and on outputs drawn at the frames' annotated people (``benchmarks/alternatives.py``
says how). Writes DIR/alternatives.md, DIR/alternatives.json and the plot of AP against the end-to-end
time (default DIR/alternatives.png), after each thread count (an interrupted run keeps the
finished thread counts). The YOLO rows need ``ultralytics`` (installed with --no-deps), the RTMO
rows mmpose with mmcv-lite, mmengine and mmdet; a model family whose packages are missing is
left out with one line saying why.
"""

import argparse
import os

from litepose.cli import THREADS, DefaultsShown, int_range, parse_args, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("annotated", "random", "dense")


def _parser(alternatives):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsShown)
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="where the table, JSON and plot go")
    parser.add_argument("--plot", metavar="PNG", default=None, help="plot path (default: DIR/alternatives.png)")
    parser.add_argument("--runtimes", nargs="+", choices=("onnx", "openvino"), default=["onnx"],
                        help="runtimes of the networks (the same ONNX exports; pre- and post-processing unchanged)")
    parser.add_argument("--threads", type=THREADS, nargs="+", default=[1, 2], help="intra-op thread counts")
    parser.add_argument("--rounds", type=int_range(1, 100_000), default=16,
                        help="timed rounds (frames per model) per thread count")
    parser.add_argument("--litepose", nargs="*", choices=alternatives.LITEPOSE_MODELS,
                        default=list(alternatives.LITEPOSE_MODELS), help="LitePose architectures")
    parser.add_argument("--presets", nargs="+", choices=("accurate", "realtime"), default=["accurate", "realtime"],
                        help="LitePose presets: accurate = flip test (the published AP's protocol), realtime = no flip")
    parser.add_argument("--yolo", nargs="*", choices=alternatives.YOLO_MODELS, default=list(alternatives.YOLO_MODELS),
                        help="YOLO pose models (at 640)")
    parser.add_argument("--rtmo", nargs="*", choices=alternatives.RTMO_MODELS, default=list(alternatives.RTMO_MODELS),
                        help="RTMO models (mmpose)")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(REPO), "shared", "data"),
                        help="folder holding coco_mini (real photos); absent: synthetic crowds only")
    parser.add_argument("--crowds", type=int_range(0, 1000), default=4,
                        help="synthetic crowd frames (6 to 14 people each)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                        help="network outputs post-processed: annotated (a trained model's look), random (the "
                             "random-weight network's own), dense (YOLO: every anchor above the threshold)")
    parser.add_argument("--from-json", metavar="FILE",
                        help="draw the table and plot of a finished run's alternatives.json again, timing nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    import datetime
    import json
    import platform
    import tempfile

    import cv2
    import torch

    from benchmarks import alternatives as alt
    from litepose.deploy.formats import versions
    from litepose.utils.io import atomic_write_text, check_output_file, ensure_writable_dir

    parser = _parser(alt)
    args = parse_args(parser, argv)
    if "openvino" in args.runtimes:
        from litepose.deploy.formats import require

        require("openvino", "--runtimes openvino")
    ensure_writable_dir(args.output_dir)
    plot_path = args.plot or os.path.join(args.output_dir, "alternatives.png")
    check_output_file(plot_path, force=True, what="--plot")  # replaced on every run, as the table is
    if args.from_json:
        from litepose.utils.io import load_json

        try:
            results = alt.from_json(load_json(args.from_json, what="--from-json"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            parser.error(f"--from-json {args.from_json}: not an alternatives.json of this tool ({exc!r})")
        for kind in KINDS:
            if alt.markdown(results, kind).count("\n") > 1:
                print(f"## Post-processing on {kind} outputs\n\n{alt.markdown(results, kind)}\n")
        os.makedirs(os.path.dirname(os.path.abspath(plot_path)), exist_ok=True)
        alt.plot(results, plot_path)
        print(f"wrote {plot_path}")
        return 0
    try:
        frames = alt.comparison_frames(args.data, args.crowds)
    except alt.CompareError as exc:
        parser.error(str(exc))
    print(f"{len(frames)} frames: " + ", ".join(f.name for f in frames), flush=True)

    results, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="litepose-alternatives-") as work:
        exports = {}
        for arch in args.litepose:
            exports[arch] = alt.litepose_export(arch, REPO)
            print(f"LitePose-{arch}: {exports[arch][1]} px, {exports[arch][2]:.2f} GMACs per pass", flush=True)
        yolo_files = {}
        for name in args.yolo:
            try:
                yolo_files[name] = alt.yolo_export(name, work)
            except alt.CompareError as exc:
                skipped.append(f"{name}: {exc}")
                break
        for count in args.threads:
            torch.set_num_threads(count)  # Ultralytics' and mmpose's pre- and post-processing run in torch
            cv2.setNumThreads(count)
            rows = []  # each row decodes only the --kinds it has
            for runtime in args.runtimes:
                def place(row, model):
                    rows.append(alt.use_openvino(row, model, count) if runtime == "openvino" else row)

                for arch, (data, size, gmacs, cfg) in exports.items():
                    for preset in args.presets:
                        place(alt.LitePoseRow(arch, preset, data, size, gmacs, cfg, count), data)
                for name, (path, gmacs) in yolo_files.items():
                    place(alt.YoloRow(name, path, gmacs, count, frames), path)
                for name in args.rtmo:
                    try:
                        place(alt.RtmoRow(name, count, work), None)
                    except alt.CompareError as exc:
                        if not any(s.startswith(name) for s in skipped):
                            skipped.append(f"{name}: {exc}")
            rows = [row.wanted(args.kinds) for row in rows]
            rows = [row for row in rows if row.kinds]
            alt.time_rows(rows, frames, args.rounds, progress=not args.no_progress,
                          description=f"{count} thread(s), {len(rows)} models")
            results += [{"row": row, "threads": count} for row in rows]
            _write(args, alt, results, skipped, frames, plot_path, versions, atomic_write_text, json, datetime,
                   platform)
    for line in skipped:
        print(f"left out: {line}")
    print(alt.markdown(results, "annotated"))
    print(f"wrote {os.path.join(args.output_dir, 'alternatives.md')}, alternatives.json, {plot_path}")
    return 0


def _write(args, alt, results, skipped, frames, plot_path, versions, atomic_write_text, json, datetime, platform):
    found = versions()
    for package in ("ultralytics", "mmpose", "mmcv-lite", "mmengine"):
        try:
            from importlib import metadata

            found[package] = metadata.version(package)
        except Exception:
            pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    lines = ["# LitePose beside YOLO-pose and RTMO, end to end", "",
             f"- date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; machine "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores{load}; "
             + ", ".join(f"{k} {v}" for k, v in found.items()),
             f"- {len(frames)} frames of 640x480 ({', '.join(f.name for f in frames)}); {args.rounds} rounds per "
             "thread count, models interleaved; ms per frame (medians), p99 of the per-frame totals",
             "- ONNX Runtime float32 on the CPU, random weights; AP: COCO val2017 as published (not measured here)"]
    lines += [f"- left out: {line}" for line in skipped]
    for kind in KINDS:
        table = alt.markdown(results, kind)
        if table.count("\n") > 1:
            lines += ["", f"## Post-processing on {kind} outputs", "", table]
    atomic_write_text(os.path.join(args.output_dir, "alternatives.md"), "\n".join(lines) + "\n")
    atomic_write_text(os.path.join(args.output_dir, "alternatives.json"), json.dumps(alt.to_json(results), indent=1) + "\n")
    os.makedirs(os.path.dirname(os.path.abspath(plot_path)), exist_ok=True)
    alt.plot(results, plot_path)


if __name__ == "__main__":
    run_cli(main)
