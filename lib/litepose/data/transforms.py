"""Training augmentation: the release's random affine and horizontal flip (HigherHRNet's).

A sample's augmentation is one ``Placement``: a square box centred near the image centre, of
side ``scale x`` its short (or long) side, rotated by ``rotation`` degrees, and whether it is
mirrored. The box maps onto a square of any resolution ``R`` through the project's one affine
transform (``litepose.utils.affine``); like the release, every resolution gets its own matrix
(the image at the input size, the joints and masks at each output size), so output pixel ``i``
stands for input coordinate ``i * S / R``.

The release's draws, distribution for distribution:

- scale uniform in ``[MIN_SCALE, MAX_SCALE)``, rotation uniform in ``[-MAX_ROTATION, MAX_ROTATION)``;
- translation of the centre by integers in ``[-L, L)`` per axis, ``L = int(MAX_TRANSLATE x box / 200)``
  (its ``np.random.randint`` on float bounds truncates both toward zero);
- a flip with probability ``FLIP``, applied *after* the affine at each resolution: the image
  array is mirrored, and joints move to ``R - 1 - x`` and swap sides by the flip index.
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


@dataclass(frozen=True)
class Placement:
    """Where a training sample's square comes from in its source image."""
    center_x: float
    center_y: float
    box: float          # side of the source square in source pixels
    rotation: float     # degrees
    flip: bool
    aug_scale: float    # box / the image's short (or long) side: the drawn scale

    def as_array(self):
        """``float64 [6]``: how placements travel in a batch (``from_array`` reads them back)."""
        return np.array([self.center_x, self.center_y, self.box, self.rotation, float(self.flip),
                         self.aug_scale], dtype=np.float64)

    @classmethod
    def from_array(cls, values):
        cx, cy, box, rotation, flip, aug_scale = (float(v) for v in values)
        return cls(cx, cy, box, rotation, flip > 0.5, aug_scale)

    def matrix(self, resolution):
        """2x3 matrix from the source image to the unflipped ``resolution`` square."""
        return get_affine_transform((self.center_x, self.center_y), self.box, self.rotation,
                                    (resolution, resolution))


def sample_placement(width, height, augment, rng):
    """The release's random placement of a ``width x height`` image (``rng``: a
    ``numpy.random.Generator``); ``augment=None`` gives the plain centred square of the short
    side (validation)."""
    scale_type = augment.scale_type if augment is not None else "short"
    base = min(width, height) if scale_type == "short" else max(width, height)
    cx, cy = width / 2.0, height / 2.0
    if augment is None:
        return Placement(cx, cy, float(base), 0.0, False, 1.0)
    aug_scale = rng.uniform(augment.min_scale, augment.max_scale)
    scale = base / TRANSLATE_UNIT * aug_scale          # the release's order of operations
    rotation = rng.uniform(-augment.max_rotation, augment.max_rotation)
    limit = int(augment.max_translate * scale)
    if augment.max_translate > 0 and limit > 0:
        dx, dy = rng.integers(-limit, limit, size=2)   # [-L, L), as the release's randint
        cx, cy = cx + float(dx), cy + float(dy)
    flip = bool(rng.random() < augment.flip)
    return Placement(cx, cy, scale * TRANSLATE_UNIT, float(rotation), flip, float(aug_scale))


def warp_image(image, placement, size):
    """The sample's RGB image at ``size`` (outside the source: black, as the release)."""
    warped = cv2.warpAffine(image, placement.matrix(size), (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return np.ascontiguousarray(warped[:, ::-1]) if placement.flip else warped


def warp_loss_mask(valid, placement, resolution, pad_as_background=False):
    """``uint8 [R, R]``: 1 where the loss counts, warped from the source mask ``valid`` straight
    to ``resolution`` as the release does (linear interpolation of 0/255, kept above half).

    Outside the source image the release's mask is 0 (no loss there). ``pad_as_background``
    (``DATASET.PAD_AS_BACKGROUND``) counts that padding as background instead."""
    warped = cv2.warpAffine(valid * 255, placement.matrix(resolution), (resolution, resolution),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=255 if pad_as_background else 0)
    mask = (warped.astype(np.float64) / 255 > 0.5).astype(np.uint8)
    return np.ascontiguousarray(mask[:, ::-1]) if placement.flip else mask


def keypoints_at(keypoints, placement, resolution):
    """Source keypoints ``[..., J, 3+]`` (already in flipped joint order for a flipped sample)
    in the pixels of ``resolution``: the placement's matrix at that resolution, then the
    release's mirror ``x -> R - 1 - x``. float64, extra columns unchanged."""
    moved = transform_points(keypoints, placement.matrix(resolution))
    if placement.flip:
        moved[..., 0] = resolution - moved[..., 0] - 1
    return moved


def flip_joint_order(keypoints, flip_index):
    """``[N, J, C]`` with joints reordered as a horizontal flip relabels them."""
    return keypoints[:, list(flip_index)] if len(keypoints) else keypoints
