#!/usr/bin/env python
"""Draw the poses a model finds in images, a folder of images or a video.

    python tools/demo.py --cfg experiments/crowd_pose/mobilenet/mobile.yaml \
        --superconfig mobile_configs/search-XS.json TEST.MODEL_FILE xs.pth \
        --input IMAGE_OR_DIR_OR_VIDEO --output DIR [--preset accurate|realtime]
    python tools/demo.py --onnx litepose-xs.onnx --dataset crowdpose --input-size 256 --input ... --output DIR

The model is a checkpoint (``--cfg``, ``--superconfig``, ``TEST.MODEL_FILE``; PyTorch) or an
exported ONNX model (``--onnx``; ONNX Runtime, no PyTorch), run by ``litepose.PoseEstimator``
with its ``--preset`` (default ``accurate``: ``valid.py``'s settings).
Each person is drawn in its own colour with the dataset's limbs. Images are written to DIR
under their own names; a video becomes DIR/<name>_pose.mp4. Nothing is ever written onto an
input (DIR may not be the input's folder), and existing files in DIR are kept unless --force.
"""

import os

from litepose.utils.cli import config_parser, load_cli_config, parse_args, run_cli

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _inputs(path):
    """``('video', path)`` or ``('images', [paths])``; a clear error for anything else."""
    from litepose.errors import DataError

    if os.path.isdir(path):
        images = sorted(os.path.join(path, name) for name in os.listdir(path)
                        if name.lower().endswith(IMAGE_EXTENSIONS))
        if not images:
            raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
        return "images", images
    if not os.path.isfile(path):
        raise DataError(f"input not found: {path}")
    if path.lower().endswith(VIDEO_EXTENSIONS):
        return "video", path
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return "images", [path]
    raise DataError(f"{path}: not an image ({', '.join(IMAGE_EXTENSIONS)}) or video ({', '.join(VIDEO_EXTENSIONS)})")


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _check_targets(kind, source, output, force):
    """The files the demo will write: never an input, never an existing file without ``force``;
    ``OutputError`` naming the file otherwise, before any work."""
    from litepose.errors import OutputError

    inputs = source if kind == "images" else [source]
    folders = {os.path.dirname(os.path.abspath(path)) for path in inputs}
    if any(os.path.isdir(output) and _same_file(output, folder) for folder in folders):
        raise OutputError(f"--output {output} is the folder of the input images: the drawn images would "
                          "overwrite them; give another folder")
    if kind == "images":
        targets = [os.path.join(output, os.path.basename(path)) for path in inputs]
    else:
        targets = [os.path.join(output, os.path.splitext(os.path.basename(source))[0] + "_pose.mp4")]
    for target in targets:
        for path in inputs:
            if os.path.exists(target) and _same_file(target, path):
                raise OutputError(f"{target} is an input: the demo never writes onto an input; give another --output")
    existing = [target for target in targets if os.path.lexists(target)]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]}{more} already exist(s) in --output {output} (pass --force to overwrite)")
    return targets


def _estimator(args, cfg):
    """The ``PoseEstimator`` the options ask for, and the device it runs on (for the summary)."""
    from litepose import PoseEstimator
    from litepose.errors import ConfigError

    if args.onnx:
        estimator = PoseEstimator.from_onnx(args.onnx, dataset=args.dataset, input_size=args.input_size,
                                            preset=args.preset, threads=args.threads, cfg=cfg)
        return estimator, "cpu (ONNX Runtime)"
    if not cfg.TEST.MODEL_FILE:
        raise ConfigError("no checkpoint: give TEST.MODEL_FILE path/to/model.pth")
    from litepose.utils.device import resolve_device

    device = resolve_device(cfg.DEVICE)
    estimator = PoseEstimator.from_checkpoint(cfg.TEST.MODEL_FILE, cfg, arch=args.superconfig, preset=args.preset,
                                              device=device, input_size=args.input_size)
    return estimator, device


def main(argv=None):
    import cv2
    import numpy as np
    from tqdm import tqdm

    from litepose.data.coco_format import read_image
    from litepose.data.image_header import size_problem
    from litepose.errors import ConfigError, DataError, OutputError
    from litepose.utils.io import ensure_writable_dir
    from litepose.utils.limits import input_size_problem, network_input_problem
    from litepose.utils.vis import draw_people, write_image

    parser = config_parser(__doc__.splitlines()[0], require_cfg=False)
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--onnx", metavar="MODEL.onnx", help="an exported model, run by ONNX Runtime (no --cfg needed)")
    parser.add_argument("--dataset", choices=("coco", "crowdpose"), default="coco",
                        help="joints of the --onnx model when no --cfg is given (default coco)")
    parser.add_argument("--preset", choices=("accurate", "realtime"), default="accurate",
                        help="accurate: valid.py's settings (default); realtime: one pass, no flip, capped decoding")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: its own)")
    parser.add_argument("--input", required=True, help="an image, a folder of images, or a video")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the drawn images or video")
    parser.add_argument("--min-score", type=float, default=0.05, help="joints scoring below are not drawn")
    parser.add_argument("--input-size", type=int, default=None, metavar="N",
                        help="test input size (default: the architecture's img_size)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist in --output")
    args = parse_args(parser, argv)
    if args.input_size is not None and input_size_problem(args.input_size):
        raise ConfigError(input_size_problem(args.input_size))

    if not args.onnx and not args.cfg:
        raise ConfigError("give --cfg (and TEST.MODEL_FILE) for a checkpoint, or --onnx MODEL.onnx")
    cfg = load_cli_config(args) if args.cfg else None
    kind, source = _inputs(args.input)
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise OutputError(f"--output {args.output} is a file; give a folder")
    _check_targets(kind, source, args.output, args.force)
    try:
        ensure_writable_dir(args.output, "--output folder")
    except ConfigError as exc:
        raise OutputError(str(exc)) from None
    estimator, device = _estimator(args, cfg)
    settings = estimator.settings

    def draw(image):
        prediction = estimator(image, color="rgb")
        return draw_people(image, prediction.keypoints, estimator.skeleton, args.min_score), prediction

    people = frames = 0
    seconds = 0.0
    if kind == "images":
        skipped = []
        for path in tqdm(source, desc="images", unit="img", dynamic_ncols=True):
            try:
                image = read_image(path)
                problem = network_input_problem((image.shape[1], image.shape[0]), settings.input_size,
                                                settings.scales)
                if problem:
                    raise DataError(f"{problem}: {path}")
            except DataError as exc:
                skipped.append(str(exc))
                continue
            drawn, prediction = draw(image)
            write_image(os.path.join(args.output, os.path.basename(path)), drawn)
            people, frames = people + len(prediction.scores), frames + 1
            seconds += sum(prediction.times.values())
        for reason in skipped:
            print(f"warning: skipped {reason}")
        print(f"wrote {frames} images to {args.output}")
    else:
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise DataError(f"cannot open video: {source}")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        frame_wh = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        problem = None
        if min(frame_wh) > 0:  # the size the container gives (checked before any frame is decoded)
            problem = size_problem(*frame_wh) or network_input_problem(frame_wh, settings.input_size, settings.scales)
        if problem:
            capture.release()
            raise DataError(f"{source}: frames of {problem}")
        target = os.path.join(args.output, os.path.splitext(os.path.basename(source))[0] + "_pose.mp4")
        partial = os.path.join(args.output, "." + os.path.basename(target) + ".part.mp4")
        writer = None
        try:
            with tqdm(total=total, desc="frames", unit="frame", dynamic_ncols=True) as bar:
                while True:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    drawn, prediction = draw(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                    if writer is None:
                        height, width = drawn.shape[:2]
                        writer = cv2.VideoWriter(partial, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                        if not writer.isOpened():
                            raise DataError(f"cannot write video {target} (no mp4v encoder)")
                    writer.write(cv2.cvtColor(np.ascontiguousarray(drawn), cv2.COLOR_RGB2BGR))
                    people, frames = people + len(prediction.scores), frames + 1
                    seconds += sum(prediction.times.values())
                    bar.update(1)
            if writer is None:
                raise DataError(f"no frame could be read from {source}")
            writer.release()
            writer = None
            os.replace(partial, target)  # only a complete video gets the real name
        finally:
            capture.release()
            if writer is not None:
                writer.release()
            if os.path.exists(partial):
                os.unlink(partial)
        print(f"wrote {target} ({frames} frames)")
    if frames:
        print(f"{people / frames:.1f} people per {'image' if kind == 'images' else 'frame'}, "
              f"{1000 * seconds / frames:.0f} ms each on {device}")
    return 0


if __name__ == "__main__":
    run_cli(main)
