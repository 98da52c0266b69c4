"""INT8 post-training quantisation for ONNX Runtime and OpenVINO, with its AP and latency cost.

    litepose quantize --cfg experiments/synthetic/quickstart.yaml \
        TEST.MODEL_FILE output/coco_kpt/pose_mobilenet/quickstart/final_state.pth.tar \
        --output-dir int8/ [--runtime onnx openvino] [--calibration-images 300] [--fp16] \
        [--exclude-op-types ConvTranspose] [--ignored-types ConvolutionBackpropData] \
        [--threads 1 2] [--latency-size 128 256] [--repeats 50] [--limit N] [--no-evaluate] [--force]

BatchNorm is folded first. Calibration runs on training images preprocessed as in training.
ONNX Runtime: static QDQ (uint8 activations, int8 per-channel weights); OpenVINO: NNCF. Writes
int8/litepose-int8.onnx and int8/litepose-int8.xml + .bin (and with --fp16
litepose-fp16.onnx), then int8/report.md and report.json: for PyTorch eager and each runtime in
float32, INT8 (and float16 / bfloat16 with --fp16), the AP of ``litepose valid``'s evaluation
(litepose.evaluation.evaluate, the config's test split and settings: the same AP ``litepose valid`` gives
the written files), the largest output difference relative to PyTorch, and the network's median
and p90 latency on a 1x3xSxS input, all variants interleaved round by round.

Each INT8 (and float16) model is written as soon as it is made, as ``litepose export`` writes
an export: with the same metadata (dataset, joints, input size, test settings, architecture,
checkpoint; and how it was quantised and calibrated), run in its runtime against PyTorch first,
moved into place only then. So ``litepose valid TEST.MODEL_FILE int8/litepose-int8.onnx``,
``litepose demo --model int8/litepose-int8.xml`` and ``PoseEstimator.from_exported`` need nothing
else. Ctrl-C stops the run with one line and exit status 130, keeping the models written.

The same command as a script, from the repository: ``python tools/quantize.py ...``.
"""

import argparse
import os

from litepose.cli import (POSITIVE, THREADS, DefaultsShown, config_parser, input_size, int_range, load_cli_config,
                                parse_args, regex, run_inputs)
from litepose.commands.export import SHARED_IMAGES

# The models written into --output-dir, by build_variants' key (OpenVINO's .bin beside its .xml).
MODEL_FILES = {"onnx_int8": "litepose-int8.onnx", "onnx_fp16": "litepose-fp16.onnx", "openvino_int8": "litepose-int8.xml"}
# Calibration images are held in memory as float32 [N, 3, S, S]: a count and a byte limit.
MAX_CALIBRATION_IMAGES = 10_000
MAX_CALIBRATION_BYTES = 4 * 2**30


def main(argv=None):
    import datetime
    import json
    import platform

    from litepose.utils.io import atomic_write_text, check_output_file

    parser = config_parser(__doc__.splitlines()[0])
    parser.formatter_class = DefaultsShown
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="where the models and the report go")
    parser.add_argument("--runtime", nargs="+", choices=("onnx", "openvino"), default=["onnx", "openvino"],
                        help="runtimes to quantise for")
    parser.add_argument("--calibration-images", type=int_range(1, MAX_CALIBRATION_IMAGES), default=300, metavar="N",
                        help=f"training images to calibrate on (at most {MAX_CALIBRATION_IMAGES}: they are held in memory)")
    parser.add_argument("--fp16", action="store_true", help="also compare float16 (ONNX, OpenVINO) and bfloat16 (OpenVINO)")
    parser.add_argument("--exclude-op-types", nargs="*", default=[], metavar="OP",
                        help="ONNX op types kept in float (e.g. ConvTranspose)")
    parser.add_argument("--exclude-nodes", nargs="*", default=[], metavar="NAME", help="ONNX node names kept in float")
    parser.add_argument("--exclude-patterns", nargs="*", default=[], metavar="REGEX", type=regex,
                        help="ONNX nodes whose name matches kept in float (e.g. final_ for the output layers)")
    parser.add_argument("--ignored-types", nargs="*", default=[], metavar="OP",
                        help="OpenVINO op types NNCF keeps in float (e.g. ConvolutionBackpropData, GroupConvolution)")
    parser.add_argument("--ignored-names", nargs="*", default=[], metavar="NAME", help="OpenVINO op names kept in float")
    parser.add_argument("--ignored-patterns", nargs="*", default=[], metavar="REGEX", type=regex,
                        help="OpenVINO ops whose name matches kept in float (e.g. '.*final_.*')")
    parser.add_argument("--threads", type=THREADS, nargs="+", default=[1, 2], help="intra-op threads of the latency runs")
    parser.add_argument("--latency-size", type=input_size, nargs="+", default=None,
                        help="square input sizes of the latency runs (default: the model's input size)")
    parser.add_argument("--repeats", type=int_range(1, 100_000), default=50, help="timed rounds per latency setting")
    parser.add_argument("--limit", type=POSITIVE, default=None, metavar="N", help="evaluate the first N test images only")
    parser.add_argument("--evaluate", action=argparse.BooleanOptionalAction, default=True,
                        help="measure AP (--no-evaluate: latency and output error only)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    args = parse_args(parser, argv)
    # The parser imports no PyTorch (--help and bad arguments answer at once); the work does.
    from litepose.arch import default_input_size
    from litepose.deploy.export import ExportError
    from litepose.deploy.formats import check_images, export_checked, output_files, require, versions
    from litepose.deploy.quantize import (CHECK_TOLERANCE, build_variants, calibration_images, measure_errors,
                                          measure_latency, report_table, save_model)
    from litepose.models import load_model

    models = {key: os.path.join(args.output_dir, name) for key, name in MODEL_FILES.items()
              if key.split("_")[0] in args.runtime and (args.fp16 or not key.endswith("fp16"))}
    paths = [p for key, path in models.items() for p in output_files(key.split("_")[0], path)]
    paths += [os.path.join(args.output_dir, name) for name in ("report.md", "report.json")]
    cfg = load_cli_config(args)
    for path in paths:
        check_output_file(path, force=args.force, inputs=run_inputs(args, cfg))
    for runtime in args.runtime:
        require(runtime, "quantisation")
    if "openvino" in args.runtime:
        try:
            import nncf  # noqa: F401
        except Exception as exc:
            raise ExportError(f"OpenVINO quantisation needs the nncf package ({exc}): pip install nncf") from None

    model = load_model(cfg, args.superconfig)
    size = default_input_size(cfg, model)
    sizes = args.latency_size or [size]
    held = args.calibration_images * 3 * size * size * 4
    if held > MAX_CALIBRATION_BYTES:
        raise ExportError(f"--calibration-images {args.calibration_images} at {size}x{size} would hold "
                          f"{held / 2**30:.1f} GiB of images in memory (limit {MAX_CALIBRATION_BYTES / 2**30:.0f} GiB); "
                          "give fewer")
    image_dir = SHARED_IMAGES if os.path.isdir(SHARED_IMAGES) else None
    check, source = check_images(size, 4, image_dir)
    print(f"calibration: {args.calibration_images} training images at {size}x{size}")
    calibration = {"split": cfg.DATASET.TRAIN, "augment": True, "seed": 0}
    images = calibration_images(cfg, size, args.calibration_images, seed=calibration["seed"],
                                augment=calibration["augment"])
    os.makedirs(args.output_dir, exist_ok=True)

    def keep(key, artefact, quantization):
        """Write a quantised model at once (an interruption keeps it) through the exporter: with
        its metadata, checked in its runtime against PyTorch, moved into place."""
        fmt = key.split("_")[0]
        print(f"{MODEL_FILES[key]}: {quantization['precision'] if quantization else 'float16'} for {fmt}")
        report = export_checked(fmt, model, models[key], size, cfg=cfg,
                                checkpoint=cfg.TEST.MODEL_FILE, half=key.endswith("fp16"), dynamic=True,
                                tolerance=CHECK_TOLERANCE, force=args.force, image_dir=image_dir, num_images=len(check),
                                inputs=run_inputs(args, cfg), write=lambda path: save_model(artefact, path),
                                quantization=quantization)
        for line in report.lines():
            print(f"  {line}")

    variants, artefacts = build_variants(model, images, args.runtime, args.fp16, args.exclude_op_types,
                                         args.exclude_nodes, args.ignored_types, args.ignored_names,
                                         exclude_patterns=args.exclude_patterns,
                                         ignored_patterns=args.ignored_patterns, built=keep, calibration=calibration)
    measure_errors(model, variants, check.numpy())
    for variant in variants:
        print(f"max |{variant.label} {variant.precision} - PyTorch| / max |PyTorch| on {source}: {variant.error:.3g}")
    if args.evaluate:
        measure_ap(cfg, variants, size, args.limit, threads=max(args.threads))
    keys = []
    for threads in args.threads:
        for latency_size in sizes:
            print(f"timing {len(variants)} variants at {latency_size}x{latency_size}, {threads} thread(s), "
                  f"{args.repeats} rounds")
            measure_latency(variants, latency_size, threads, args.repeats)
            keys.append((latency_size, threads))

    found = versions()
    header = [f"# INT8 and float16 against float32: {cfg.MODEL.NAME}, {cfg.TEST.MODEL_FILE}", "",
              f"- date: {datetime.date.today().isoformat()}; machine: {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores (`{platform.platform()}`)",
              "- packages: " + ", ".join(f"{k} {v}" for k, v in found.items()),
              f"- calibration: {len(images)} training images at {size}x{size}; ONNX Runtime QDQ u8/s8 per-channel"
              + (f", kept in float: {', '.join(args.exclude_op_types + args.exclude_nodes + args.exclude_patterns)}"
                 if args.exclude_op_types or args.exclude_nodes or args.exclude_patterns else "")
              + "; OpenVINO NNCF (performance preset)"
              + (f", ignored: {', '.join(args.ignored_types + args.ignored_names + args.ignored_patterns)}"
                 if args.ignored_types or args.ignored_names or args.ignored_patterns else ""),
              f"- AP: valid.py's evaluation of the test split ({cfg.DATASET.TEST}, "
              f"{'all images' if args.limit is None else f'first {args.limit} images'}, flip "
              f"{bool(cfg.TEST.FLIP_TEST)}), {max(args.threads)} threads" if args.evaluate else "- AP: not measured",
              f"- latency: network only, 1x3xSxS, median (p90) of {args.repeats} interleaved rounds", ""]
    table = report_table(variants, keys)
    atomic_write_text(os.path.join(args.output_dir, "report.md"), "\n".join(header) + "\n" + table + "\n")
    record = {"model_file": cfg.TEST.MODEL_FILE, "config": args.cfg, "calibration_images": len(images),
              "versions": found, "date": datetime.date.today().isoformat(), "variants": [
                  {"runtime": v.runtime, "precision": v.precision, "ap": v.ap, "max_relative_error": v.error,
                   "latency": [{"input_size": k[0], "threads": k[1], "median_ms": v.timings[k].median_ms,
                                "p90_ms": v.timings[k].p90_ms, "samples_s": v.timings[k].samples}
                               for k in keys]} for v in variants]}
    atomic_write_text(os.path.join(args.output_dir, "report.json"), json.dumps(record, indent=1) + "\n")
    print(table)
    print(f"wrote {', '.join(os.path.join(args.output_dir, n) for n in ['report.md', 'report.json'])}")
    return 0


def measure_ap(cfg, variants, input_size, limit=None, threads=None, log=print, progress=True):
    """valid.py's AP of each variant (``litepose.evaluation.evaluate`` at ``input_size``, the
    config's test settings). PyTorch runs with ``threads`` intra-op threads; the caller's thread
    count is put back."""
    import torch

    from litepose.evaluation import evaluate

    previous = torch.get_num_threads()
    try:
        for variant in variants:
            network = variant.make(threads)
            torch.set_num_threads(threads if variant.runtime == "pytorch" and threads else previous)
            result = evaluate(cfg, network, limit=limit, device="cpu", input_size=input_size, progress=progress)
            variant.ap = float(result.ap)
            log(f"AP {variant.label} {variant.precision}: {variant.ap:.4f}")
    finally:
        torch.set_num_threads(previous)

