"""Test-time settings, resolved from a config once (free of PyTorch, as the whole decoder)."""

from dataclasses import dataclass

from ..arch import default_input_size
from ..data.coco_format import keypoint_info_from_config
from ..errors import ConfigError
from .group import GroupingParams


@dataclass(frozen=True)
class InferenceSettings:
    """Everything the test-time pipeline needs, resolved from a config once."""
    input_size: int
    scales: tuple
    flip: bool
    flip_index: tuple
    num_joints: int
    heatmap_outputs: tuple    # per network output: its heatmaps are averaged
    tag_outputs: tuple        # per network output: its tags are used
    tag_offsets: tuple        # per network output: channel where its tags start
    tag_per_joint: bool
    project_to_image: bool
    grouping: GroupingParams

    @classmethod
    def from_config(cls, cfg, model=None, input_size=None):
        """``input_size``: ``litepose.arch.default_input_size`` (explicit > the LitePose
        model's architecture > ``DATASET.INPUT_SIZE``)."""
        size = default_input_size(cfg, model, input_size)
        if size <= 0:
            raise ConfigError(f"test input size must be positive, got {size}")
        scales = tuple(float(s) for s in cfg.TEST.SCALE_FACTOR)
        if not scales or min(scales) <= 0:
            raise ConfigError(f"TEST.SCALE_FACTOR must list positive scales, got {list(cfg.TEST.SCALE_FACTOR)}")
        if len(scales) > 1 and 1.0 not in scales:
            raise ConfigError("TEST.SCALE_FACTOR must include 1 when it lists several scales (tags come from scale 1)")
        joints = cfg.DATASET.NUM_JOINTS
        with_heat_loss, with_ae_loss = cfg.LOSS.WITH_HEATMAPS_LOSS, cfg.LOSS.WITH_AE_LOSS
        heat = tuple(bool(a and b) for a, b in zip(with_heat_loss, cfg.TEST.WITH_HEATMAPS))
        tags = tuple(bool(a and b) for a, b in zip(with_ae_loss, cfg.TEST.WITH_AE))
        if not any(heat):
            raise ConfigError("TEST.WITH_HEATMAPS selects no output that carries heatmaps (LOSS.WITH_HEATMAPS_LOSS)")
        if not any(tags):
            raise ConfigError("TEST.WITH_AE selects no output that carries tags (LOSS.WITH_AE_LOSS)")
        return cls(input_size=size, scales=scales, flip=bool(cfg.TEST.FLIP_TEST),
                   flip_index=tuple(keypoint_info_from_config(cfg, for_test=True).flip_index),
                   num_joints=joints, heatmap_outputs=heat, tag_outputs=tags,
                   tag_offsets=tuple(joints if h else 0 for h in with_heat_loss),
                   tag_per_joint=bool(cfg.MODEL.TAG_PER_JOINT), project_to_image=bool(cfg.TEST.PROJECT2IMAGE),
                   grouping=GroupingParams.from_config(cfg))

