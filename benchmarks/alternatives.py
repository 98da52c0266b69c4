"""LitePose beside today's alternatives, end to end: frame in, people out, in one runtime.

Every model runs on the same 640x480 BGR frames (real photos of ``../shared/data/coco_mini``,
resized, and synthetic crowds drawn by ``litepose.data.synthetic``) in ONNX Runtime on the CPU,
float32, with the same intra-op thread count; all models are interleaved round by round (each
round gives every model one frame, in a rotating order). Per frame three stages are timed:

- **LitePose** (``Pipeline`` of ``LitePoseRow``): the project's ``PoseEstimator`` on an ONNX
  export of the architecture with random weights of a trained network's scale
  (``realistic_weights_``), BN folded, dynamic input size; its own stage times: pre-processing
  (resize, normalisation), network (one batched call of two images with the flip test),
  post-processing (aggregation + grouping + person filter). ``accurate`` preset: valid.py's
  release protocol, with the flip test (the protocol of the published AP); ``realtime``: one
  pass, no flip.
- **YOLO-pose** (``YoloRow``): Ultralytics' own ``PosePredictor`` on an ONNX export made by
  Ultralytics' own exporter (dynamic axes, so its default rectangular inference applies: 640x480
  frames become 640x480 inputs), random weights, built offline from the model definition shipped
  in ``ultralytics`` (``YOLO_OFFLINE``; nothing is downloaded); its own ``preprocess``
  (letterbox, colour order, scaling), network, ``postprocess`` (NMS at conf 0.25 / IoU 0.7,
  boxes and keypoints scaled back, ``Results``) as ``YOLO.predict`` runs them.
- **RTMO** (``RtmoRow``): see its doc (mmpose is built from PyPI only where it installs).

Random weights decide how much decoding work there is. So post-processing is timed on several
kinds of network outputs, each round on the same frame after one network call:

- ``random``: the random-weight network's own outputs. For LitePose the worst case (about half
  of every heatmap passes the detection threshold); for YOLO the best case (Ultralytics
  initialises the class bias so that no anchor passes 0.25: nobody is found).
- ``annotated``: outputs that look like a trained model's, drawn from the frame's annotated
  people. LitePose: the perfect maps of ``litepose.evaluation.oracle.render_outputs``
  (training targets and perfect tags, as ``benchmarks/oracle_eval.py`` renders them). YOLO: up
  to ``YOLO_POSITIVES`` anchors per level inside each annotated person's box fire (score 0.3 to
  0.9, the box and keypoints at the person's), the rest stay under 0.05.
- ``dense`` (YOLO only): the network's outputs with every anchor's class score above the
  threshold: NMS's worst case.

Published accuracy (COCO val2017 keypoint AP) and its protocol sit beside the measured times
(``PUBLISHED``); no AP is measured here.
"""

import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from litepose.deploy.export import _first_line
from litepose.runtime.onnx_backend import onnx_session
from litepose.errors import LitePoseError

FRAME_WH = (640, 480)
LITEPOSE_MODELS = ("XS", "S", "M", "L")
YOLO_MODELS = ("yolo11n-pose", "yolo11s-pose", "yolov8n-pose", "yolov8s-pose")
RTMO_MODELS = ("rtmo-t", "rtmo-s")
# Positive anchors per pyramid level and annotated person in the ``annotated`` YOLO outputs
# (Ultralytics' task-aligned assigner trains the 10 best anchors of a person as positives).
YOLO_POSITIVES = 10

# name: (COCO val2017 AP %, input size, protocol, source). Not measured here.
PUBLISHED = {
    "LitePose-XS": (40.6, 256, "flip test, single scale, 256 short side",
                    "authors' released COCO checkpoint (../shared/reference/litepose_facts.md)"),
    "LitePose-S": (56.8, 448, "flip test, single scale, 448 short side", "released COCO checkpoint"),
    "LitePose-M": (59.8, 448, "flip test, single scale, 448 short side", "released checkpoint; paper (Auto-M)"),
    "LitePose-L": (62.5, 512, "flip test, single scale, 512 short side", "released COCO checkpoint"),
    "yolo11n-pose": (50.0, 640, "one pass, 640, Ultralytics val", "Ultralytics docs, YOLO11 pose table"),
    "yolo11s-pose": (58.9, 640, "one pass, 640, Ultralytics val", "Ultralytics docs, YOLO11 pose table"),
    "yolov8n-pose": (50.4, 640, "one pass, 640, Ultralytics val", "Ultralytics docs, YOLOv8 pose table"),
    "yolov8s-pose": (60.0, 640, "one pass, 640, Ultralytics val", "Ultralytics docs, YOLOv8 pose table"),
    "rtmo-t": (57.4, 416, "one pass, 416, trained on body7", "mmpose RTMO README (projects/rtmo)"),
    "rtmo-s": (67.7, 640, "one pass, 640, trained on COCO", "mmpose RTMO README (projects/rtmo)"),
}
RTMO_CONFIGS = {"rtmo-t": "body7/rtmo-t_8xb32-600e_body7-416x416.py", "rtmo-s": "coco/rtmo-s_8xb32-600e_coco-640x640.py"}


class CompareError(LitePoseError):
    """A model of the comparison that cannot be built here (one line, naming what is missing)."""


# ----------------------------------------------------------------------------------- frames

@dataclass
class Frame:
    """One BGR uint8 frame, its annotated people ``keypoints [P, 17, 3]`` and boxes
    ``[P, 4]`` (x0, y0, x1, y1), in frame pixels."""
    name: str
    image: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray


def photo_frames(folder, size=FRAME_WH):
    """The COCO photos of ``folder`` (``person_keypoints_mini.json`` and ``images/``) resized
    to ``size``, their annotations scaled with them; [] when the folder is absent."""
    import cv2

    ann_file = os.path.join(folder, "person_keypoints_mini.json")
    if not os.path.isfile(ann_file):
        return []
    with open(ann_file) as handle:
        data = json.load(handle)
    frames = []
    for image in sorted(data["images"], key=lambda item: item["id"]):
        pixels = cv2.imread(os.path.join(folder, "images", image["file_name"]), cv2.IMREAD_COLOR)
        if pixels is None:
            continue
        sx, sy = size[0] / pixels.shape[1], size[1] / pixels.shape[0]
        keypoints, boxes = [], []
        for ann in data["annotations"]:
            if ann["image_id"] != image["id"] or ann.get("iscrowd", 0):
                continue
            points = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3) * (sx, sy, 1)
            keypoints.append(points)
            x, y, w, h = ann["bbox"]
            boxes.append((x * sx, y * sy, (x + w) * sx, (y + h) * sy))
        frames.append(Frame(f"photo {image['file_name']}", cv2.resize(pixels, size, interpolation=cv2.INTER_AREA),
                            np.asarray(keypoints, np.float32).reshape(-1, 17, 3),
                            np.asarray(boxes, np.float32).reshape(-1, 4)))
    return frames


def crowd_frame(rng, people, size=FRAME_WH):
    """A synthetic crowd: ``people`` figures of ``litepose.data.synthetic`` on its cluttered
    background, overlapping freely, all joints inside the frame annotated as visible."""
    from litepose.data.synthetic import draw_background, draw_person, sample_person

    width, height = size
    canvas = draw_background(rng, width, height)
    mask = np.zeros((height, width), np.uint8)
    keypoints, boxes = [], []
    for _ in range(people):
        person_height = rng.uniform(0.2, 0.6) * height
        joints, u = sample_person(rng, person_height, (rng.uniform(0.08, 0.92) * width,
                                                       rng.uniform(0.4, 0.75) * height))
        draw_person(canvas, mask, joints, u, rng)
        inside = (joints[:, 0] >= 0) & (joints[:, 0] < width) & (joints[:, 1] >= 0) & (joints[:, 1] < height)
        keypoints.append(np.concatenate([joints, np.where(inside, 2.0, 0.0)[:, None]], 1))
        low, high = joints.min(0) - u * 0.5, joints.max(0) + u * 0.5
        boxes.append((max(low[0], 0), max(low[1], 0), min(high[0], width - 1), min(high[1], height - 1)))
    return canvas[:, :, ::-1].copy(), np.asarray(keypoints, np.float32), np.asarray(boxes, np.float32)


def comparison_frames(data_root, crowds=4, seed=0, people=(6, 14)):
    """The frames of the comparison: the photos of ``data_root/coco_mini`` and ``crowds``
    synthetic crowds of ``people`` (low, high) figures each."""
    frames = photo_frames(os.path.join(data_root, "coco_mini")) if data_root else []
    rng = np.random.default_rng(seed)
    for index in range(crowds):
        image, keypoints, boxes = crowd_frame(rng, int(rng.integers(people[0], people[1] + 1)))
        frames.append(Frame(f"crowd {index} ({len(keypoints)} people)", image, keypoints, boxes))
    if not frames:
        raise CompareError(f"no frames: {data_root}/coco_mini is absent and --crowds is 0")
    return frames


# ------------------------------------------------------------------------------------ rows

@dataclass
class Row:
    """One model in one configuration: ``name`` (the key of ``PUBLISHED``), ``label`` (the
    row's text), ``family`` (the plot's line), input size, GMACs of one network pass, and the
    per-frame stage times ``samples[kind] = [(pre_s, network_s, post_s), ...]``."""
    name: str
    label: str
    family: str
    size: int
    gmacs: float
    kinds: tuple
    samples: dict = field(default_factory=dict)

    @property
    def published(self):
        return PUBLISHED.get(self.name)

    def record(self, kind, times):
        if kind in self.kinds:
            self.samples.setdefault(kind, []).append(tuple(float(t) for t in times))

    def wanted(self, kinds):
        """Decode only these kinds of outputs (those of ``kinds`` the row has)."""
        self.kinds = tuple(k for k in self.kinds if k in kinds)
        return self


class LitePoseRow(Row):
    """``PoseEstimator.from_onnx`` on one LitePose export; ``annotated`` outputs replace the
    network's by perfect maps rendered from the frame's people (``oracle.render_outputs``)."""

    def __init__(self, arch, preset, data, size, gmacs, cfg, threads):
        from litepose import PoseEstimator

        flip = preset == "accurate"
        super().__init__(f"LitePose-{arch}", f"LitePose-{arch} {preset} ({'flip' if flip else 'no flip'})",
                         "LitePose (flip, accurate)" if flip else "LitePose (no flip, realtime)", size, gmacs * (2 if flip else 1),
                         ("random", "annotated"))
        self.cfg = cfg
        self.estimator = PoseEstimator.from_onnx(data, cfg=cfg, input_size=size, preset=preset, threads=threads)
        self.network = _Substitute(self.estimator.network)
        self.estimator.network = self.network
        self.rendered = {}

    def prepare(self, frames):
        """Perfect network outputs of every frame (rendered once, outside the timings)."""
        from litepose.data.targets import TargetConfig
        from litepose.evaluation.oracle import render_outputs
        from litepose.inference.transforms import resize_geometry

        settings = self.estimator.settings
        sigma = TargetConfig.from_config(self.cfg)
        for index, frame in enumerate(frames):
            height, width = frame.image.shape[:2]
            geometry = resize_geometry((width, height), settings.input_size, 1.0, 1.0)
            people = frame.keypoints[(frame.keypoints[:, :, 2] > 0).any(1)]
            if len(people) == 0:
                people = np.zeros((1, frame.keypoints.shape[1], 3), np.float32)
            self.rendered[index] = [o.numpy().astype(np.float32) for o in
                                    render_outputs(people, geometry, self.cfg, settings, sigma)]

    def run(self, index, frame):
        people = None
        if "random" in self.kinds:
            self.network.replacement, self.network.run_anyway = None, False
            people = self.estimator(frame.image)
            network_s = people.times["network"]
            self.record("random", _litepose_stages(people.times, network_s))
        if "annotated" in self.kinds:
            # the network runs (and is timed) here only when the random outputs were not decoded
            self.network.replacement, self.network.run_anyway = self.rendered[index], people is None
            people = self.estimator(frame.image)
            network_s = people.times["network"] if self.network.run_anyway else network_s
            self.record("annotated", _litepose_stages(people.times, network_s))
        self.network.replacement = None
        return len(people)


def _litepose_stages(times, network_s):
    return times["preprocess"], network_s, times["aggregate"] + times["grouping"]


class _Substitute:
    """A runtime network whose outputs can be replaced (``replacement``: then the network does
    not run, and its time is taken from the call that ran it; with ``run_anyway`` it runs
    first and its outputs are thrown away)."""

    def __init__(self, network):
        from litepose.runtime.network import Network

        self.inner = network
        self.replacement = None
        self.run_anyway = False
        self.forward_fn = lambda *args, **kwargs: Network.forward_fn(self, *args, **kwargs)
        self.name = getattr(network, "name", "network")

    def __call__(self, batch):
        if self.replacement is None or self.run_anyway:
            outputs = self.inner(batch)
            if self.replacement is None:
                return outputs
        return self.replacement


def litepose_export(arch, repo_root):
    """``(onnx bytes, input size, GMACs, cfg)`` of LitePose-``arch`` for COCO: random weights of a
    trained network's scale, BN folded, dynamic batch and size."""
    import torch

    from litepose.config import load_config
    from litepose.deploy import export_onnx, fuse_bn
    from litepose.deploy.latency import realistic_weights_
    from litepose.models import build_model
    from litepose.models.profile import profile_model

    cfg = load_config(os.path.join(repo_root, "experiments", "coco", "mobilenet", "mobile.yaml"), [])
    torch.manual_seed(0)
    model = build_model(cfg, os.path.join(repo_root, "mobile_configs", f"search-{arch}.json")).eval()
    size = int(model.arch["img_size"])
    with torch.no_grad():
        model = fuse_bn(realistic_weights_(model, size))
        gmacs = profile_model(model, size).macs / 1e9
        data = export_onnx(model, size, dynamic=True)
    return data, size, gmacs, cfg


class YoloRow(Row):
    """Ultralytics' ``PosePredictor`` on an ONNX export of ``name`` (see the module doc); its
    ONNX Runtime session is replaced by one with ``threads`` intra-op threads."""

    def __init__(self, name, path, gmacs, threads, frames):
        import torch
        from ultralytics.models.yolo.pose import PosePredictor

        super().__init__(name, f"{name} 640", "YOLO-pose (Ultralytics)", 640, gmacs, ("random", "annotated", "dense"))
        # YOLO.predict's settings: conf 0.25, rectangular letterbox, batch 1 (its ``custom`` args)
        predictor = PosePredictor(overrides=dict(model=path, imgsz=640, conf=0.25, rect=True, batch=1, mode="predict",
                                                 verbose=False, save=False, device="cpu"))
        predictor(source=frames[0].image)  # sets up the model, image size, source type
        backend = predictor.model.backend
        backend.session = onnx_session(path, threads=int(threads))  # the project's one session builder
        self.predictor = predictor
        self.torch = torch
        self.drawn = {}
        self.rng = np.random.default_rng(0)

    def prepare(self, frames):
        for index, frame in enumerate(frames):
            tensor = self.predictor.preprocess([frame.image])
            self.drawn[index] = self.torch.from_numpy(yolo_outputs_at_people(
                frame, tuple(tensor.shape[2:]), self.rng))

    def run(self, index, frame):
        p = self.predictor
        start = time.perf_counter()
        image = p.preprocess([frame.image])
        middle = time.perf_counter()
        outputs = p.inference(image)
        network_end = time.perf_counter()
        found = p.postprocess(outputs, image, [frame.image])
        end = time.perf_counter()
        pre, net = middle - start, network_end - middle
        self.record("random", (pre, net, end - network_end))
        for kind in ("annotated", "dense"):
            if kind not in self.kinds:
                continue
            replaced = self.drawn[index] if kind == "annotated" else _dense(outputs[0] if isinstance(outputs, (list, tuple)) else outputs)
            start = time.perf_counter()
            found = p.postprocess(replaced, image, [frame.image])
            self.record(kind, (pre, net, time.perf_counter() - start))
        return len(found[0])


def _dense(outputs):
    """YOLO outputs with every anchor's class score in [0.3, 0.9): NMS's worst case."""
    import torch

    dense = outputs.clone()
    dense[:, 4] = 0.3 + 0.6 * (torch.arange(dense.shape[-1], dtype=dense.dtype) % 97) / 97.0
    return dense


def yolo_outputs_at_people(frame, input_hw, rng, strides=(8, 16, 32), positives=YOLO_POSITIVES):
    """``[1, 5 + 51, A]`` float32 outputs of a YOLO pose head (box centre and size in input
    pixels, person score, 17 x (x, y, visibility)) at the letterboxed input ``input_hw`` of
    ``frame``: the ``positives`` anchors nearest each annotated person's box centre per level
    (inside the box) fire, score 0.3 to 0.9 falling with the distance, box and keypoints at the
    person's with a jitter of 3 % of the box; every other anchor scores under 0.05."""
    height, width = frame.image.shape[:2]
    in_h, in_w = input_hw
    ratio = min(in_h / height, in_w / width)
    pad = ((in_w - round(width * ratio)) / 2, (in_h - round(height * ratio)) / 2)
    centres = []
    for stride in strides:
        ys, xs = np.mgrid[0:in_h // stride, 0:in_w // stride].astype(np.float32)
        centres.append(np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride, np.full(xs.size, stride)], 1))
    centres = np.concatenate(centres)
    out = np.zeros((1, 5 + 51, len(centres)), np.float32)
    out[0, 0:2] = centres[:, :2].T
    out[0, 2:4] = centres[:, 2:3].T * 4
    out[0, 4] = rng.uniform(0.0, 0.05, len(centres))
    for keypoints, box in zip(frame.keypoints, frame.boxes):
        x0, y0, x1, y1 = box * ratio + (pad[0], pad[1], pad[0], pad[1])
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        points = keypoints.copy()
        points[:, :2] = points[:, :2] * ratio + pad
        for stride in strides:
            level = np.flatnonzero((centres[:, 2] == stride) & (centres[:, 0] >= x0) & (centres[:, 0] <= x1)
                                   & (centres[:, 1] >= y0) & (centres[:, 1] <= y1))
            if level.size == 0:
                continue
            distance = np.hypot((centres[level, 0] - cx) / w, (centres[level, 1] - cy) / h)
            chosen = level[np.argsort(distance)[:positives]]
            scale = np.exp(-4 * np.sort(distance)[:positives] ** 2)
            jitter = rng.normal(0, 0.03, (len(chosen), 4)) * (w, h, w, h)
            out[0, 0:4, chosen] = (np.array([cx, cy, w, h]) + jitter)
            out[0, 4, chosen] = np.maximum(out[0, 4, chosen], 0.3 + 0.6 * scale)
            kx = points[:, 0][None] + rng.normal(0, 0.03 * w, (len(chosen), 17))
            ky = points[:, 1][None] + rng.normal(0, 0.03 * h, (len(chosen), 17))
            kv = np.where(points[:, 2] > 0, 0.9, 0.1)[None].repeat(len(chosen), 0)
            out[0, 5::3, chosen] = kx
            out[0, 6::3, chosen] = ky
            out[0, 7::3, chosen] = kv
    return out


def yolo_export(name, folder):
    """``(path, GMACs at 640)``: ``name`` (e.g. yolo11n-pose) with random weights from the
    model definition shipped in ultralytics, one class (person) as the released pose models,
    exported by Ultralytics' own exporter to ``folder`` (ONNX, dynamic axes), offline."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # before the import: no downloads, no analytics
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        from ultralytics import YOLO
        from ultralytics.nn.tasks import PoseModel
    except Exception as exc:
        raise CompareError(f"the YOLO rows need the ultralytics package ({_first_line(exc)}): "
                           "pip install --no-deps ultralytics ultralytics-thop polars polars-runtime-32") from None
    import shutil

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = YOLO(f"{name}.yaml")
        shipped = model.model
        model.model = PoseModel(f"{name}.yaml", nc=1, verbose=False)  # the released pose models: one class
        model.model.names, model.model.args, model.model.task = {0: "person"}, shipped.args, shipped.task
        gmacs = macs(model.model.fuse(), 640) / 1e9
        cwd = os.getcwd()
        try:
            os.chdir(folder)  # the exporter writes beside the YAML's name, in the working folder
            path = model.export(format="onnx", dynamic=True, simplify=False, imgsz=640, device="cpu", verbose=False)
        finally:
            os.chdir(cwd)
    target = os.path.join(folder, f"{name}.onnx")
    if os.path.abspath(os.path.join(folder, path)) != os.path.abspath(target):
        shutil.move(os.path.join(folder, path), target)
    return target, gmacs


def macs(model, size):
    """MACs of one ``[1, 3, S, S]`` image by the project's counter (``litepose.models.profile``:
    the thop convention behind the paper's figures)."""
    from litepose.models.profile import profile_model

    return profile_model(_Tensors(model), size).macs


def _Tensors(model):
    import torch

    class Tensors(torch.nn.Module):
        """Tensors only (YOLO's eval output carries a tuple with a list)."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            out = self.model(x)
            return out[0] if isinstance(out, (list, tuple)) else out

    return Tensors()


class OpenVinoSession:
    """An OpenVINO CPU model (float32, ``threads`` inference threads) behind ONNX Runtime's
    ``session.run(names, feed)``: swapped for a row's ONNX Runtime session, every model runs its
    same export, pre- and post-processing in the other runtime."""

    def __init__(self, model, threads):
        import openvino as ov

        core = ov.Core()
        source = core.read_model(model) if isinstance(model, (str, os.PathLike)) else \
            core.read_model(model=bytes(model), weights=b"")
        self.compiled = core.compile_model(source, "CPU", {"INFERENCE_NUM_THREADS": int(threads),
                                                          "INFERENCE_PRECISION_HINT": "f32"})
        self.request = self.compiled.create_infer_request()

    def get_inputs(self):
        import types

        return [types.SimpleNamespace(name=port.get_any_name()) for port in self.compiled.inputs]

    def run(self, names, feed):
        results = self.request.infer(list(feed.values()))
        return [np.array(results[output]) for output in self.compiled.outputs]


def use_openvino(row, model, threads):
    """Run ``row``'s network in OpenVINO instead of ONNX Runtime (the same ONNX ``model``:
    bytes or a path; RTMO's own export when None)."""
    session = OpenVinoSession(model if model is not None else row.onnx_path, threads)
    if isinstance(row, LitePoseRow):
        row.network.inner.session = session
    elif isinstance(row, YoloRow):
        row.predictor.model.backend.session = session
    else:
        row.session = session
    row.label += " (OpenVINO)"
    row.family += ", OpenVINO"
    return row


# --------------------------------------------------------------------------------- timing

def time_rows(rows, frames, rounds, warmup=1, progress=True, description="rounds"):
    """Interleave ``rows`` round by round: each round every row takes one frame (the frames in
    turn), in an order rotating by one every round; ``warmup`` untimed rounds first."""
    from tqdm import tqdm

    for row in rows:
        row.prepare(frames)
    order = list(range(len(rows)))
    with tqdm(total=(warmup + rounds) * len(rows), desc=description, unit="frame", disable=not progress,
              leave=False, dynamic_ncols=True) as bar:
        for round_index in range(-warmup, rounds):
            frame_index = round_index % len(frames)
            shift = round_index % len(rows) if round_index >= 0 else 0
            for position in order[shift:] + order[:shift]:
                row = rows[position]
                kept = {kind: len(values) for kind, values in row.samples.items()}
                row.run(frame_index, frames[frame_index])
                if round_index < 0:  # warm-up: drop what it recorded
                    for kind, values in row.samples.items():
                        del values[kept.get(kind, 0):]
                bar.update()
    return rows


def summary(samples):
    """Figures of ``[(pre_s, network_s, post_s), ...]`` in ms: stage medians, total median and
    99th percentile, frames per second (frames over the summed totals), post+pre over network."""
    values = np.asarray(samples, np.float64) * 1000.0
    total = values.sum(1)
    overhead = (values[:, 0] + values[:, 2]) / values[:, 1]
    return {"frames": len(values), "pre_ms": float(np.median(values[:, 0])),
            "network_ms": float(np.median(values[:, 1])), "post_ms": float(np.median(values[:, 2])),
            "post_max_ms": float(values[:, 2].max()), "total_ms": float(np.median(total)),
            "p99_ms": float(np.percentile(total, 99)), "fps": float(1000.0 * len(total) / total.sum()),
            "overhead_median": float(np.median(overhead)), "overhead_max": float(overhead.max())}


def markdown(results, kind):
    """One table of ``results`` (``[{"row": Row, "threads": t}, ...]``) for outputs ``kind``."""
    head = ["Model", "Threads", "Input", "GMACs", "COCO AP (published; protocol)", "network", "pre", "post",
            "total median", "total p99", "fps", "(pre+post)/network median, max"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for item in results:
        row = item["row"]
        if kind not in row.samples:
            continue
        s = summary(row.samples[kind])
        ap = row.published
        ap_text = f"{ap[0]:.1f} ({ap[2]})" if ap else "–"
        if ap and "no flip" in row.label:
            ap_text = f"under {ap[0]:.1f} (published with the flip test only)"
        lines.append("| " + " | ".join([row.label, str(item["threads"]), str(row.size), f"{row.gmacs:.2f}", ap_text,
                                        f"{s['network_ms']:.1f}", f"{s['pre_ms']:.1f}", f"{s['post_ms']:.1f}",
                                        f"{s['total_ms']:.1f}", f"{s['p99_ms']:.1f}", f"{s['fps']:.1f}",
                                        f"{100 * s['overhead_median']:.0f} %, {100 * s['overhead_max']:.0f} %"]) + " |")
    return "\n".join(lines)


def plot(results, path, kind="annotated"):
    """Published AP against the median end-to-end time (``kind`` outputs), one line per family,
    one panel per thread count. LitePose without flip is drawn at the AP published with the
    flip test (its own is not published, and lower): an upper bound, dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    threads = sorted({item["threads"] for item in results})
    figure, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4.5), squeeze=False)
    styles = {"LitePose (flip, accurate)": ("tab:blue", "o", "-"),
              "LitePose (no flip, realtime)": ("tab:blue", "o", ":"),
              "YOLO-pose (Ultralytics)": ("tab:red", "s", "-"), "RTMO (stand-in network)": ("tab:green", "^", "--"),
              "RTMO (mmpose)": ("tab:green", "^", "-")}
    for axis, count in zip(axes[0], threads):
        families = {}
        for item in results:
            row = item["row"]
            if item["threads"] == count and row.published and kind in row.samples:
                families.setdefault(row.family, []).append((summary(row.samples[kind])["total_ms"], row.published[0],
                                                            row.label.split(" ")[0]))
        for family, points in families.items():
            points.sort()
            colour, marker, line = styles.get(family.replace(", OpenVINO", ""), ("tab:gray", "x", "-"))
            if family.endswith(", OpenVINO"):
                marker, line = "x", "-."
            label = family + (" (AP: the flip test's, an upper bound)" if "no flip" in family else "")
            axis.plot([p[0] for p in points], [p[1] for p in points], marker=marker, color=colour, linestyle=line,
                      label=label, markerfacecolor="none" if line != "-" else colour)
            for x, y, name in points:
                axis.annotate(name.replace("LitePose-", "").replace("-pose", ""), (x, y), textcoords="offset points",
                              xytext=(4, 4), fontsize=7)
        axis.set_xscale("log")
        axis.set_xlabel(f"median ms per 640x480 frame, end to end ({kind} outputs; log scale)")
        axis.set_ylabel("COCO val2017 AP (published)")
        axis.set_title(f"float32 on the CPU, {count} thread(s)")
        low, high = axis.get_xlim()
        axis.set_xticks([t for t in (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if low <= t <= high])
        axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def to_json(results):
    return [{"model": item["row"].name, "label": item["row"].label, "family": item["row"].family,
             "threads": item["threads"], "input_size": item["row"].size, "gmacs": item["row"].gmacs,
             "published": item["row"].published,
             "kinds": {kind: {**summary(values), "samples_ms": (np.asarray(values) * 1000).round(3).tolist()}
                       for kind, values in item["row"].samples.items()}} for item in results]


# ------------------------------------------------------------------------------------ RTMO

def _import_mmpose():
    """mmpose's ``init_model``, or a ``CompareError`` saying what is missing. mmcv from PyPI
    builds here only as mmcv-lite (no compiled ``mmcv.ops``); mmpose imports ``mmcv.ops`` for
    heads RTMO does not use (EDPose's deformable attention, DEKR's deformable convolution) and
    mmdet for NMS on large images: when the compiled ops are absent, ``mmcv.ops`` is replaced by
    a module whose members raise when used."""
    import importlib
    import sys
    import types

    try:
        importlib.import_module("mmcv.ops")
    except ModuleNotFoundError as exc:
        if not str(exc).startswith("No module named 'mmcv"):
            raise
        if importlib.util.find_spec("mmcv") is None:
            raise CompareError("the RTMO rows need mmpose (pip install mmengine mmdet mmpose --no-deps, and mmcv-lite: "
                               "MMCV_WITH_OPS=0 pip install --no-build-isolation mmcv-lite==2.1.0)") from None

        class _NotBuilt:
            def __init__(self, *args, **kwargs):
                raise CompareError("mmcv.ops is not built here (mmcv-lite)")

        stub = types.ModuleType("mmcv.ops")
        for name in ("MultiScaleDeformableAttention", "DeformConv2d", "ModulatedDeformConv2d", "batched_nms", "nms"):
            setattr(stub, name, _NotBuilt)
        sys.modules["mmcv.ops"] = stub
    except ImportError as exc:
        if "_ext" not in str(exc):
            raise
    try:
        from mmpose.apis import init_model
    except Exception as exc:
        raise CompareError(f"the RTMO rows need mmpose ({_first_line(exc)})") from None
    return init_model


class RtmoRow(Row):
    """RTMO-t / RTMO-s built from mmpose's model definitions (its configs shipped in the
    package) with random weights: mmpose's own test pipeline and ``data_preprocessor`` as
    pre-processing, the network (backbone, hybrid encoder, head convolutions) in ONNX Runtime,
    and ``RTMOHead.predict`` (score filter, NMS, the dynamic coordinate classifier that decodes
    each kept person's joints) plus the mapping back to the frame as post-processing, in
    PyTorch, as mmpose runs it. ``annotated`` outputs: the network's, with the anchors nearest
    each annotated person's box centre (``YOLO_POSITIVES`` per level, inside the box) scoring 0.3
    to 0.9 at the person's box."""

    def __init__(self, name, threads, folder):
        import torch
        from mmengine.dataset import Compose, pseudo_collate

        import mmpose

        init_model = _import_mmpose()
        config = os.path.join(os.path.dirname(mmpose.__file__), ".mim", "configs", "body_2d_keypoint", "rtmo",
                              RTMO_CONFIGS[name])
        from mmengine.logging import MMLogger

        torch.manual_seed(0)
        logger = MMLogger.get_current_instance()
        level = logger.level
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logger.setLevel("ERROR")  # mmengine reports every initialised and converted layer
            model = init_model(config, checkpoint=None, device="cpu")
            model.init_weights()  # mmpose's initialisation (class bias at a prior of 0.01), as training starts
            model.eval()
            model.switch_to_deploy()  # mmpose's deployment form: RepVGG blocks fused, positions precomputed
            logger.setLevel(level)
        size = int(model.cfg.codec.input_size[0]) if "codec" in model.cfg else int(model.head.test_cfg["input_size"][0])
        network = _RtmoNetwork(model)
        with torch.no_grad():
            gmacs = macs(network, size) / 1e9
        super().__init__(name, f"{name.upper()} {size}", "RTMO (mmpose)", size, gmacs,
                         ("random", "annotated"))
        path = os.path.join(folder, f"{name}.onnx")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(network, (torch.zeros(1, 3, size, size),), path, dynamo=False, opset_version=17,
                              input_names=["input"], do_constant_folding=True)
        self.session = onnx_session(path, threads=int(threads))
        self.onnx_path = path
        self.model, self.torch, self.collate = model, torch, pseudo_collate
        self.pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
        self.levels = len(model.head.featmap_strides)
        self.drawn = {}
        self.rng = np.random.default_rng(0)

    def _preprocess(self, image):
        data = self.pipeline({"img": image, **self.model.dataset_meta})
        batch = self.model.data_preprocessor(self.collate([data]), False)
        return batch["inputs"], batch["data_samples"]

    def _postprocess(self, outputs, samples):
        torch = self.torch
        tensors = [torch.from_numpy(o) for o in outputs]
        n = self.levels
        structured = (tensors[:n], tensors[n:2 * n], [], tensors[2 * n:3 * n], tensors[3 * n:4 * n])
        head = self.model.head
        with torch.no_grad():
            head.forward = lambda feats: structured
            try:
                predictions = head.predict(None, samples, test_cfg=self.model.test_cfg)
            finally:
                del head.forward
            return self.model.add_pred_to_datasample(predictions, None, samples)

    def prepare(self, frames):
        head = self.model.head
        for index, frame in enumerate(frames):
            inputs, samples = self._preprocess(frame.image)
            outputs = [np.array(o) for o in self.session.run(None, {"input": inputs.numpy()})]
            meta = samples[0].metainfo
            sizes = [o.shape[2:] for o in outputs[:self.levels]]
            priors = [p.numpy() for p in head.prior_generator.grid_priors(sizes, device="cpu")]
            center, scale = np.asarray(meta["input_center"]), np.asarray(meta["input_scale"])
            in_wh = np.asarray(meta["input_size"], np.float64)

            def to_input(points):
                return (points - center) / scale * in_wh + in_wh / 2

            for keypoints, box in zip(frame.keypoints, frame.boxes):
                (x0, y0), (x1, y1) = to_input(box[:2]), to_input(box[2:])
                w, h, cx, cy = max(x1 - x0, 1.0), max(y1 - y0, 1.0), (x0 + x1) / 2, (y0 + y1) / 2
                for level, (stride, grid) in enumerate(zip(head.featmap_strides, priors)):
                    inside = np.flatnonzero((grid[:, 0] >= x0) & (grid[:, 0] <= x1) & (grid[:, 1] >= y0)
                                            & (grid[:, 1] <= y1))
                    if inside.size == 0:
                        continue
                    distance = np.hypot((grid[inside, 0] - cx) / w, (grid[inside, 1] - cy) / h)
                    chosen = inside[np.argsort(distance)[:YOLO_POSITIVES]]
                    score = 0.3 + 0.6 * np.exp(-4 * np.sort(distance)[:YOLO_POSITIVES] ** 2)
                    rows, cols = np.divmod(chosen, sizes[level][1])
                    cls, bbox = outputs[level], outputs[self.levels + level]
                    cls[0, 0, rows, cols] = np.maximum(cls[0, 0, rows, cols], np.log(score / (1 - score)))
                    jitter = self.rng.normal(0, 0.03, (len(chosen), 2))
                    bbox[0, 0, rows, cols] = (cx - grid[chosen, 0]) / stride + jitter[:, 0]
                    bbox[0, 1, rows, cols] = (cy - grid[chosen, 1]) / stride + jitter[:, 1]
                    bbox[0, 2, rows, cols] = math.log(w / stride)
                    bbox[0, 3, rows, cols] = math.log(h / stride)
            self.drawn[index] = outputs

    def run(self, index, frame):
        start = time.perf_counter()
        inputs, samples = self._preprocess(frame.image)
        middle = time.perf_counter()
        outputs = self.session.run(None, {"input": inputs.numpy()})
        network_end = time.perf_counter()
        found = self._postprocess(outputs, samples)
        pre, net = middle - start, network_end - middle
        self.record("random", (pre, net, time.perf_counter() - network_end))
        if "annotated" in self.kinds:
            start = time.perf_counter()
            found = self._postprocess(self.drawn[index], samples)
            self.record("annotated", (pre, net, time.perf_counter() - start))
        return len(found[0].pred_instances)


def _RtmoNetwork(model):
    import torch

    class RtmoNetwork(torch.nn.Module):
        """Backbone, neck and head convolutions of an mmpose RTMO: per level the class logits,
        box deltas, joint visibility logits and pose vectors (``RTMOHead.forward``)."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            cls, bbox, _, vis, vecs = self.model.head.forward(self.model.extract_feat(x))
            return (*cls, *bbox, *vis, *vecs)

    return RtmoNetwork()


def from_json(records):
    """``results`` (as ``markdown`` and ``plot`` take them) of ``to_json``'s records: a finished
    run's table and plot drawn again without timing anything."""
    results = []
    for record in records:
        kinds = record["kinds"]
        row = Row(record["model"], record["label"], record["family"], record["input_size"], record["gmacs"],
                  tuple(kinds), {kind: [tuple(v / 1000.0 for v in sample) for sample in values["samples_ms"]]
                                 for kind, values in kinds.items()})
        results.append({"row": row, "threads": record["threads"]})
    return results
