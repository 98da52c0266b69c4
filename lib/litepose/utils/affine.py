"""The one affine transform of the project, shared by augmentation and inference.

A box of ``size = (w, h)`` pixels centred at ``center`` in the source image, rotated
by ``rotation`` degrees (counter-clockwise, about the centre), is mapped onto an output
of ``output_size = (w, h)`` pixels. Scaling is uniform, by ``output_w / w`` (as in
HigherHRNet: the box and the output share their aspect ratio in every caller).
"""

import math

import numpy as np


def get_affine_transform(center, size, rotation, output_size, inverse=False):
    """2x3 float64 matrix mapping source to output (or output to source with ``inverse``)."""
    cx, cy = float(center[0]), float(center[1])
    box_w = float(size[0]) if np.ndim(size) else float(size)
    out_w, out_h = (float(output_size[0]), float(output_size[1])) if np.ndim(output_size) else (
        float(output_size), float(output_size))
    if box_w <= 0 or out_w <= 0 or out_h <= 0:
        raise ValueError(f"affine transform needs positive sizes, got box {size} -> output {output_size}")
    scale = out_w / box_w
    theta = math.radians(rotation)
    # Image y points down: a counter-clockwise rotation on screen is a clockwise one in (x, y).
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    linear = np.array([[cos, sin], [-sin, cos]])
    shift = np.array([out_w / 2.0, out_h / 2.0]) - linear @ np.array([cx, cy])
    matrix = np.hstack([linear, shift[:, None]])
    return invert_affine(matrix) if inverse else matrix


def invert_affine(matrix):
    linear = matrix[:, :2]
    inverse_linear = np.linalg.inv(linear)
    return np.hstack([inverse_linear, (-inverse_linear @ matrix[:, 2])[:, None]])


def transform_points(points, matrix):
    """Apply a 2x3 matrix to ``points[..., :2]``; extra columns (scores, visibility) pass through."""
    points = np.asarray(points, dtype=np.float64)
    out = points.copy()
    out[..., :2] = points[..., :2] @ matrix[:, :2].T + matrix[:, 2]
    return out
