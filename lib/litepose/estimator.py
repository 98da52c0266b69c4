"""Multi-person pose in one call: ``PoseEstimator``.

    from litepose import PoseEstimator
    estimator = PoseEstimator.from_exported("litepose-xs.onnx", preset="realtime")
    people = estimator(frame)          # frame: [H, W, 3] uint8, BGR as OpenCV reads it (color="rgb" otherwise)
    people.keypoints, people.scores    # [P, J, 3] x, y, score in frame pixels; [P]

Backends: any export of ``tools/export.py`` (``from_exported(path)``: ONNX Runtime, OpenVINO,
TFLite, ncnn, TorchScript, chosen by the file, settings from the export's metadata; ONNX imports
no PyTorch) and PyTorch (``from_checkpoint`` / ``from_model``). Both run the network
(``litepose.runtime``) then the one NumPy / OpenCV decoder (``litepose.inference``: aggregation,
grouping), the one ``litepose.inference.predict`` runs too: the same people before the person
filter.

Presets:

- ``accurate``: ``valid.py``'s settings, as ``InferenceSettings.from_config`` resolves them
  (the release's: flip test, maps projected to the input size before grouping), then the
  person filter (``runtime.people.PersonFilter``: people scoring under 0.1 and duplicates above
  OKS 0.9 removed; ``min_person_score=None, person_nms=None, hide_outside=False`` return
  valid.py's people).
- ``realtime``: one pass without flip, grouping at the finest output's resolution
  (``project_to_image`` False), and the decoding caps of ``inference.DecodeLimits``:
  ``max_people=20`` (only the 20 best people are refined and returned; 20 is what COCO /
  CrowdPose evaluation keeps per image, so AP does not change) and ``max_detections=20``
  (at most 20 detections per joint enter matching, instead of ``max_num_people`` = 30: this
  changes frames where a joint has more than 20 detections). Decoding then costs a bounded
  time whatever the maps. Matching takes SciPy's optimal assignment (``fast_assignment``)
  instead of the release's tie-exact Munkres: equally cheap assignments are broken another way
  (its AP on the quickstart's validation set is not lower: BENCHMARKS.md, "LitePose beside
  YOLO-pose and RTMO"). Person filter: scores under 0.2 and duplicates above OKS 0.9 removed.

The filter thresholds are the highest that cost under 0.001 AP on the quickstart's validation
set (people per image 35 -> 4.7 for ``accurate``, 19 -> 2.3 for ``realtime``, 2.0 annotated).

Any preset setting can be overridden: ``flip=``, ``project_to_image=``, ``max_people=``,
``max_detections=`` (None = no cap), ``fast_assignment=``, ``min_person_score=``, ``person_nms=``
(None = off), ``hide_outside=`` (both presets: True, joints placed outside the frame get score 0;
their x, y are kept), ``input_size=``.
"""

import dataclasses
import os
import re
import time

import numpy as np

from .errors import ArgumentError, LitePoseError
from .inference import DecodeLimits, People, compute_maps, decode
from .runtime.exported import FORMATS as EXPORT_FORMATS
from .runtime.people import NO_FILTER, PersonFilter, hide_outside_frame
from .utils.args import check_choice, check_number

__all__ = ["FrameError", "People", "PoseEstimator", "check_frame", "preset_settings", "release_test_config"]

PRESETS = ("accurate", "realtime")
COLORS = ("bgr", "rgb")
REALTIME_MAX_PEOPLE = 20
REALTIME_MAX_DETECTIONS = 20
# Person filter per preset (runtime.people): the highest person-score thresholds that cost under
# 0.001 AP on the quickstart's validation set, and duplicate suppression above OKS 0.9, which
# cost nothing there (python -m benchmarks.estimator_ap --sweep-filter; BENCHMARKS.md "Person filter").
# Joints placed outside the frame are reported with score 0 (runtime.people: why not clipped).
PRESET_FILTERS = {"accurate": PersonFilter(min_score=0.1, nms_oks=0.9, hide_outside=True),
                  "realtime": PersonFilter(min_score=0.2, nms_oks=0.9, hide_outside=True)}
# The release's test-time settings (experiments/{coco,crowd_pose}/mobilenet/mobile.yaml, TEST.*)
# for an ONNX model that comes without a config; a test checks them against those files.
_RELEASE_TEST_OPTS = ("TEST.FLIP_TEST", "True", "TEST.SCALE_FACTOR", "[1]", "TEST.DETECTION_THRESHOLD", "0.1",
                      "TEST.TAG_THRESHOLD", "1.0", "TEST.NMS_KERNEL", "5", "TEST.NMS_PADDING", "2",
                      "TEST.WITH_HEATMAPS", "(True, True)", "TEST.WITH_AE", "(True, False)",
                      "TEST.PROJECT2IMAGE", "True", "TEST.ADJUST", "True", "TEST.REFINE", "True",
                      "TEST.USE_DETECTION_VAL", "True", "TEST.IGNORE_TOO_MUCH", "False",
                      "DATASET.MAX_NUM_PEOPLE", "30", "MODEL.TAG_PER_JOINT", "True",
                      "LOSS.WITH_HEATMAPS_LOSS", "(True, True)", "LOSS.WITH_AE_LOSS", "(True, False)")
_DATASETS = {"coco": ("coco", 17), "crowdpose": ("crowd_pose", 14), "crowd_pose": ("crowd_pose", 14)}


class FrameError(ArgumentError):
    """A frame the estimator cannot take (not an [H, W, 3] uint8 array, an unknown colour order,
    or a shape whose network input would exceed ``litepose.utils.limits``)."""


_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")


def _override_names():
    """The preset settings a constructor's keywords may override: ``preset_settings``' own."""
    import inspect

    return tuple(name for name in inspect.signature(preset_settings).parameters if name not in ("settings", "preset"))


def check_options(input_size=None, threads=None, device=None, preset="accurate", dataset=None, cfg=None,
                  overrides=None, format=None, cfg_required=False):
    """The one check of the constructors' arguments (``from_onnx``, ``from_exported``,
    ``from_checkpoint``, ``from_model``): ``ArgumentError`` naming the first one of the wrong type
    or outside its range, before any file is opened."""
    from .utils.limits import input_size_problem

    if input_size is not None:
        size = int(input_size) if isinstance(input_size, np.integer) else input_size
        problem = input_size_problem(size, "input_size")
        if problem:
            raise ArgumentError(problem)
    check_number("threads", threads, 1, 1024, integer=True, allow_none=True)
    if device is not None and not (type(device).__name__ == "device" and hasattr(device, "type")):
        if not isinstance(device, str) or not _DEVICE.fullmatch(device.strip()):
            raise ArgumentError(f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {device!r}")
    check_choice("preset", preset, PRESETS)
    if dataset is not None and str(dataset).lower() not in _DATASETS:
        raise ArgumentError(f"unknown dataset {dataset!r} (known: coco, crowdpose)")
    if format is not None:
        check_choice("format", format, EXPORT_FORMATS)
    if cfg is None:
        if cfg_required:
            raise ArgumentError("cfg is required: a config (load_config) or the path of its YAML file")
    elif not isinstance(cfg, (str, os.PathLike)) and not (isinstance(cfg, dict) and hasattr(cfg, "freeze")):
        raise ArgumentError(f"cfg must be a config (litepose.config.load_config) or a YAML path, got "
                            f"{type(cfg).__name__}")
    known = _override_names()
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ArgumentError(f"unknown option {key}= (known: {', '.join(known)}, and the constructor's own)")
        if key in ("flip", "project_to_image", "fast_assignment") and value not in (None, "preset") and \
                not isinstance(value, (bool, np.bool_)):
            raise ArgumentError(f"{key} must be True, False or None, got {value!r}")
        if key in ("max_people", "max_detections") and value != "preset":
            check_number(key, value, 1, 10_000, integer=True, allow_none=True)
        if key in ("min_person_score", "person_nms") and value != "preset":
            check_number(key, value, 0, 1, allow_none=True)


def release_test_config(dataset="coco"):
    """A config holding the release's test-time settings for ``dataset`` (coco or crowdpose)."""
    from .config import load_config

    key = str(dataset).lower()
    if key not in _DATASETS:
        raise LitePoseError(f"unknown dataset {dataset!r} (known: coco, crowdpose)")
    name, joints = _DATASETS[key]
    return load_config(None, ("DATASET.DATASET", f"{name}_kpt" if name == "coco" else "crowd_pose_kpt",
                              "DATASET.DATASET_TEST", name, "DATASET.NUM_JOINTS", str(joints),
                              "MODEL.NUM_JOINTS", str(joints)) + _RELEASE_TEST_OPTS)


def preset_settings(settings, preset, flip=None, project_to_image=None, max_people="preset",
                    max_detections="preset", min_person_score="preset", person_nms="preset",
                    fast_assignment="preset", hide_outside="preset"):
    """``(InferenceSettings, DecodeLimits, PersonFilter)`` of ``preset`` on top of ``settings``
    (the config's)."""
    if preset not in PRESETS:
        raise LitePoseError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    if preset == "realtime":
        settings = dataclasses.replace(settings, flip=False, scales=(1.0,), project_to_image=False)
        cap, detections, fast = REALTIME_MAX_PEOPLE, REALTIME_MAX_DETECTIONS, True
    else:
        cap = detections = None
        fast = False
    if flip is not None:
        settings = dataclasses.replace(settings, flip=bool(flip))
    if project_to_image is not None:
        settings = dataclasses.replace(settings, project_to_image=bool(project_to_image))
    if max_people != "preset":
        cap = max_people
    if max_detections != "preset":
        detections = max_detections
    if fast_assignment != "preset":
        fast = bool(fast_assignment)
    people = PRESET_FILTERS[preset]
    if min_person_score != "preset":
        people = dataclasses.replace(people, min_score=min_person_score)
    if person_nms != "preset":
        people = dataclasses.replace(people, nms_oks=person_nms)
    if hide_outside != "preset":
        people = dataclasses.replace(people, hide_outside=bool(hide_outside))
    return settings, DecodeLimits(max_people=cap, max_detections=detections, fast_assignment=fast), people


class PoseEstimator:
    """Frames in, people out (module doc). Build it with ``from_onnx``, ``from_checkpoint`` or
    ``from_model``; call it on ``[H, W, 3]`` uint8 frames."""

    def __init__(self, network, settings, limits=None, keypoint_info=None, preset="accurate", person_filter=None):
        check_choice("preset", preset, PRESETS)
        self._fitting_sizes = frozenset()  # frame sizes whose network input is within the limits
        self.network = network
        self.settings = settings
        self.limits = limits or DecodeLimits()
        self.keypoint_info = keypoint_info
        self.preset = preset
        self.person_filter = person_filter or NO_FILTER
        if self.person_filter.nms_oks is not None and keypoint_info is None:
            raise LitePoseError("person NMS needs the joints' OKS sigmas: give keypoint_info")

    @property
    def backend(self):
        return getattr(self.network, "name", type(self.network).__name__)

    @property
    def skeleton(self):
        return self.keypoint_info.skeleton if self.keypoint_info is not None else ()

    def __repr__(self):
        s = self.settings
        return (f"PoseEstimator(backend={self.backend}, preset={self.preset}, input_size={s.input_size}, "
                f"joints={s.num_joints}, flip={s.flip}, project_to_image={s.project_to_image}, "
                f"max_people={self.limits.max_people})")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_exported(cls, path, format=None, dataset=None, input_size=None, preset="accurate", threads=None,
                      device="cpu", cfg=None, **overrides):
        """An estimator on an export of ``tools/export.py`` (ONNX, OpenVINO, TFLite, ncnn,
        TorchScript; Core ML only on macOS), each run by its own runtime
        (``litepose.runtime.exported.open_network``; ONNX imports no PyTorch).

        ``path`` is all it needs: the format comes from the file (``format`` overrides), the
        dataset, joints, input size and test settings from the export's metadata. ``input_size``
        changes the size a dynamic export runs at; ``dataset`` (coco, crowdpose) or ``cfg`` (a
        config or YAML path) give the settings of an export without metadata (older exports,
        ``export_onnx`` bytes), and must agree with the metadata otherwise. A fixed-size export
        takes any frame: it is letterboxed to the export's size (``letterbox``)."""
        check_options(input_size, threads, device, preset, dataset, cfg, overrides, format=format)
        from .runtime.exported import open_network

        network = open_network(path, format, threads=threads, device=device)
        meta = network.metadata
        label = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "the ONNX model"
        if meta is not None:
            if dataset is not None and _DATASETS.get(str(dataset).lower(), (None,))[0] != \
                    _DATASETS.get(meta.dataset["name"], (meta.dataset["name"],))[0]:
                raise ArgumentError(f"{label} is a {meta.dataset['name']} model ({meta.dataset['num_joints']} joints), "
                                    f"not {dataset}: leave dataset= out, the export knows its own")
            if cfg is None:
                cfg = meta.to_config()
                info = meta.keypoint_info()
            else:
                cfg = _as_config(cfg)
                info = None
        else:
            cfg = _as_config(cfg) if cfg is not None else release_test_config(dataset or "coco")
            info = None
        if info is None:
            from .data.coco_format import keypoint_info_from_config

            info = keypoint_info_from_config(cfg, for_test=True)
        if meta is not None and info.num_joints != meta.dataset["num_joints"]:
            raise ArgumentError(f"{label} has {meta.dataset['num_joints']} joints, the config "
                                f"{info.num_joints}: give the config it was exported with, or none")
        fixed = network.fixed_hw
        if fixed is not None:
            if input_size is not None and int(input_size) != min(fixed):
                raise ArgumentError(f"{label} takes {fixed[1]}x{fixed[0]} inputs only (fixed size), not input_size="
                                    f"{input_size}: leave input_size out (frames are letterboxed to it), or "
                                    f"export it without --fixed")
            input_size = min(fixed)
        elif input_size is None:
            if meta is None:
                raise ArgumentError(f"{label} has a dynamic input size and no LitePose metadata: give input_size= "
                                    f"(e.g. 256 for XS), or export it again with tools/export.py")
            input_size = meta.input_size
        from .inference.settings import InferenceSettings

        settings = InferenceSettings.from_config(cfg, None, input_size)
        settings, limits, people = preset_settings(settings, preset, **overrides)
        if fixed is not None and len(settings.scales) > 1:
            raise ArgumentError(f"{label} has a fixed input size: it runs one scale, not TEST.SCALE_FACTOR "
                                f"{list(settings.scales)}")
        check_network_outputs(network, settings, path)
        return cls(network, settings, limits, info, preset, people)

    @classmethod
    def from_onnx(cls, path, dataset=None, input_size=None, preset="accurate", threads=None, device="cpu", cfg=None,
                  **overrides):
        """``from_exported`` of an ONNX model (a path, or ONNX bytes): no PyTorch is imported."""
        return cls.from_exported(path, "onnx", dataset=dataset, input_size=input_size, preset=preset, threads=threads,
                                 device=device, cfg=cfg, **overrides)

    @classmethod
    def from_checkpoint(cls, checkpoint, cfg=None, arch=None, preset="accurate", device=None, input_size=None,
                        **overrides):
        """An estimator on PyTorch: ``cfg`` (a config or YAML path: the dataset and test
        settings), ``arch`` (architecture JSON path or dict; default ``MODEL.ARCH``),
        ``checkpoint`` (the release's format or ours; ``models.load_model``: NaN or infinite
        weights are refused with ``NonFiniteWeightsError``). Without ``cfg``, ``checkpoint`` must
        be named as a released model (``litepose-xs-coco.pth``, ``litepose.released.RELEASED``),
        whose config and architecture the package ships."""
        check_options(input_size, None, device, preset, None, cfg, overrides)
        from .models import load_model

        if cfg is None:
            cfg, arch = _released_config(checkpoint, arch)
        cfg = _as_config(cfg)
        model = load_model(cfg, arch, os.fspath(checkpoint))
        return cls.from_model(model, cfg, preset=preset, device=device, input_size=input_size, **overrides)

    @classmethod
    def from_model(cls, model, cfg, preset="accurate", device=None, input_size=None, **overrides):
        """An estimator on a built PyTorch model (weights loaded)."""
        check_options(input_size, None, device, preset, None, cfg, overrides, cfg_required=True)
        from .data.coco_format import keypoint_info_from_config
        from .inference.settings import InferenceSettings
        from .runtime.torch_backend import TorchNetwork

        cfg = _as_config(cfg)
        if device is None:
            from .utils.device import resolve_device

            device = resolve_device(cfg.DEVICE)
        settings = InferenceSettings.from_config(cfg, model, input_size)
        settings, limits, people = preset_settings(settings, preset, **overrides)
        return cls(TorchNetwork(model, device), settings, limits, keypoint_info_from_config(cfg, for_test=True),
                   preset, people)

    # -- inference ----------------------------------------------------------------------------
    def __call__(self, frame, color="bgr", keep_maps=False):
        """People in ``frame`` (``[H, W, 3]`` uint8; ``color`` "bgr" as OpenCV gives frames,
        or "rgb"): a ``People`` (``litepose.inference.People``)."""
        check_frame(frame, color)
        fixed = getattr(self.network, "fixed_hw", None)
        key = (frame.shape[1], frame.shape[0], self.settings.input_size, self.settings.scales)
        if fixed is None and key not in self._fitting_sizes:  # a video's frames share one size: checked once
            # (a fixed-size network's input is its own size, whatever the frame: nothing to check)
            check_frame(frame, color, self.settings)
            self._fitting_sizes = (self._fitting_sizes if len(self._fitting_sizes) < 64 else frozenset()) | {key}
        forward = self.network.forward_fn(frame, self.settings.flip, bgr=color == "bgr", input_hw=fixed)
        maps = compute_maps(forward, letterbox(frame.shape[1], frame.shape[0], fixed), self.settings)
        people = decode(maps, self.settings, self.limits, keep_maps=keep_maps)
        if self.person_filter.active:
            start = time.perf_counter()
            keep = self.person_filter.keep(people.keypoints, people.scores,
                                           self.keypoint_info.sigmas if self.keypoint_info else None)
            people = dataclasses.replace(people, keypoints=people.keypoints[keep], scores=people.scores[keep])
            people.times["grouping"] += time.perf_counter() - start
        if self.person_filter.hide_outside:
            people = dataclasses.replace(people, keypoints=hide_outside_frame(people.keypoints, frame.shape[1],
                                                                              frame.shape[0]))
        return people


def letterbox(width, height, fixed_hw=None):
    """The image size the pipeline sees for a ``width`` x ``height`` frame: the frame itself, or,
    for a fixed-size network of ``fixed_hw = (h, w)``, the smallest canvas of the network's
    aspect ratio holding the frame at its top-left corner. The pipeline's geometry then maps
    that canvas (the frame plus black padding right or below) onto the network input, and
    people back onto it in frame pixels: letterboxing, with nothing to undo afterwards."""
    if fixed_hw is None:
        return width, height
    fixed_h, fixed_w = fixed_hw
    scale = max(width / fixed_w, height / fixed_h)
    return max(width, int(round(fixed_w * scale))), max(height, int(round(fixed_h * scale)))


def check_network_outputs(network, settings, source):
    """``ArgumentError`` unless the network's outputs (``network.output_channels``, where the
    backend knows them) have the channels a LitePose model of ``settings.num_joints`` joints has:
    another model's export, or the right export with the wrong ``dataset``, is one line here
    instead of an IndexError on the first frame."""
    channels = getattr(network, "output_channels", None)
    if channels is None:
        return
    joints = settings.num_joints
    expected = []
    for i, (heat, tags) in enumerate(zip(settings.heatmap_outputs, settings.tag_outputs)):
        need = joints if heat else 0
        if tags:
            need = settings.tag_offsets[i] + (joints if settings.tag_per_joint else 1)
        expected.append(need)
    given = list(channels)
    used = [i for i, need in enumerate(expected) if need]
    if len(given) >= len(expected) and all(given[i] is None or given[i] == expected[i] for i in used):
        return
    name = source if isinstance(source, (str, os.PathLike)) else "the model"
    shown = ", ".join("?" if c is None else str(c) for c in given) or "none"
    raise ArgumentError(f"{name}: its outputs have {shown} channels; a LitePose model of {joints} joints has "
                        f"{', '.join(str(e) for e in expected)}: another model's export, or another dataset= "
                        "(--dataset) / cfg")


def check_frame(frame, color="bgr", settings=None):
    """One clear error unless ``frame`` is an ``[H, W, 3]`` uint8 array and ``color`` bgr or rgb,
    and (given the ``settings``) its resized network input fits ``litepose.utils.limits``: the
    geometry is checked before anything of that size is allocated (a 1 x 20000 frame would ask
    for a 256 x 5120000 input)."""
    if color not in COLORS:
        raise FrameError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 \
            or frame.shape[0] < 1 or frame.shape[1] < 1:
        shape = tuple(frame.shape) if hasattr(frame, "shape") else None
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise FrameError(f"expected a frame as an [H, W, 3] uint8 array ({color.upper()}), got {dtype} {shape}")
    if settings is not None:
        from .inference.transforms import network_input_problem

        problem = network_input_problem((frame.shape[1], frame.shape[0]), settings.input_size, settings.scales)
        if problem:
            raise FrameError(problem)


def _released_config(checkpoint, arch):
    from .released import RELEASED, released_model

    model = released_model(checkpoint)
    if model is None:
        known = ", ".join(m.filename for m in RELEASED.values())
        raise ArgumentError(f"cfg is required: {os.fspath(checkpoint)} is not named as a released model ({known}); "
                            "give cfg= (and arch=) for another checkpoint")
    return model.config_file, arch if arch is not None else model.arch_file


def _as_config(cfg):
    if isinstance(cfg, (str, os.PathLike)):
        from .config import load_config

        return load_config(os.fspath(cfg))
    return cfg
