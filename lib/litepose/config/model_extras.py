"""``MODEL.EXTRA`` schema per model, as in HigherHRNet: each model family reads
different keys there, so each declares its own defaults. A key a config file puts
under ``MODEL.EXTRA`` that its model does not declare is an error.
"""

from yacs.config import CfgNode as CN


def _litepose_extra():
    extra = CN()
    extra.FINAL_CONV_KERNEL = 1
    extra.PRETRAINED_LAYERS = ["*"]
    extra.NUM_DECONV_LAYERS = 3
    # For the supernet: the widest deconv widths; a fixed network takes its own from the arch.
    extra.NUM_DECONV_FILTERS = [64, 48, 32]
    extra.NUM_DECONV_KERNELS = [4, 4, 4]
    return extra


def _hrnet_stage(num_modules, num_blocks, num_channels):
    stage = CN()
    stage.NUM_MODULES = num_modules
    stage.NUM_BRANCHES = len(num_blocks)
    stage.BLOCK = "BASIC"
    stage.NUM_BLOCKS = list(num_blocks)
    stage.NUM_CHANNELS = list(num_channels)
    stage.FUSE_METHOD = "SUM"
    return stage


def _higher_hrnet_extra():
    """HigherHRNet's keys; the defaults are its W32 (experiments/*/higher_hrnet/w32_*.yaml)."""
    extra = CN()
    extra.FINAL_CONV_KERNEL = 1
    extra.PRETRAINED_LAYERS = ["*"]
    # Width of the stem's bottleneck blocks (64 in HigherHRNet; the LitePose release made it a key).
    extra.STEM_INPLANES = 64
    extra.STAGE2 = _hrnet_stage(1, [4, 4], [32, 64])
    extra.STAGE3 = _hrnet_stage(4, [4, 4, 4], [32, 64, 128])
    extra.STAGE4 = _hrnet_stage(3, [4, 4, 4, 4], [32, 64, 128, 256])
    extra.DECONV = CN()
    extra.DECONV.NUM_DECONVS = 1
    extra.DECONV.NUM_CHANNELS = [32]
    extra.DECONV.KERNEL_SIZE = [4]
    extra.DECONV.NUM_BASIC_BLOCKS = 4
    extra.DECONV.CAT_OUTPUT = [True]
    return extra


def _efficient_hrnet_extra():
    """EfficientHRNet reads HigherHRNet's keys for its HRNet branches and head (widths are
    then scaled by MODEL.SCALE_FACTOR); STEM_INPLANES is accepted for the release's files
    and unused (the stem is EfficientNet's). Defaults: the release's H-1."""
    extra = _higher_hrnet_extra()
    extra.STAGE2 = _hrnet_stage(1, [2, 2], [32, 64])
    extra.STAGE3 = _hrnet_stage(3, [2, 2, 2], [32, 64, 128])
    extra.STAGE4 = _hrnet_stage(3, [2, 2, 2, 2], [32, 64, 128, 256])
    extra.DECONV.NUM_BASIC_BLOCKS = 2
    return extra


MODEL_EXTRAS = {
    "pose_mobilenet": _litepose_extra(),
    "pose_supermobilenet": _litepose_extra(),
    "pose_higher_hrnet": _higher_hrnet_extra(),
    "pose_efficient_hrnet": _efficient_hrnet_extra(),
}
