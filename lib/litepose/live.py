"""Live and recorded video through a ``PoseEstimator``: the loop behind ``tools/demo.py``'s
camera, stream and video modes (no PyTorch needed with an ONNX estimator).

    from litepose.live import run_video
    summary = run_video(estimator, "0", output="out.mp4", json_path="people.json", tracker=PoseTracker())

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

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
PERSON_CATEGORY = 1


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
    import cv2

    try:
        cv2.namedWindow("litepose-probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("litepose-probe")
        return True
    except cv2.error:
        return False


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


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(source_spec, paths, force=False):
    """Before any work: no output is the input, or another output, or (without ``force``) an
    existing file; ``OutputError`` naming it otherwise."""
    from .utils.io import check_output_file

    given = [p for p in paths if p]
    for i, path in enumerate(given):
        if source_kind(source_spec) == "file" and os.path.exists(path) and _same_file(path, source_spec):
            raise OutputError(f"{path} is the input: the demo never writes onto an input; give another output")
        if any(os.path.abspath(path) == os.path.abspath(other) for other in given[:i]):
            raise OutputError(f"{path} is given for two outputs")
        check_output_file(path, force=force)


@dataclass
class VideoSummary:
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    output: str = None
    json_path: str = None
    interrupted: bool = False

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds else 0.0


def run_video(estimator, source_spec, output=None, json_path=None, show=None, tracker=None, max_frames=None,
              min_score=0.05, progress=True, force=False, color_skeleton=None, frame_problem=None):
    """Run ``estimator`` on every frame of ``source_spec`` (module doc): a ``VideoSummary``.

    ``frame_problem((w, h))``: why frames of that size must not be processed, or None; asked
    for the size the source announces, before any frame is decoded, and for every new frame
    size seen (a ``DataError`` stops the run)."""
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
    show = display_available() if show is None else bool(show)
    skeleton = color_skeleton if color_skeleton is not None else estimator.skeleton
    summary = VideoSummary(output=output, json_path=json_path)
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
            while max_frames is None or summary.frames < max_frames:
                ok, frame = source.capture.read()
                if not ok or frame is None:
                    break
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
        os.replace(partial, output)  # only a complete video gets the real name
    if json_path:
        atomic_write_text(json_path, json.dumps(records) + "\n")
    return summary


def _discard(writer, partial):
    if writer is not None:
        writer.release()
    if partial and os.path.exists(partial):
        os.unlink(partial)
