"""Export a trained model to a runtime's format, with its metadata, checked against PyTorch on real images.

    litepose export --format onnx|openvino|tflite|ncnn|coreml|torchscript \
        --cfg experiments/coco/mobilenet/mobile.yaml --superconfig mobile_configs/search-XS.json \
        TEST.MODEL_FILE xs.pth [--output litepose-xs.onnx] [--input-size 256] [--fixed] [--fp16] [--force]

Outputs by format (default: beside the checkpoint, its name with these endings, so that no two
formats share a file): M.onnx; M.xml + M.bin (OpenVINO IR); M.tflite + M.litepose.json (LiteRT);
M.ncnn.param + M.ncnn.bin + M.ncnn.litepose.json (ncnn); M.mlpackage (Core ML ML program, a
folder); M.torchscript.pt (TorchScript). Every export carries its metadata (dataset, joints,
input size, normalisation, test settings, architecture, checkpoint and its sha256), so that
``PoseEstimator.from_exported(path)`` needs nothing else.

Input size: dynamic (any size; checked at --input-size and a second, non-square size) for onnx,
openvino, ncnn and torchscript; --fixed fixes it to --input-size (tflite and coreml are always
fixed). --input-size defaults to the architecture's img_size or DATASET.INPUT_SIZE, and is the
size the estimator runs a dynamic export at.

BatchNorm is folded into the convolutions first. The export runs in its own runtime on real
images (shared coco_mini, else synthetic ones) against the unfolded PyTorch model; above
--tolerance (largest difference relative to the largest PyTorch output) nothing is written.
Core ML cannot run on Linux and is checked structurally. Files are written atomically, never
over an existing one without --force. INT8: ``litepose quantize``.

The same command as a script, from the repository: ``python tools/export.py ...``.
"""

import os

from litepose.cli import (THREADS, DefaultsShown, config_parser, input_size, int_range, load_cli_config,
                                number_range, parse_args, run_inputs)

# The check's default images: the real fixtures beside the repository, when they are there
# (relative to the working folder, the repository root, as the configs' paths are).
SHARED_IMAGES = os.path.join("..", "shared", "data", "coco_mini", "images")


def main(argv=None):
    # The parser and the argument checks import no PyTorch (--help and bad arguments answer at
    # once, and without it); the exporter is imported once the arguments are good.
    from litepose.errors import LitePoseError
    from litepose.runtime.exported import DYNAMIC_FORMATS, FORMATS, HALF_FORMATS, export_option_problem

    parser = config_parser(__doc__.splitlines()[0])
    parser.formatter_class = DefaultsShown
    parser.add_argument("--format", required=True, choices=FORMATS, help="target runtime's format")
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--output", metavar="PATH", default=None,
                        help="file to write (default: the checkpoint's name with the format's ending)")
    parser.add_argument("--input-size", type=input_size, default=None,
                        help="square input size (default: the architecture's img_size or DATASET.INPUT_SIZE)")
    size_kind = parser.add_mutually_exclusive_group()
    size_kind.add_argument("--fixed", action="store_true",
                           help="fix the input to --input-size (frames are then letterboxed to it)")
    size_kind.add_argument("--dynamic", action="store_true",
                           help=f"any input size: the default for {', '.join(DYNAMIC_FORMATS)}")
    parser.add_argument("--fp16", action="store_true", help=f"float16 model ({', '.join(HALF_FORMATS)})")
    parser.add_argument("--opset", type=int_range(1, 100), default=17,
                        help="ONNX opset (onnx; one of those this PyTorch's exporter writes)")
    parser.add_argument("--tolerance", type=number_range(0), default=None,
                        help="largest accepted |export - PyTorch| / max |PyTorch| (default 1e-3, 3e-2 with --fp16)")
    parser.add_argument("--images", metavar="DIR", default=None,
                        help="images for the check (default: ../shared/data/coco_mini/images, else synthetic)")
    parser.add_argument("--num-images", type=int_range(1, 1000), default=2, help="images the check runs on")
    parser.add_argument("--time", type=int_range(0, 100_000), default=0, metavar="ROUNDS",
                        help="then time the export against PyTorch eager for ROUNDS interleaved rounds")
    parser.add_argument("--threads", type=THREADS, nargs="+", default=[1, 2], help="intra-op threads of --time")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    args = parse_args(parser, argv)
    # Every argument is checked before any work (the model is not even built yet): ranges by the
    # argparse types above, the rest here, one line each.
    if args.time and args.format == "coreml":
        raise LitePoseError("--time: Core ML models run only on macOS")
    problem = export_option_problem(args.format, args.fp16, args.dynamic)
    if problem:
        raise LitePoseError(problem)
    dynamic = args.format in DYNAMIC_FORMATS and not args.fixed

    from litepose.arch import default_input_size
    from litepose.deploy.export import ExportError, check_opset
    from litepose.deploy.formats import check_outputs, default_output, export_checked, require, versions
    from litepose.errors import CheckpointError
    from litepose.models import load_model
    from litepose.utils.limits import input_size_problem

    if args.format == "onnx":
        check_opset(args.opset)  # PyTorch's own bounds

    cfg = load_cli_config(args)
    if not cfg.TEST.MODEL_FILE:
        raise CheckpointError("no checkpoint given: add TEST.MODEL_FILE path/to/checkpoint.pth")
    output = args.output or default_output(args.format, cfg.TEST.MODEL_FILE)
    check_outputs(args.format, output, args.force, inputs=run_inputs(args, cfg))
    require(args.format)  # a missing package is one line before any work
    model = load_model(cfg, args.superconfig)
    size = default_input_size(cfg, model, args.input_size)
    if input_size_problem(size):
        raise ExportError(input_size_problem(size, "the input size (architecture img_size or DATASET.INPUT_SIZE)"))
    images = args.images
    if images is None and os.path.isdir(SHARED_IMAGES):
        images = SHARED_IMAGES
    report = export_checked(args.format, model, output, size, cfg=cfg, checkpoint=cfg.TEST.MODEL_FILE,
                            half=args.fp16, dynamic=dynamic, opset=args.opset, tolerance=args.tolerance,
                            force=args.force, image_dir=images, num_images=args.num_images,
                            inputs=run_inputs(args, cfg))
    found = versions()
    print(f"{args.format}{' (float16)' if args.fp16 else ''}, input 1x3x{size}x{size}"
          f"{' (dynamic)' if dynamic else ' (fixed)'}; torch {found.get('torch')}")
    for line in report.lines():
        print(line)
    if args.time:
        from litepose.deploy.formats import time_export

        label = f"{args.format}{' fp16' if args.fp16 else ''}"
        print("\n| runtime | threads | ms (p90) | x PyTorch eager |\n|---|---|---|---|")
        for threads, timings in time_export(args.format, output, model, size, args.threads, args.time,
                                            args.fp16).items():
            eager, exported = timings["pytorch"], timings[args.format]
            print(f"| PyTorch eager | {threads} | {eager.median_ms:.2f} ({eager.p90_ms:.2f}) | 1.00 |")
            print(f"| {label} | {threads} | {exported.median_ms:.2f} ({exported.p90_ms:.2f}) | "
                  f"{eager.median_ms / exported.median_ms:.2f} |")
    return 0
