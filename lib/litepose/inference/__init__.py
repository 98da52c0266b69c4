"""Test-time inference: resize, aggregation of the network's maps (flip, scales, projection),
grouping, people in image pixels. NumPy / OpenCV, free of PyTorch, shared by every path
(``predict``, ``valid.py``, ``litepose.PoseEstimator`` on any backend).

    from litepose.inference import InferenceSettings, predict
    settings = InferenceSettings.from_config(cfg, model)      # input size from the model's arch
    people = predict(model.eval(), rgb_image, settings)      # a PyTorch model
    people.keypoints, people.scores                          # [P, J, 3] image pixels, [P]

Any network: ``maps = compute_maps(forward, (width, height), settings)`` with
``forward(geometry) -> outputs`` (``litepose.runtime``'s networks give one: ``forward_fn``),
then ``people = decode(maps, settings, DecodeLimits(...))``. Grouping alone:
``group_keypoints(heatmaps [J, H, W], tags [J, H, W, D], GroupingParams, DecodeLimits)``.

Types: ``Maps`` (aggregated maps of one image), ``People`` (people of one image).

Importing this package does not import PyTorch: ``predict`` and ``run_model`` (module
``torch_predict``, the one that runs a PyTorch model) load on first use.
"""

from .aggregate import Maps, compute_maps, resize_maps
from .decode import People, decode
from .group import NO_LIMITS, DecodeLimits, GroupingParams, group_keypoints, joint_order
from .settings import InferenceSettings
from .transforms import ResizeGeometry, resize_geometry, warp_image

_TORCH = ("predict", "run_model")


def __getattr__(name):
    if name in _TORCH:
        from . import torch_predict

        return getattr(torch_predict, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DecodeLimits",
    "GroupingParams",
    "InferenceSettings",
    "Maps",
    "NO_LIMITS",
    "People",
    "ResizeGeometry",
    "compute_maps",
    "decode",
    "group_keypoints",
    "joint_order",
    "predict",
    "resize_geometry",
    "resize_maps",
    "run_model",
    "warp_image",
]
