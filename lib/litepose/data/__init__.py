"""Datasets, keypoint metadata, augmentation and training targets."""

from .keypoints import DATASET_INFOS, KeypointInfo, get_keypoint_info

__all__ = ["DATASET_INFOS", "KeypointInfo", "get_keypoint_info"]
