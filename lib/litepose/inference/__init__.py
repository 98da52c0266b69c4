"""Test-time inference: resize and flip, aggregation of the network's maps, grouping.

    from litepose.inference import InferenceSettings, predict
    settings = InferenceSettings.from_config(cfg, model)      # input size from the model's arch
    prediction = predict(model.eval(), rgb_image, settings)
    prediction.keypoints, prediction.scores              # [P, J, 3] image pixels, [P]

Grouping alone: ``group_keypoints(heatmaps [J, H, W], tags [J, H, W, D], GroupingParams)``.
"""

from .group import GroupingParams, group_keypoints, joint_order
from .pipeline import Prediction, InferenceMaps, InferenceSettings, compute_maps, decode, model_input_size, predict, run_model
from .transforms import ResizeGeometry, resize_geometry, warp_image

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
    "model_input_size",
    "predict",
    "run_model",
    "resize_geometry",
    "warp_image",
]
