"""Training augmentation: HigherHRNet's random affine and horizontal flip.

Every geometric step is one 2x3 matrix from ``litepose.utils.affine`` (the module inference uses), so
the image, the ignore mask and the joints move together exactly:

- a square crop box centred on the image, of side ``scale x`` its short (or long) side, with
  ``scale`` in ``[MIN_SCALE, MAX_SCALE]``, rotated by up to ``+-MAX_ROTATION`` degrees and moved by
  up to ``+-MAX_TRANSLATE`` pixels per 200 pixels of box (HigherHRNet's unit), is mapped onto the
  ``input_size`` square;
- with probability ``FLIP`` the result is mirrored (``x -> input_size - 1 - x``) and left and right
  joints swap through the dataset's flip index (``litepose.data.keypoints``).

Coordinates of outputs at a resolution ``R`` for an input of size ``S`` are ``x * R / S`` (the
HigherHRNet convention: heatmap pixel ``i`` stands for input coordinate ``i * S / R``).
"""

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError
from ..utils.affine import get_affine_transform, transform_points

# The release's translation unit: HigherHRNet measures scale in boxes of 200 pixels.
TRANSLATE_UNIT = 200.0


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    scale_type: str = "short"
    max_translate: float = 40.0
    flip: float = 0.5

    def __post_init__(self):
        if self.scale_type not in ("short", "long"):
            raise ConfigError(f"DATASET.SCALE_TYPE must be 'short' or 'long', got {self.scale_type!r}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ConfigError(f"DATASET.MIN_SCALE ({self.min_scale}) and MAX_SCALE ({self.max_scale}) "
                              "must satisfy 0 < MIN_SCALE <= MAX_SCALE")
        if self.max_rotation < 0 or self.max_translate < 0:
            raise ConfigError("DATASET.MAX_ROTATION and DATASET.MAX_TRANSLATE must not be negative")
        if not 0 <= self.flip <= 1:
            raise ConfigError(f"DATASET.FLIP is a probability, got {self.flip}")

    @classmethod
    def from_config(cls, cfg):
        d = cfg.DATASET
        return cls(float(d.MAX_ROTATION), float(d.MIN_SCALE), float(d.MAX_SCALE), d.SCALE_TYPE,
                   float(d.MAX_TRANSLATE), float(d.FLIP))


def sample_transform(width, height, input_size, augment, rng):
    """The 2x3 matrix from the source image to the ``input_size`` square, and whether it flips.

    ``augment=None`` gives the plain transform: the centred square of the short (or long) side,
    no rotation, no flip (what validation uses). ``rng`` is a ``numpy.random.Generator``.
    """
    scale_type = augment.scale_type if augment is not None else "short"
    base = min(width, height) if scale_type == "short" else max(width, height)
    center = np.array([width / 2.0, height / 2.0])
    rotation, flip, box = 0.0, False, float(base)
    if augment is not None:
        box = base * rng.uniform(augment.min_scale, augment.max_scale)
        rotation = rng.uniform(-augment.max_rotation, augment.max_rotation)
        limit = int(augment.max_translate * box / TRANSLATE_UNIT)
        if limit > 0:
            center += rng.integers(-limit, limit, size=2, endpoint=True)
        flip = bool(rng.random() < augment.flip)
    matrix = get_affine_transform(center, box, rotation, (input_size, input_size))
    if flip:
        mirror = np.array([[-1.0, 0.0, input_size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        matrix = (mirror @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    return matrix, flip


def warp_image(image, matrix, input_size):
    """Warp an RGB image (outside the source: black, as HigherHRNet)."""
    return cv2.warpAffine(image, matrix, (input_size, input_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def warp_valid_mask(valid, matrix, input_size):
    """Warp the ``uint8`` mask of pixels whose loss counts (1).

    Unlike HigherHRNet, the black padding outside the source image counts, as background: test
    inputs are padded too (sides aligned to multiples of 64), and a network never told that
    padding holds no one fired there and filled its predictions with false detections."""
    warped = cv2.warpAffine(valid * 255, matrix, (input_size, input_size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return (warped > 127).astype(np.uint8)


def transform_keypoints(keypoints, matrix, flip, flip_index):
    """``[N, J, 3+]`` keypoints moved by ``matrix``; with ``flip``, joints swap by ``flip_index``.
    Visibility (and any further columns) travel with their joint."""
    moved = transform_points(keypoints, matrix).astype(np.float32)
    if flip and len(moved):
        moved = moved[:, list(flip_index)]
    return moved
