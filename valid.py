#!/usr/bin/env python
"""Evaluate a checkpoint or an export on COCO or CrowdPose with the official protocols.

    python valid.py --cfg experiments/crowd_pose/mobilenet/mobile.yaml \
        --superconfig mobile_configs/search-XS.json TEST.MODEL_FILE xs.pth [--limit N] \
        [--save-vis N [--save-maps]] [--output-dir DIR] [--input-size N]

TEST.MODEL_FILE is a checkpoint (the release's or ours; run by PyTorch on CPU or GPU, DEVICE)
or a model exported by tools/export.py or tools/quantize.py (ONNX, OpenVINO .xml, TFLite,
ncnn .param, TorchScript .pt; run by its runtime on the CPU), told apart by suffix and
content. Every one runs the same pre-processing, aggregation and grouping (litepose.runtime),
with the config's test settings; an export's input size is the one it was made at unless
--input-size says otherwise. Writes the results JSON and
a Markdown table of the metrics (the release's columns) into the output folder (default
OUTPUT_DIR/<dataset>/<model>/<cfg name>[-<arch name>]/, as training), prints the table and
the milliseconds per image of the network and of grouping. --save-vis N draws the predictions
on the first N images (vis/ in the output folder; the people PoseEstimator's accurate preset keeps,
while the results keep every person); --save-maps adds their heatmaps and tags.
"""

import os
import sys

from litepose.cli import POSITIVE, config_parser, input_size, int_range, load_cli_config, parse_args, run_cli


def main(argv=None):
    from litepose.data.coco_format import dataset_files
    from litepose.errors import ConfigError, DataError
    from litepose.evaluation import pipeline_for
    from litepose.train.checkpoint import run_dirs
    from litepose.utils.device import resolve_device
    from litepose.utils.io import VALID_LOCK_NAME, ensure_writable_dir, lock_folder

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--limit", type=POSITIVE, default=None, metavar="N", help="evaluate the first N images only")
    parser.add_argument("--save-vis", type=int_range(0, 1_000_000), default=0, metavar="N", help="draw predictions on the first N images (the people PoseEstimator's accurate preset keeps)")
    parser.add_argument("--save-maps", action="store_true", help="with --save-vis: also save heatmaps and tag maps")
    parser.add_argument("--output-dir", metavar="DIR", help="where results go (default: the run's output folder)")
    parser.add_argument("--input-size", type=input_size, default=None, metavar="N",
                        help="test input size (default: an export's own, else the architecture's img_size)")
    args = parse_args(parser, argv)
    if args.save_maps and not args.save_vis:
        parser.error("--save-maps saves the maps of the --save-vis images: give --save-vis N")

    cfg = load_cli_config(args)
    if not cfg.TEST.MODEL_FILE:
        raise ConfigError("no model to evaluate: give TEST.MODEL_FILE path/to/model.pth (or an export)")
    device = resolve_device(cfg.DEVICE)
    model, arch, size = open_model_file(cfg, args.superconfig, args.input_size)
    estimator = pipeline_for(cfg, model, device=device, input_size=size)  # the pipeline evaluate runs
    ann_file, image_dir = dataset_files(cfg, "test")
    if not os.path.isfile(ann_file):
        raise DataError(f"annotation file not found: {ann_file}")
    if not os.path.isdir(image_dir):
        raise DataError(f"image folder not found: {image_dir}")
    output_dir = args.output_dir or run_dirs(cfg, args.cfg, args.superconfig)[0]
    ensure_writable_dir(output_dir)  # fail now rather than after the whole evaluation
    # One evaluation per folder at a time: two would write the same results files. Its own lock,
    # not training's, so a checkpoint can be evaluated while its run goes on.
    with lock_folder(output_dir, what="output folder", name=VALID_LOCK_NAME,
                     instead="another --output-dir"):
        return _evaluate_and_write(cfg, estimator, args, device, arch, output_dir)


def open_model_file(cfg, superconfig, size):
    """``(model, arch, input size)`` for ``TEST.MODEL_FILE``: a checkpoint becomes the PyTorch
    model (``load_model``: non-finite weights refused), an export its runtime network."""
    from litepose.arch import default_input_size, model_arch
    from litepose.evaluation.runner import export_input_size
    from litepose.models import load_model
    from litepose.models.builders import resolve_arch
    from litepose.runtime.exported import detect_format, open_network

    path = cfg.TEST.MODEL_FILE
    if detect_format(path) is None:
        model = load_model(cfg, superconfig, path)
        return model, model_arch(model), size
    network = open_network(path)
    arch = resolve_arch(cfg, superconfig)
    return network, arch, size or export_input_size(network) or default_input_size(cfg, arch)


def _evaluate_and_write(cfg, estimator, args, device, arch, output_dir):
    from litepose.arch import describe_arch
    from litepose.errors import OutputError
    from litepose.evaluation import evaluate, summary_lines, write_outputs

    settings = estimator.settings
    print(f"model: {cfg.MODEL.NAME}" + (f" ({describe_arch(arch)})" if arch else "") + f", {cfg.TEST.MODEL_FILE}")
    print(f"test: input {settings.input_size}, scales {list(settings.scales)}, flip {settings.flip}, "
          f"backend {estimator.backend}" + (f" on {device}" if estimator.backend == "pytorch" else ""))

    result = evaluate(cfg, estimator, limit=args.limit, output_dir=output_dir, save_vis=args.save_vis,
                      save_maps=args.save_maps, arch_name=cfg.MODEL.NAME, write_files=False)
    for line in summary_lines(result, cfg.MODEL.NAME):  # printed first: a full disk cannot lose them
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
    sys.stdout.flush()
    result.files = write_outputs(output_dir, cfg, result, cfg.MODEL.NAME)
    for path in result.files.values():
        print(f"wrote {path}")
    if result.vis_error:
        raise OutputError(f"{result.vis_error} (pictures of --save-vis; the results and metrics were written)")
    if args.save_vis:
        print(f"pictures in {output_dir}/vis")
    return 0


if __name__ == "__main__":
    run_cli(main)
