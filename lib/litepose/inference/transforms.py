"""Test-time geometry: the release's resize with the short side to the input size and the long
side aligned up to a multiple of 64 (HigherHRNet's ``get_multi_scale_size`` /
``resize_align_multi_scale``), as one affine transform from ``litepose.utils.affine``."""

from dataclasses import dataclass

import cv2
import numpy as np

from ..utils.affine import get_affine_transform
from ..utils.limits import MAX_NETWORK_INPUT_PIXELS

# The release measures boxes in units of 200 pixels; kept so box sizes round as its do.
_BOX_UNIT = 200.0
ALIGN = 64


@dataclass(frozen=True)
class ResizeGeometry:
    """Where one test scale puts the image: ``matrix`` maps source pixels to the network
    input of ``input_wh = (w, h)`` pixels; ``center`` and ``box`` (source pixels, the box's
    width then height) describe the same mapping for any output size."""
    center: tuple
    box: tuple
    input_wh: tuple
    matrix: np.ndarray

    def to_image_matrix(self, map_wh):
        """2x3 matrix from a map of ``map_wh = (w, h)`` pixels covering this input back to the
        source image."""
        return get_affine_transform(self.center, self.box, 0, map_wh, inverse=True)


def aligned_size(input_size, min_scale=1.0):
    """Short side of the network input at ``min_scale``: ``min_scale * input_size`` up to a
    multiple of 64."""
    return int((min_scale * input_size + ALIGN - 1) // ALIGN * ALIGN)


def resize_geometry(image_wh, input_size, scale=1.0, min_scale=1.0):
    """The release's test-time resize of an image of ``image_wh = (w, h)`` pixels at ``scale``
    (with ``min_scale`` the smallest of the test scales): the short side becomes
    ``aligned_size * scale / min_scale``, the long side keeps the aspect ratio aligned up to a
    multiple of 64 (then scaled the same way), centred on the image."""
    width, height = int(image_wh[0]), int(image_wh[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    center = (int(width / 2.0 + 0.5), int(height / 2.0 + 0.5))
    short = aligned_size(input_size, min_scale)
    if width < height:
        w_resized = int(short * scale / min_scale)
        h_resized = int(int((short / width * height + ALIGN - 1) // ALIGN * ALIGN) * scale / min_scale)
        box_w = width / _BOX_UNIT
        box_h = h_resized / w_resized * width / _BOX_UNIT
    else:
        h_resized = int(short * scale / min_scale)
        w_resized = int(int((short / height * width + ALIGN - 1) // ALIGN * ALIGN) * scale / min_scale)
        box_h = height / _BOX_UNIT
        box_w = w_resized / h_resized * height / _BOX_UNIT
    box = (box_w * _BOX_UNIT, box_h * _BOX_UNIT)
    matrix = get_affine_transform(center, box, 0, (w_resized, h_resized))
    return ResizeGeometry(center, box, (w_resized, h_resized), matrix)


def warp_image(image, geometry):
    """The network input for ``geometry`` (bilinear, black outside the image, as the release)."""
    return cv2.warpAffine(image, geometry.matrix, tuple(int(v) for v in geometry.input_wh), flags=cv2.INTER_LINEAR)


def network_input_problem(image_wh, input_size, scales=(1.0,)):
    """Why an image of ``image_wh = (w, h)`` pixels cannot be run at ``input_size`` and the
    test ``scales`` within ``MAX_NETWORK_INPUT_PIXELS``, or None."""
    scales = sorted(float(s) for s in scales) or [1.0]
    geometry = resize_geometry(image_wh, input_size, scales[-1], scales[0])
    width, height = geometry.input_wh
    if width * height > MAX_NETWORK_INPUT_PIXELS:
        return (f"a {image_wh[0]}x{image_wh[1]} image needs a {width}x{height} network input at input size "
                f"{input_size}, more than {MAX_NETWORK_INPUT_PIXELS} pixels (aspect ratio too extreme)")
    return None
