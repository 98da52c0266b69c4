"""Registry entries for the LitePose family: config in, plain constructor arguments out."""

import os

from ..arch import load_arch, validate_arch
from ..errors import ConfigError
from .space import SearchSpace
from .litepose import LitePose, SuperLitePose
from .registry import register_model


def litepose_head_config(cfg):
    extra = cfg.MODEL.EXTRA
    if extra.NUM_DECONV_LAYERS != 3:
        raise ConfigError(f"MODEL.EXTRA.NUM_DECONV_LAYERS must be 3 for LitePose, got {extra.NUM_DECONV_LAYERS}")
    if cfg.LOSS.NUM_STAGES != 2:
        raise ConfigError(f"LOSS.NUM_STAGES must be 2 for LitePose (outputs at 1/4 and 1/2), got {cfg.LOSS.NUM_STAGES}")
    return dict(
        num_joints=cfg.MODEL.NUM_JOINTS,
        tag_per_joint=cfg.MODEL.TAG_PER_JOINT,
        with_heatmaps=tuple(cfg.LOSS.WITH_HEATMAPS_LOSS),
        with_tags=tuple(cfg.LOSS.WITH_AE_LOSS),
        deconv_kernels=tuple(extra.NUM_DECONV_KERNELS),
    )


def resolve_arch(cfg, arch):
    """``arch`` as a validated dict: given dict, JSON path, ``cfg.MODEL.ARCH`` or ``None``."""
    if arch is None and cfg.MODEL.ARCH:
        arch = cfg.MODEL.ARCH
    if isinstance(arch, (str, os.PathLike)):
        return load_arch(os.fspath(arch))
    if arch is not None:
        return validate_arch(arch)
    return None


@register_model("pose_mobilenet")
def build_litepose(cfg, arch=None):
    arch = resolve_arch(cfg, arch) or SearchSpace.from_config(cfg).widest()
    return LitePose(arch, **litepose_head_config(cfg))


@register_model("pose_supermobilenet")
def build_super_litepose(cfg, arch=None):
    model = SuperLitePose(SearchSpace.from_config(cfg), **litepose_head_config(cfg))
    arch = resolve_arch(cfg, arch)
    if arch is not None:
        model.set_active_arch(arch)
    return model
