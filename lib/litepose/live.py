"""Images, live and recorded video through a ``PoseEstimator``: the loops behind
``tools/demo.py`` (no PyTorch needed with an ONNX estimator). The demo parses its options and
calls these; there is no second copy of either loop.

    from litepose.live import run_images, run_video
    summary = run_video(estimator, "0", output="out.mp4", json_path="people.json", tracker=PoseTracker())
    summary = run_images(estimator, ["a.jpg", "b.png"], "drawn/")

- **Inputs** (``classify_input``): an image, a folder of images, a video file, a camera index or
  a stream URL; a folder that cannot be listed, a folder without images, a device or a FIFO
  (``/dev/zero``) are one ``DataError`` line each, saying what the path is.
- **Incomplete input is an error**: an image that cannot be read, or a video that yields fewer
  frames than its container announces (frames that fail to decode are counted, and reading
  goes on past them), is reported with the counts and raises ``IncompleteInputError`` after
  everything processed has been written, unless ``allow_partial``.

- **Sources** (``open_source``): a camera index (``"0"``), a stream URL (``rtsp://``,
  ``http://``, ...) or a video file, all through ``cv2.VideoCapture``.
- **Window**: with a display (``DISPLAY`` / ``WAYLAND_DISPLAY`` set, or not Linux) and an
  OpenCV built with GUI support, each drawn frame is shown with its frame rate; Esc or q stops.
  Headless otherwise (``show=False`` forces it).
- **Outputs**, never onto an input: ``output`` a video (``cv2.VideoWriter``, mp4v), written
  under a temporary name and renamed when complete; ``json_path`` the people of every frame in
  COCO keypoint results format plus ``frame`` (index from 0) and ``track_id`` (-1 untracked),
  written atomically at the end (also after Ctrl-C, with the frames done).
- **Progress**: a tqdm bar, with a total for files.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError, OutputError
from .utils.io import check_output_file, path_problem, same_file

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
PERSON_CATEGORY = 1
# Failed reads in a row after which a video file is taken to end (a damaged stretch of frames
# is skipped; a truncated file stops here).
MAX_FAILED_READS = 25
GUI_FIX = ("this OpenCV has no GUI support (opencv-python-headless); for windows install opencv-python instead: "
           "pip uninstall -y opencv-python-headless && pip install opencv-python")


class IncompleteInputError(DataError):
    """Input of which only a part could be processed (unreadable images, frames that failed to
    decode or are missing); what was processed has been written."""


def source_kind(spec):
    """``"camera"`` (a whole number: the device index), ``"stream"`` (a URL) or ``"file"``."""
    spec = str(spec)
    if spec.isdigit():
        return "camera"
    if spec.lower().startswith(STREAM_PREFIXES):
        return "stream"
    return "file"


@dataclass
class Source:
    capture: object
    kind: str
    name: str
    fps: float
    total: int = None


def open_source(spec):
    """``cv2.VideoCapture`` of ``spec`` (module doc) as a ``Source``; a ``DataError`` naming it
    when it cannot be opened."""
    import cv2

    kind = source_kind(spec)
    if kind == "file" and not os.path.isfile(spec):
        raise DataError(f"input not found: {spec}")
    capture = cv2.VideoCapture(int(spec) if kind == "camera" else str(spec))
    if not capture.isOpened():
        capture.release()
        what = {"camera": "camera", "stream": "stream", "file": "video"}[kind]
        raise DataError(f"cannot open {what}: {spec}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if kind == "file" else 0
    name = f"camera{int(spec)}" if kind == "camera" else os.path.splitext(os.path.basename(str(spec).rstrip("/")))[0]
    return Source(capture, kind, name or "stream", fps, total if total > 0 else None)


def display_available():
    """Whether a window can be shown: a display to draw on and an OpenCV with GUI support."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    return _opencv_has_gui()


def draw_fps(canvas, fps):
    """Write the frame rate in the top-left corner of ``canvas`` (in place)."""
    import cv2

    text = f"{fps:.1f} fps"
    scale = max(0.5, canvas.shape[0] / 720.0)
    thickness = max(1, int(round(2 * scale)))
    cv2.putText(canvas, text, (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2,
                cv2.LINE_AA)
    cv2.putText(canvas, text, (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)
    return canvas


def frame_records(frame_index, keypoints, scores, track_ids=None):
    """The people of one frame as COCO keypoint results (``image_id`` = frame index) with
    ``frame`` and ``track_id`` added."""
    ids = track_ids if track_ids is not None else np.full(len(scores), -1)
    return [{"frame": int(frame_index), "image_id": int(frame_index), "category_id": PERSON_CATEGORY,
             "keypoints": [round(float(v), 3) for v in person.reshape(-1)], "score": round(float(score), 5),
             "track_id": int(tid)}
            for person, score, tid in zip(keypoints, scores, ids)]


def check_outputs(source_spec, paths, force=False):
    """Before any work: no output is the input, or another output, or (without ``force``) an
    existing file; ``OutputError`` naming it otherwise."""
    given = [p for p in paths if p]
    for i, path in enumerate(given):
        if source_kind(source_spec) == "file" and os.path.exists(path) and same_file(path, source_spec):
            raise OutputError(f"{path} is the input: the demo never writes onto an input; give another output")
        if any(same_file(path, other) for other in given[:i]):
            raise OutputError(f"{path} is given for two outputs")
        check_output_file(path, force=force)


def classify_input(path):
    """``('video', path)``, ``('live', camera index or URL)`` or ``('images', [paths])``; a
    ``DataError`` saying what ``path`` is otherwise (missing, a device, a FIFO, an unlistable
    folder, a folder without images, another kind of file)."""
    path = os.fspath(path)
    if source_kind(path) in ("camera", "stream") and not os.path.exists(path):
        return "live", path
    if os.path.isdir(path):
        try:
            names = os.listdir(path)
        except OSError as exc:
            raise DataError(f"cannot read folder {path}: {exc.strerror or exc}") from None
        images = sorted(os.path.join(path, name) for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
        if not images:
            raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
        return "images", images
    problem = path_problem(path, "input")
    if problem:
        if os.path.exists(path):
            import stat

            mode = os.stat(path).st_mode
            kind = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a FIFO (named pipe)"
                    if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise DataError(f"input {path} is {kind}, not an image or video file")
        raise DataError(problem)
    if path.lower().endswith(VIDEO_EXTENSIONS):
        return "video", path
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return "images", [path]
    raise DataError(f"{path}: not an image ({', '.join(IMAGE_EXTENSIONS)}) or video ({', '.join(VIDEO_EXTENSIONS)})")


def image_targets(paths, output, force=False):
    """The drawn images' paths in folder ``output``: never an input or the inputs' folder, never
    an existing file without ``force``; ``OutputError`` naming the file otherwise, before any work."""
    if os.path.isdir(output) and any(same_file(output, os.path.dirname(os.path.abspath(p))) for p in paths):
        raise OutputError(f"--output {output} is the folder of the input images: the drawn images would "
                          "overwrite them; give another folder")
    targets = [os.path.join(output, os.path.basename(path)) for path in paths]
    for target in targets:
        if os.path.exists(target) and any(same_file(target, path) for path in paths):
            raise OutputError(f"{target} is an input: the demo never writes onto an input; give another --output")
    existing = [target for target in targets if os.path.lexists(target)]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]}{more} already exist(s) in --output {output} (pass --force to overwrite)")
    return targets


def window_problem(show):
    """``(show, note)``: whether a window is shown and why not. ``show=True`` without a
    GUI-capable OpenCV is a ``DataError`` naming the fix; ``show=None`` shows one when there is a
    display, and on a display without GUI support says that no window is shown and why."""
    if show is False:
        return False, None
    has_display = not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or
                                                               os.environ.get("WAYLAND_DISPLAY"))
    gui = _opencv_has_gui()
    if show:
        if not gui:
            raise DataError(f"--show: {GUI_FIX}")
        if not has_display:
            raise DataError("--show: no display here (DISPLAY / WAYLAND_DISPLAY unset); run without --show")
        return True, None
    if has_display and not gui:
        return False, f"note: no window is shown: {GUI_FIX} (--no-show hides this note)"
    return has_display and gui, None


def _opencv_has_gui():
    import cv2

    try:
        cv2.namedWindow("litepose-probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("litepose-probe")
        return True
    except cv2.error:
        return False


@dataclass
class VideoSummary:
    """What a run of ``run_video`` or ``run_images`` did: ``frames`` processed (images for
    ``run_images``), ``failed`` reads (frames that did not decode; unreadable images, named in
    ``skipped``), ``expected`` (the frames the container announces, the images given)."""
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    output: str = None
    json_path: str = None
    interrupted: bool = False
    failed: int = 0
    expected: int = None
    stopped_early: bool = False
    skipped: list = field(default_factory=list)

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds else 0.0


def run_video(estimator, source_spec, output=None, json_path=None, show=None, tracker=None, max_frames=None,
              min_score=0.05, progress=True, force=False, color_skeleton=None, frame_problem=None,
              allow_partial=False):
    """Run ``estimator`` on every frame of ``source_spec`` (module doc): a ``VideoSummary``.

    ``frame_problem((w, h))``: why frames of that size must not be processed, or None; asked
    for the size the source announces, before any frame is decoded, and for every new frame
    size seen (a ``DataError`` stops the run). A video file that yields fewer frames than it
    announces raises ``IncompleteInputError`` once the outputs are written, unless
    ``allow_partial`` (``summary.failed`` and ``summary.expected`` say how many)."""
    import cv2
    from tqdm import tqdm

    from .utils.io import atomic_write_text
    from .utils.vis import draw_people, drawn_count, person_colors

    check_outputs(source_spec, [output, json_path], force=force)
    source = open_source(source_spec)
    checked = set()

    def check(wh):
        if frame_problem is None or wh in checked:
            return
        problem = frame_problem(wh)
        if problem:
            raise DataError(f"{source_spec}: frames of {problem}")
        checked.add(wh)

    announced = (int(source.capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(source.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if min(announced) > 0:
        try:
            check(announced)
        except DataError:
            source.capture.release()
            raise
    try:
        show, note = window_problem(show)
    except DataError:
        source.capture.release()
        raise
    if note:
        print(note, file=sys.stderr)
    skeleton = color_skeleton if color_skeleton is not None else estimator.skeleton
    summary = VideoSummary(output=output, json_path=json_path, expected=source.total)
    records = []
    writer = None
    partial = None
    if output:
        folder = os.path.dirname(os.path.abspath(output))
        partial = os.path.join(folder, "." + os.path.basename(output) + ".part" + (os.path.splitext(output)[1] or ".mp4"))
    palette = person_colors(64)
    total = source.total if source.total is None or max_frames is None else min(source.total, max_frames)
    rate, last = 0.0, None
    try:
        with tqdm(total=total, desc=source.name, unit="frame", disable=not progress, dynamic_ncols=True) as bar:
            failed_in_a_row = 0
            while max_frames is None or summary.frames < max_frames:
                ok, frame = source.capture.read()
                if not ok or frame is None:
                    # A file announcing more frames: count the failure and read on past a damaged
                    # stretch; many failures in a row end it (truncated). Cameras and streams end.
                    if source.total is None or summary.frames + summary.failed >= source.total:
                        break
                    summary.failed += 1
                    failed_in_a_row += 1
                    if failed_in_a_row >= MAX_FAILED_READS:
                        break
                    continue
                failed_in_a_row = 0
                check((frame.shape[1], frame.shape[0]))
                start = time.perf_counter()
                people = estimator(frame, color="bgr")
                if tracker is not None:
                    people = tracker(people)
                now = time.perf_counter()
                summary.seconds += now - start
                for stage, value in people.times.items():
                    summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + value
                if last is not None:  # frame rate of the whole loop (reading, drawing included)
                    rate = 0.9 * rate + 0.1 / max(now - last, 1e-6) if rate else 1.0 / max(now - last, 1e-6)
                last = now
                if json_path:
                    records.extend(frame_records(summary.frames, people.keypoints, people.scores, people.track_ids))
                if output or show:
                    ids = people.track_ids if people.track_ids is not None else np.arange(len(people.scores))
                    colors = [palette[int(i) % len(palette)][::-1] if i >= 0 else (128, 128, 128) for i in ids]
                    drawn = draw_people(frame, people.keypoints, skeleton, min_score, colors=colors)
                    if output:
                        if writer is None:
                            height, width = drawn.shape[:2]
                            writer = cv2.VideoWriter(partial, cv2.VideoWriter_fourcc(*"mp4v"), source.fps,
                                                     (width, height))
                            if not writer.isOpened():
                                raise OutputError(f"cannot write video {output} (no mp4v encoder)")
                        writer.write(drawn)
                    if show:
                        cv2.imshow("LitePose", draw_fps(drawn, rate))
                        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                            summary.stopped_early = True
                            break
                summary.frames += 1
                summary.people += drawn_count(people.keypoints, min_score)  # the people a drawing shows
                bar.update(1)
    except KeyboardInterrupt:
        summary.interrupted = True  # keep the frames done: the video and JSON are still written
    except BaseException:
        _discard(writer, partial)
        writer = None
        raise
    finally:
        source.capture.release()
        if writer is not None:
            writer.release()
        if show:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
    if summary.frames == 0:
        _discard(None, partial)
        raise DataError(f"no frame could be read from {source_spec}")
    if output:
        os.replace(partial, output)  # only a complete run gets the real name (a partial one too, when reported)
    if json_path:
        atomic_write_text(json_path, json.dumps(records) + "\n")
    _check_complete(summary, source_spec, max_frames, allow_partial)
    return summary


def _check_complete(summary, source_spec, max_frames, allow_partial):
    """``IncompleteInputError`` when a file gave fewer frames than it announced (module doc)."""
    if summary.interrupted or summary.stopped_early or summary.expected is None:
        return
    wanted = summary.expected if max_frames is None else min(summary.expected, max_frames)
    if summary.frames >= wanted:
        return
    written = [p for p in (summary.output, summary.json_path) if p]
    message = (f"{source_spec}: processed {summary.frames} of the {summary.expected} frames the video announces "
               f"({wanted - summary.frames} could not be decoded: a damaged or truncated file)")
    if allow_partial:
        print(f"warning: {message}", file=sys.stderr)
        return
    raise IncompleteInputError(f"{message}; {'wrote ' + ', '.join(written) + ' with them' if written else 'nothing written'}; "
                               "--allow-partial accepts it")


def run_images(estimator, paths, output, min_score=0.05, progress=True, frame_problem=None, allow_partial=False):
    """Draw the people of each image of ``paths`` into folder ``output`` (same file names): a
    ``VideoSummary`` (``frames`` = images drawn). An image that cannot be read, or whose size
    ``frame_problem((w, h))`` refuses, is named in a warning and skipped; any skipped image
    makes the run an ``IncompleteInputError`` once the others are written, unless
    ``allow_partial``."""
    from tqdm import tqdm

    from .data.coco_format import read_image
    from .utils.vis import draw_people, drawn_count, write_image

    summary = VideoSummary(expected=len(paths))
    for path in tqdm(paths, desc="images", unit="img", disable=not progress, dynamic_ncols=True):
        try:
            image = read_image(path)
            problem = frame_problem((image.shape[1], image.shape[0])) if frame_problem else None
            if problem:
                raise DataError(f"{problem}: {path}")
        except DataError as exc:
            summary.skipped.append(str(exc))
            summary.failed += 1
            continue
        prediction = estimator(image, color="rgb")
        write_image(os.path.join(output, os.path.basename(path)),
                    draw_people(image, prediction.keypoints, estimator.skeleton, min_score))
        summary.frames += 1
        summary.people += drawn_count(prediction.keypoints, min_score)
        summary.seconds += sum(prediction.times.values())
    for reason in summary.skipped:
        print(f"warning: skipped {reason}")
    if summary.failed and not allow_partial:
        raise IncompleteInputError(f"{summary.failed} of {len(paths)} images could not be used (named above); "
                                   f"wrote the other {summary.frames} to {output}; --allow-partial accepts it")
    return summary


def _discard(writer, partial):
    if writer is not None:
        writer.release()
    if partial and os.path.exists(partial):
        os.unlink(partial)
