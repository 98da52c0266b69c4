"""Draw the poses a model finds in images, a folder of images or a video.

    litepose demo --cfg experiments/crowd_pose/mobilenet/mobile.yaml \
        --superconfig mobile_configs/search-XS.json TEST.MODEL_FILE xs.pth \
        --input IMAGE_OR_DIR_OR_VIDEO --output DIR [--preset accurate|realtime]
    litepose demo --model litepose-xs.onnx --input ... --output DIR

The model is a checkpoint (``--cfg``, ``--superconfig``, ``TEST.MODEL_FILE``; PyTorch) or an
exported ONNX model (``--onnx``; ONNX Runtime, no PyTorch), run by ``litepose.PoseEstimator``
with its ``--preset`` (default ``realtime``: one pass, capped decoding; ``accurate``: ``litepose valid``'s
settings). A model trained on the quickstart's synthetic figures has never seen a real person:
the demo says so.
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
window shows the drawn frames and their frame rate when there is a display and an OpenCV with
GUI support (``opencv-python``; ``opencv-python-headless`` has none: ``--show`` then fails naming
the fix, and without ``--show`` on a desktop a note says no window is shown); ``--no-show``
stays headless; Esc or q stops; files show a progress bar. Images that cannot be read and
videos that end before the frames they announce are reported and exit 2 once what was
processed is written (``--allow-partial``: exit 0).

    litepose demo --onnx litepose-xs.onnx --input-size 256 --preset realtime --input 0 --json people.json

The same command as a script, from the repository: ``python tools/demo.py ...``.
"""

import argparse
import os

from litepose.cli import (SCORE, THREADS, config_parser, input_size, int_range, load_cli_config, parse_args)


def _is_video_name(path):
    from litepose.live import VIDEO_EXTENSIONS

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
        return SCORE(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or 'none')") from None


def _estimator(args, cfg):
    """The ``PoseEstimator`` the options ask for, and the device it runs on (for the summary)."""
    from litepose import PoseEstimator
    from litepose.errors import ConfigError

    filters = {"min_person_score": args.min_person_score, "person_nms": args.person_nms}
    if args.onnx:
        estimator = PoseEstimator.from_exported(args.onnx, dataset=args.dataset, input_size=args.input_size,
                                                preset=args.preset, threads=args.threads, cfg=cfg, **filters)
        return estimator, f"cpu ({estimator.backend})"
    if not cfg.TEST.MODEL_FILE:
        raise ConfigError("no checkpoint: give TEST.MODEL_FILE path/to/model.pth")
    from litepose.utils.device import resolve_device

    device = resolve_device(cfg.DEVICE)
    estimator = PoseEstimator.from_checkpoint(cfg.TEST.MODEL_FILE, cfg, arch=args.superconfig, preset=args.preset,
                                              device=device, input_size=args.input_size, **filters)
    return estimator, device


def main(argv=None):
    from litepose.data.image_header import size_problem
    from litepose.errors import ConfigError, OutputError
    from litepose.live import check_outputs, classify_input, image_targets, run_images, run_video, window_problem
    from litepose.utils.io import ensure_writable_dir
    from litepose.inference.transforms import network_input_problem

    parser = config_parser(__doc__.splitlines()[0], require_cfg=False)
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--model", "--onnx", dest="onnx", metavar="EXPORT",
                        help="an exported model (ONNX, OpenVINO .xml, TFLite, ncnn .param, TorchScript; the format "
                             "and its settings come from the file; no --cfg needed)")
    parser.add_argument("--dataset", choices=("coco", "crowdpose"), default=None,
                        help="joints of the --model export when it carries no metadata (default: its metadata's)")
    parser.add_argument("--preset", choices=("accurate", "realtime"), default="realtime",
                        help="realtime: one pass, no flip, capped decoding (default); accurate: litepose valid's settings")
    parser.add_argument("--threads", type=THREADS, default=None, help="ONNX Runtime threads (default: its own)")
    parser.add_argument("--input", required=True,
                        help="an image, a folder of images, a video file, a camera index (0) or a stream URL")
    parser.add_argument("--output", metavar="DIR|VIDEO",
                        help="folder for the drawn images or video, or a video file name (optional for live input)")
    parser.add_argument("--json", metavar="FILE.json", help="video: the people of every frame (COCO results + frame, "
                                                            "track_id)")
    parser.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                        help="video: show a window (default: when there is a display; needs opencv-python, not "
                             "opencv-python-headless)")
    parser.add_argument("--track", action=argparse.BooleanOptionalAction, default=True,
                        help="video: stable identities across frames (default on)")
    parser.add_argument("--smooth", action="store_true", help="video: One-Euro smoothing of the tracked joints")
    parser.add_argument("--max-frames", type=int_range(1, None), default=None, metavar="N",
                        help="video: stop after N frames")
    parser.add_argument("--min-score", type=SCORE, default=0.05, help="joints scoring below are not drawn (0 to 1)")
    parser.add_argument("--min-person-score", type=_threshold, default="preset", metavar="S|none",
                        help="people scoring below are dropped (default: the preset's, 0.1 accurate, 0.2 realtime)")
    parser.add_argument("--person-nms", type=_threshold, default="preset", metavar="OKS|none",
                        help="a person whose OKS with a stronger one exceeds this is a duplicate, dropped "
                             "(default: the preset's, 0.9)")
    parser.add_argument("--input-size", type=input_size, default=None, metavar="N",
                        help="test input size (default: the architecture's img_size)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="exit 0 when some images cannot be read or a video ends before the frames it announces "
                             "(default: report it and exit 2; what was processed is written either way)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist in --output")
    args = parse_args(parser, argv)

    from litepose.runtime.people import PersonFilter

    PersonFilter(min_score=None if args.min_person_score == "preset" else args.min_person_score,
                 nms_oks=None if args.person_nms == "preset" else args.person_nms)  # bad values: one line, now
    if not args.onnx and not args.cfg:
        raise ConfigError("give --cfg (and TEST.MODEL_FILE) for a checkpoint, or --onnx MODEL.onnx")
    cfg = load_cli_config(args) if args.cfg else None
    kind, source = classify_input(args.input)
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
        if kind == "images":
            image_targets(source, args.output, args.force)
        else:
            video_file = os.path.join(args.output, _video_name(kind, source) + "_pose.mp4")
        try:
            ensure_writable_dir(args.output, "--output folder")
        except ConfigError as exc:
            raise OutputError(str(exc)) from None
    if kind != "images":
        check_outputs(source, [video_file, args.json], force=args.force)
        window_problem(args.show)  # --show without a GUI-capable OpenCV: one line before the model loads
    estimator, device = _estimator(args, cfg)
    if cfg is not None and cfg.DATASET.SYNTHETIC:
        print("note: this model was trained on the synthetic figures of the quickstart: it has never seen a real "
              "person, so expect few or wrong people on real photos and video")
    settings = estimator.settings

    def frame_problem(wh):
        return size_problem(*wh) or network_input_problem(wh, settings.input_size, settings.scales)

    if kind == "images":
        summary = run_images(estimator, source, args.output, args.min_score, frame_problem=frame_problem,
                             allow_partial=args.allow_partial)
        print(f"wrote {summary.frames} images to {args.output}")
    else:
        from litepose.tracking import PoseTracker

        tracker = None
        if args.track:
            tracker = PoseTracker(dataset=estimator.keypoint_info.name if estimator.keypoint_info else "coco",
                                  sigmas=estimator.keypoint_info.sigmas if estimator.keypoint_info else None,
                                  smoothing=args.smooth)
        summary = run_video(estimator, source, output=video_file, json_path=args.json, show=args.show,
                            tracker=tracker, max_frames=args.max_frames, min_score=args.min_score, force=args.force,
                            frame_problem=frame_problem, allow_partial=args.allow_partial)
        written = [path for path in (video_file, args.json) if path]
        print(f"{'stopped after' if summary.interrupted else 'processed'} {summary.frames} frames"
              f"{'; wrote ' + ', '.join(written) if written else ''} ({summary.fps:.1f} fps end to end)")
    if summary.frames:
        print(f"{summary.people / summary.frames:.1f} people per {'image' if kind == 'images' else 'frame'}, "
              f"{1000 * summary.seconds / summary.frames:.0f} ms each on {device}")
    return 0
