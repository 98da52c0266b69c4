"""Test-time inference: resize and flip, aggregation of the network's maps, grouping.

    from litepose.inference import InferenceSettings, predict
    settings = InferenceSettings.from_config(cfg, model)      # input size from the model's arch
    prediction = predict(model.eval(), rgb_image, settings)
    prediction.keypoints, prediction.scores              # [P, J, 3] image pixels, [P]

Grouping alone: ``group_keypoints(heatmaps [J, H, W], tags [J, H, W, D], GroupingParams)``.

Importing this package does not import PyTorch: the names of ``pipeline`` (which does) load on
first use, so the PyTorch-free runtime (``litepose.runtime``) can use ``group``, ``settings``
and ``transforms``.
"""

from .group import GroupingParams, group_keypoints, joint_order
from .settings import InferenceSettings
from .transforms import ResizeGeometry, resize_geometry, warp_image

_PIPELINE = ("Prediction", "InferenceMaps", "compute_maps", "decode", "predict", "run_model")


def __getattr__(name):
    if name in _PIPELINE:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "GroupingParams",
    "Prediction",
    "ResizeGeometry",
    "InferenceMaps",
    "InferenceSettings",
    "compute_maps",
    "decode",
    "group_keypoints",
    "joint_order",
    "predict",
    "run_model",
    "resize_geometry",
    "warp_image",
]
