"""What an export knows about itself: one schema, written by ``litepose export`` into every
export (and by ``litepose quantize`` into its INT8 and float16 models) and read back by the
runtime without PyTorch.

Where it lives, per format (``read_metadata`` / ``litepose.deploy.formats`` write it):

============ ==========================================================================
onnx         ``metadata_props`` key ``litepose`` (a JSON string)
openvino     ``rt_info`` key ``litepose`` (a JSON string) in the ``.xml``
torchscript  ``_extra_files`` entry ``litepose.json`` in the ``.pt`` archive
ncnn, tflite a sidecar ``<stem>.litepose.json`` beside the model (``sidecar_path``)
============ ==========================================================================

The JSON (``litepose_metadata_version`` 1)::

    {"litepose_metadata_version": 1,
     "format": "onnx", "half": false,
     "dataset": {"name": "coco", "train_name": "coco_kpt", "num_joints": 17,
                 "joint_names": [...], "flip_pairs": [[1, 2], ...], "flip_index": [0, 2, 1, ...],
                 "skeleton": [[15, 13], ...], "oks_sigmas": [...]},
     "input": {"size": 256, "dynamic": true, "shape": [null, 3, null, null], "layout": "NCHW",
               "color": "RGB", "scale": 0.00392156862745098,   # pixel / 255 first
               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
     "outputs": [{"name": "output0", "heatmaps": true, "tags": true},
                 {"name": "output1", "heatmaps": true, "tags": false}],
     "test": {"TEST.FLIP_TEST": true, "TEST.SCALE_FACTOR": [1], ..., "DATASET.MAX_NUM_PEOPLE": 30,
              "MODEL.TAG_PER_JOINT": true, "LOSS.WITH_AE_LOSS": [true, false], ...},
     "architecture": {...the architecture JSON...} or null,
     "checkpoint": {"path": "/abs/path/model.pth", "sha256": "..."},
     "producer": {"litepose": "0.1.0", "torch": "2.14.1"},
     "quantization": null}

``quantization`` is null for a float export (``half`` says float16) and, for the INT8 models of
``litepose quantize``, what made them: ``{"precision": "int8", "tool": "onnxruntime" or "nncf",
"settings": {...the quantiser's arguments...}, "kept_float": [...op types, names, patterns...],
"calibration": {"images": 300, "input_size": 256, "split": "train2017", "augment": true,
"seed": 0}}``. It is optional: version 1 stays, a reader that predates it ignores it (and
runs the model as the float export it otherwise is), and metadata without it reads as float.
``precision`` (float32, float16, int8) is what the two say together.

``input.size`` is the short side the export was made and checked at; a fixed-size export
(``dynamic`` false) takes exactly ``shape[2] x shape[3]`` and the estimator letterboxes frames
to it. ``test`` holds the config keys the test-time pipeline reads (``TEST_KEYS``), so
``to_config()`` rebuilds the config ``InferenceSettings.from_config`` needs.
"""

import dataclasses
import json
import os

from ..errors import ModelFileError

VERSION = 1
KEY = "litepose"                 # ONNX metadata_props / OpenVINO rt_info key
EXTRA_FILE = "litepose.json"     # TorchScript _extra_files entry
SIDECAR_SUFFIX = ".litepose.json"
# The config keys the test-time pipeline reads (InferenceSettings, GroupingParams, the keypoint
# metadata of a dataset that is not built in).
TEST_KEYS = ("DATASET.DATASET", "DATASET.DATASET_TEST", "DATASET.NUM_JOINTS", "DATASET.MAX_NUM_PEOPLE",
             "DATASET.FLIP_PAIRS", "DATASET.SIGMAS", "DATASET.SKELETON", "MODEL.NAME", "MODEL.NUM_JOINTS",
             "MODEL.TAG_PER_JOINT", "LOSS.WITH_HEATMAPS_LOSS", "LOSS.WITH_AE_LOSS", "TEST.FLIP_TEST",
             "TEST.SCALE_FACTOR", "TEST.DETECTION_THRESHOLD", "TEST.TAG_THRESHOLD", "TEST.USE_DETECTION_VAL",
             "TEST.IGNORE_TOO_MUCH", "TEST.NMS_KERNEL", "TEST.NMS_PADDING", "TEST.PROJECT2IMAGE", "TEST.ADJUST",
             "TEST.REFINE", "TEST.WITH_HEATMAPS", "TEST.WITH_AE")
_SECTIONS = ("dataset", "input", "outputs", "test")


@dataclasses.dataclass(frozen=True)
class ExportMetadata:
    """The parsed metadata of an export (module doc); ``raw`` is the whole JSON object."""
    format: str
    half: bool
    dataset: dict
    input: dict
    outputs: list
    test: dict
    architecture: dict = None
    checkpoint: dict = None
    producer: dict = None
    quantization: dict = None

    # -- what the runtime asks ------------------------------------------------------------------
    @property
    def input_size(self):
        return int(self.input["size"])

    @property
    def dynamic(self):
        return bool(self.input["dynamic"])

    @property
    def fixed_hw(self):
        """``(height, width)`` of a fixed-size export, None for a dynamic one."""
        shape = self.input.get("shape")
        if self.dynamic or not shape:
            return None
        return int(shape[2]), int(shape[3])

    @property
    def precision(self):
        """float32, float16 or the quantised precision (int8)."""
        if self.quantization is not None:
            return str(self.quantization["precision"])
        return "float16" if self.half else "float32"

    def to_config(self):
        """A config holding the export's test-time settings and dataset (no paths)."""
        from ..config import load_config

        opts = []
        for key, value in self.test.items():
            opts += [key, tuple(value) if isinstance(value, list) and key.startswith(("LOSS.", "TEST.WITH")) else value]
        return load_config(None, opts)

    def keypoint_info(self):
        """The export's joints as a ``KeypointInfo`` (names, flip pairs, OKS sigmas, skeleton)."""
        from ..data.keypoints import KeypointInfo

        d = self.dataset
        return KeypointInfo(name=str(d["name"]), joints=tuple(d["joint_names"]),
                            flip_pairs=tuple(tuple(p) for p in d["flip_pairs"]), sigmas=tuple(d["oks_sigmas"]),
                            skeleton=tuple(tuple(p) for p in d["skeleton"]))

    # -- serialisation ----------------------------------------------------------------------------
    def to_dict(self):
        data = {"litepose_metadata_version": VERSION}
        data.update(dataclasses.asdict(self))
        return data

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text, source="export"):
        """Parse ``text``; one ``ModelFileError`` line for anything that is not this schema."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            raise ModelFileError(f"{source}: its LitePose metadata is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ModelFileError(f"{source}: its LitePose metadata is not a JSON object")
        version = data.get("litepose_metadata_version")
        if version != VERSION:
            raise ModelFileError(f"{source}: LitePose metadata version {version!r} is not supported "
                                 f"(this LitePose reads version {VERSION}): re-export it with tools/export.py")
        missing = [k for k in ("format",) + _SECTIONS if k not in data]
        if missing:
            raise ModelFileError(f"{source}: LitePose metadata lacks {', '.join(missing)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        try:
            meta = cls(**{k: v for k, v in data.items() if k in fields})
            meta.input_size, meta.dynamic, meta.fixed_hw  # noqa: B018 - validates the input section
            meta.keypoint_info()
            if meta.quantization is not None and not isinstance(meta.quantization.get("precision"), str):
                raise ValueError("quantization without a precision")
            unknown = [k for k in meta.test if k not in TEST_KEYS]
            if unknown:
                raise ValueError(f"unknown test key {unknown[0]}")
        except ModelFileError:
            raise
        except Exception as exc:  # a field of the wrong type or shape
            raise ModelFileError(f"{source}: LitePose metadata is malformed ({type(exc).__name__}: {exc})") from None
        return meta


def build_metadata(cfg, fmt, input_hw, dynamic, half=False, output_names=(), architecture=None, checkpoint=None,
                   producer=None, quantization=None):
    """The ``ExportMetadata`` of a model of ``cfg`` exported to ``fmt`` at ``input_hw``
    ((height, width)); ``checkpoint``: ``{"path", "sha256"}``; ``quantization``: how an INT8
    model was made (module doc)."""
    from ..data.coco_format import keypoint_info_from_config
    from .preprocess import IMAGENET_MEAN, IMAGENET_STD

    info = keypoint_info_from_config(cfg, for_test=True)
    test = {}
    for key in TEST_KEYS:
        section, name = key.split(".")
        value = cfg[section][name]
        test[key] = list(value) if isinstance(value, (list, tuple)) else value
    test["DATASET.FLIP_PAIRS"] = [list(p) for p in cfg.DATASET.FLIP_PAIRS]
    test["DATASET.SKELETON"] = [list(p) for p in cfg.DATASET.SKELETON]
    heat = [bool(a and b) for a, b in zip(cfg.LOSS.WITH_HEATMAPS_LOSS, cfg.TEST.WITH_HEATMAPS)]
    tags = [bool(a and b) for a, b in zip(cfg.LOSS.WITH_AE_LOSS, cfg.TEST.WITH_AE)]
    height, width = input_hw
    outputs = [{"name": str(name), "heatmaps": heat[i] if i < len(heat) else False,
                "tags": tags[i] if i < len(tags) else False} for i, name in enumerate(output_names)]
    meta = ExportMetadata(
        format=fmt, half=bool(half),
        dataset={"name": info.name, "train_name": cfg.DATASET.DATASET, "num_joints": info.num_joints,
                 "joint_names": list(info.joints), "flip_pairs": [list(p) for p in info.flip_pairs],
                 "flip_index": list(info.flip_index), "skeleton": [list(p) for p in info.skeleton],
                 "oks_sigmas": [float(s) for s in info.sigmas]},
        input={"size": int(min(height, width)), "dynamic": bool(dynamic),
               "shape": [None, 3, None, None] if dynamic else [1, 3, int(height), int(width)], "layout": "NCHW",
               "color": "RGB", "scale": 1.0 / 255.0, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        outputs=outputs, test=test, architecture=architecture, checkpoint=checkpoint, producer=producer,
        quantization=quantization)
    return ExportMetadata.from_json(meta.to_json(), "the metadata built")  # JSON types: what readers get back


def sidecar_path(path):
    """The sidecar JSON of a model file: ``m.ncnn.param`` -> ``m.ncnn.litepose.json``."""
    return os.path.splitext(os.fspath(path))[0] + SIDECAR_SUFFIX


def read_sidecar(path):
    """The metadata in ``path``'s sidecar, or None when there is none."""
    side = sidecar_path(path)
    if not os.path.isfile(side):
        return None
    try:
        with open(side, encoding="utf-8") as handle:
            text = handle.read(1 << 22)
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read {side}: {exc}") from None
    return ExportMetadata.from_json(text, side)
