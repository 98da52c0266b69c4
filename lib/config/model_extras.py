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


MODEL_EXTRAS = {
    "pose_mobilenet": _litepose_extra(),
    "pose_supermobilenet": _litepose_extra(),
}
