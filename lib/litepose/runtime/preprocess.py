"""Pre-processing without PyTorch: the network input of an RGB uint8 image.

The geometry is ``litepose.inference.transforms`` (the release's resize with the short side to
the input size and the long side aligned up to 64, one ``cv2.warpAffine``); the normalisation is
RGB scaled to [0, 1], then ImageNet mean and standard deviation, in float32 exactly as
``litepose.data.normalize.image_to_tensor`` computes it (bit for bit: a per-channel lookup table
of the same float32 arithmetic).

``IMAGENET_MEAN`` / ``IMAGENET_STD`` are ``litepose.data.normalize``'s (which imports PyTorch
only inside its tensor functions).
"""

import numpy as np

from ..data.normalize import IMAGENET_MEAN, IMAGENET_STD
from ..inference.transforms import warp_image


def _lookup_tables():
    values = np.arange(256, dtype=np.float32) / np.float32(255.0)
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    return [((values - mean[c]) / std[c]).astype(np.float32) for c in range(3)]


_TABLES = _lookup_tables()


def normalize_image(image, bgr=False):
    """``[H, W, 3]`` uint8 (RGB, or BGR with ``bgr``) -> normalised RGB ``[3, H, W]`` float32
    (the network's input)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an [H, W, 3] uint8 image, got {image.dtype} {tuple(image.shape)}")
    out = np.empty((3,) + image.shape[:2], np.float32)
    for c in range(3):
        np.take(_TABLES[c], image[:, :, 2 - c if bgr else c], out=out[c])
    return out


def network_input(image, geometry, flip=False, bgr=False):
    """The ``[B, 3, h, w]`` float32 batch for ``image`` (RGB uint8, or BGR with ``bgr``: the
    channels are swapped after resizing, which gives the same values) resized by ``geometry``;
    with ``flip`` the mirrored input is second (B = 2), as ``inference.run_model``."""
    single = normalize_image(warp_image(np.ascontiguousarray(image), geometry), bgr)
    if not flip:
        return single[None]
    return np.stack([single, single[:, :, ::-1]])
