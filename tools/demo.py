#!/usr/bin/env python
"""Draw the poses a model finds in images, a folder of images or a video.

    python tools/demo.py --cfg experiments/crowd_pose/mobilenet/mobile.yaml \
        --superconfig mobile_configs/search-XS.json TEST.MODEL_FILE xs.pth \
        --input IMAGE_OR_DIR_OR_VIDEO --output DIR [--preset accurate|realtime]
    python tools/demo.py --onnx litepose-xs.onnx --dataset crowdpose --input-size 256 --input ... --output DIR

The model is a checkpoint (``--cfg``, ``--superconfig``, ``TEST.MODEL_FILE``; PyTorch) or an
exported ONNX model (``--onnx``; ONNX Runtime, no PyTorch), run by ``litepose.PoseEstimator``
with its ``--preset`` (default ``accurate``: ``valid.py``'s settings).
People scoring under the preset's threshold and duplicates of a stronger person are dropped
(``--min-person-score``, ``--person-nms``; ``none`` turns either off); the people per image
printed are the people drawn.
Each person is drawn in its own colour with the dataset's limbs. Images are written to DIR
under their own names; a video becomes DIR/<name>_pose.mp4. Nothing is ever written onto an
input (DIR may not be the input's folder), and existing files in DIR are kept unless --force.

Live and recorded video (``litepose.live``): ``--input`` a camera index (``0``), a stream URL
(``rtsp://...``, ``http://...``) or a video file; ``--output`` a folder (``<name>_pose.mp4``
in it) or a video file name (mp4v), optional for cameras and streams; ``--json FILE`` the people
of every frame (COCO keypoint results plus ``frame`` and ``track_id``). People are tracked
(``litepose.tracking.PoseTracker``; ``--no-track``, ``--smooth`` for One-Euro smoothing). A
window shows the drawn frames and their frame rate when there is a display (``--no-show`` to
stay headless; Esc or q stops); files show a progress bar.

    python tools/demo.py --onnx litepose-xs.onnx --input-size 256 --preset realtime --input 0 --json people.json
"""

import argparse
import os

from litepose.utils.cli import config_parser, load_cli_config, parse_args, run_cli

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _inputs(path):
    """``('video', path)``, ``('live', camera index or URL)`` or ``('images', [paths])``; a
    clear error for anything else."""
    from litepose.errors import DataError
    from litepose.live import source_kind

    if source_kind(path) in ("camera", "stream") and not os.path.exists(path):
        return "live", path
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

    inputs = source if kind == "images" else [source] if kind == "video" else []
    if kind != "images" and _is_video_name(output):
        return [output]  # litepose.live.check_outputs checks it against the input
    folders = {os.path.dirname(os.path.abspath(path)) for path in inputs}
    if any(os.path.isdir(output) and _same_file(output, folder) for folder in folders):
        raise OutputError(f"--output {output} is the folder of the input images: the drawn images would "
                          "overwrite them; give another folder")
    if kind == "images":
        targets = [os.path.join(output, os.path.basename(path)) for path in inputs]
    else:
        targets = [os.path.join(output, _video_name(kind, source) + "_pose.mp4")]
    for target in targets:
        for path in inputs:
            if os.path.exists(target) and _same_file(target, path):
                raise OutputError(f"{target} is an input: the demo never writes onto an input; give another --output")
    existing = [target for target in targets if os.path.lexists(target)]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]}{more} already exist(s) in --output {output} (pass --force to overwrite)")
    return targets


def _is_video_name(path):
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


def _video_name(kind, source):
    from litepose.live import source_kind

    if kind == "live" and source_kind(source) == "camera":
        return f"camera{int(source)}"
    return os.path.splitext(os.path.basename(str(source).rstrip("/")))[0] or "stream"


def _threshold(text):
    """A number, or 'none' (filter off), or the 'preset' default."""
    if text in ("preset", "none"):
        return None if text == "none" else text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def _estimator(args, cfg):
    """The ``PoseEstimator`` the options ask for, and the device it runs on (for the summary)."""
    from litepose import PoseEstimator
    from litepose.errors import ConfigError

    filters = {"min_person_score": args.min_person_score, "person_nms": args.person_nms}
    if args.onnx:
        estimator = PoseEstimator.from_onnx(args.onnx, dataset=args.dataset, input_size=args.input_size,
                                            preset=args.preset, threads=args.threads, cfg=cfg, **filters)
        return estimator, "cpu (ONNX Runtime)"
    if not cfg.TEST.MODEL_FILE:
        raise ConfigError("no checkpoint: give TEST.MODEL_FILE path/to/model.pth")
    from litepose.utils.device import resolve_device

    device = resolve_device(cfg.DEVICE)
    estimator = PoseEstimator.from_checkpoint(cfg.TEST.MODEL_FILE, cfg, arch=args.superconfig, preset=args.preset,
                                              device=device, input_size=args.input_size, **filters)
    return estimator, device


def main(argv=None):
    from tqdm import tqdm

    from litepose.data.coco_format import read_image
    from litepose.data.image_header import size_problem
    from litepose.errors import ConfigError, DataError, OutputError
    from litepose.utils.io import ensure_writable_dir
    from litepose.utils.limits import input_size_problem, network_input_problem
    from litepose.utils.vis import draw_people, drawn_count, write_image

    parser = config_parser(__doc__.splitlines()[0], require_cfg=False)
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--onnx", metavar="MODEL.onnx", help="an exported model, run by ONNX Runtime (no --cfg needed)")
    parser.add_argument("--dataset", choices=("coco", "crowdpose"), default="coco",
                        help="joints of the --onnx model when no --cfg is given (default coco)")
    parser.add_argument("--preset", choices=("accurate", "realtime"), default="accurate",
                        help="accurate: valid.py's settings (default); realtime: one pass, no flip, capped decoding")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: its own)")
    parser.add_argument("--input", required=True,
                        help="an image, a folder of images, a video file, a camera index (0) or a stream URL")
    parser.add_argument("--output", metavar="DIR|VIDEO",
                        help="folder for the drawn images or video, or a video file name (optional for live input)")
    parser.add_argument("--json", metavar="FILE.json", help="video: the people of every frame (COCO results + frame, "
                                                            "track_id)")
    parser.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                        help="video: show a window (default: when there is a display)")
    parser.add_argument("--track", action=argparse.BooleanOptionalAction, default=True,
                        help="video: stable identities across frames (default on)")
    parser.add_argument("--smooth", action="store_true", help="video: One-Euro smoothing of the tracked joints")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="video: stop after N frames")
    parser.add_argument("--min-score", type=float, default=0.05, help="joints scoring below are not drawn")
    parser.add_argument("--min-person-score", type=_threshold, default="preset", metavar="S|none",
                        help="people scoring below are dropped (default: the preset's, 0.1 accurate, 0.2 realtime)")
    parser.add_argument("--person-nms", type=_threshold, default="preset", metavar="OKS|none",
                        help="a person whose OKS with a stronger one exceeds this is a duplicate, dropped "
                             "(default: the preset's, 0.9)")
    parser.add_argument("--input-size", type=int, default=None, metavar="N",
                        help="test input size (default: the architecture's img_size)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist in --output")
    args = parse_args(parser, argv)
    if args.input_size is not None and input_size_problem(args.input_size):
        raise ConfigError(input_size_problem(args.input_size))

    from litepose.runtime.people import PersonFilter

    PersonFilter(min_score=None if args.min_person_score == "preset" else args.min_person_score,
                 nms_oks=None if args.person_nms == "preset" else args.person_nms)  # bad values: one line, now
    if not args.onnx and not args.cfg:
        raise ConfigError("give --cfg (and TEST.MODEL_FILE) for a checkpoint, or --onnx MODEL.onnx")
    cfg = load_cli_config(args) if args.cfg else None
    kind, source = _inputs(args.input)
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be positive, got {args.max_frames}")
    if kind == "images" and (args.json or args.max_frames):
        raise ConfigError("--json and --max-frames are for video input")
    video_file = None
    if args.output is None:
        if kind != "live":
            raise ConfigError("--output is needed: a folder for the drawn images or video")
    elif kind != "images" and _is_video_name(args.output):
        video_file = args.output
    else:
        if os.path.exists(args.output) and not os.path.isdir(args.output):
            raise OutputError(f"--output {args.output} is a file; give a folder")
        _check_targets(kind, source, args.output, args.force)
        try:
            ensure_writable_dir(args.output, "--output folder")
        except ConfigError as exc:
            raise OutputError(str(exc)) from None
        if kind != "images":
            video_file = os.path.join(args.output, _video_name(kind, source) + "_pose.mp4")
    if kind != "images":
        from litepose.live import check_outputs

        check_outputs(source, [video_file, args.json], force=args.force)
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
            people, frames = people + drawn_count(prediction.keypoints, args.min_score), frames + 1
            seconds += sum(prediction.times.values())
        for reason in skipped:
            print(f"warning: skipped {reason}")
        print(f"wrote {frames} images to {args.output}")
    else:
        from litepose.live import run_video
        from litepose.tracking import PoseTracker

        def frame_problem(wh):
            return size_problem(*wh) or network_input_problem(wh, settings.input_size, settings.scales)

        tracker = None
        if args.track:
            tracker = PoseTracker(dataset=estimator.keypoint_info.name if estimator.keypoint_info else "coco",
                                  sigmas=estimator.keypoint_info.sigmas if estimator.keypoint_info else None,
                                  smoothing=args.smooth)
        summary = run_video(estimator, source, output=video_file, json_path=args.json, show=args.show,
                            tracker=tracker, max_frames=args.max_frames, min_score=args.min_score, force=args.force,
                            frame_problem=frame_problem)
        people, frames, seconds = summary.people, summary.frames, summary.seconds
        written = [path for path in (video_file, args.json) if path]
        print(f"{'stopped after' if summary.interrupted else 'processed'} {frames} frames"
              f"{'; wrote ' + ', '.join(written) if written else ''} ({summary.fps:.1f} fps end to end)")
    if frames:
        print(f"{people / frames:.1f} people per {'image' if kind == 'images' else 'frame'}, "
              f"{1000 * seconds / frames:.0f} ms each on {device}")
    return 0


if __name__ == "__main__":
    run_cli(main)
