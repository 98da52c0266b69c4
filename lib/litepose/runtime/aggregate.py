"""Aggregation without PyTorch: network outputs -> heatmaps and tags ready for grouping.

The same steps, in the same order and float32 arithmetic, as ``litepose.inference.pipeline``
(``_combine_outputs`` / ``compute_maps``): every output resized to the finest output, heatmaps
of the selected outputs averaged, the flipped pass mirrored back with its joints swapped and
averaged in, tags of the selected outputs kept (one dimension per pass), optional projection
to the input size, several scales averaged.

Resizing is OpenCV's bilinear ``cv2.resize(INTER_LINEAR)``, which samples at pixel centres as
PyTorch's ``interpolate(mode="bilinear", align_corners=False)`` does: at the pipeline's factor
2 the two agree to a float32 rounding (under 1e-6 on maps of unit scale; a test checks it).
"""

import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..inference.transforms import resize_geometry
from ..utils.affine import transform_points

@dataclass
class Maps:
    """Aggregated maps of one image: ``heatmaps [J, H, W]`` float32, ``tags [Jt, H, W, D]``
    (a view of ``[D, Jt, H, W]`` storage), ``geometry`` (back to the image), stage times."""
    heatmaps: np.ndarray
    tags: np.ndarray
    geometry: object
    forward_s: float = 0.0
    aggregate_s: float = 0.0
    preprocess_s: float = 0.0

    @property
    def map_wh(self):
        return int(self.heatmaps.shape[2]), int(self.heatmaps.shape[1])

    def map_to_image(self, points):
        """``points[..., :2]`` from map pixels to image pixels (other columns unchanged)."""
        return transform_points(points, self.geometry.to_image_matrix(self.map_wh))


def resize_maps(maps, size):
    """``[C, h, w]`` float32 -> ``[C, H, W]`` for ``size = (H, W)``, bilinear at pixel centres
    (``align_corners=False``); unchanged when the size already fits. One ``cv2.resize`` per
    channel into the output (OpenCV's many-channel path is some 25 times slower)."""
    height, width = int(size[0]), int(size[1])
    if maps.shape[-2:] == (height, width):
        return maps
    maps = np.asarray(maps, np.float32)  # float32 in: OpenCV then writes into ``out`` itself
    out = np.empty((maps.shape[0], height, width), np.float32)
    for channel, plane in enumerate(maps):
        cv2.resize(np.ascontiguousarray(plane), (width, height), dst=out[channel], interpolation=cv2.INTER_LINEAR)
    return out


def combine_outputs(outputs, settings):
    """One scale's outputs (``[B, C, h, w]`` arrays, B = 2 with flip) -> flip-averaged heatmaps
    ``[J, h, w]`` and a list of tag maps ``[Jt, h, w]`` (non-flipped first), at the finest
    output's resolution."""
    joints = settings.num_joints
    finest = outputs[-1].shape[-2:]
    batch = 2 if settings.flip else 1
    heat, count, tags = None, 0, []
    for i, output in enumerate(outputs):
        if not (settings.heatmap_outputs[i] or settings.tag_outputs[i]):
            continue
        output = np.asarray(output, np.float32)
        if settings.tag_outputs[i]:
            wanted = output[:batch]
        else:
            wanted = output[:batch, :joints]
        resized = [resize_maps(wanted[b], finest) for b in range(batch)]
        if settings.heatmap_outputs[i]:
            part = [r[:joints] for r in resized]
            heat = [p.copy() for p in part] if heat is None else [h + p for h, p in zip(heat, part)]
            count += 1
        if settings.tag_outputs[i]:
            tags.append([r[settings.tag_offsets[i]:] for r in resized])
    if not settings.flip:
        return heat[0] * np.float32(1.0 / count), [t[0] for t in tags]
    index = np.asarray(settings.flip_index)
    averaged = (heat[0] + heat[1][:, :, ::-1][index]) * np.float32(0.5 / count)
    flipped = [t[1][:, :, ::-1][index] if settings.tag_per_joint else t[1][:, :, ::-1] for t in tags]
    return averaged, [t[0] for t in tags] + flipped


def compute_maps(forward, image_wh, settings):
    """Run ``forward(geometry) -> outputs`` (a list of ``[B, C, h, w]`` arrays) at every test
    scale and aggregate: a ``Maps``. ``forward`` may return ``(outputs, preprocess_s)`` to
    report its pre-processing time apart from the network's."""
    scales = sorted(settings.scales, reverse=True)
    min_scale = min(scales)
    base = resize_geometry(image_wh, settings.input_size, 1.0, min_scale)
    base_hw = (base.input_wh[1], base.input_wh[0])
    final, tag_maps, geometry = None, [], None
    forward_s = aggregate_s = preprocess_s = 0.0
    for scale in scales:
        geometry = resize_geometry(image_wh, settings.input_size, scale, min_scale)
        start = time.perf_counter()
        outputs = forward(geometry)
        middle = time.perf_counter()
        if isinstance(outputs, tuple) and len(outputs) == 2 and isinstance(outputs[1], float):
            outputs, pre = outputs
            preprocess_s += pre
            forward_s -= pre
        heatmaps, tags = combine_outputs(outputs, settings)
        if settings.project_to_image:
            heatmaps = resize_maps(heatmaps, base_hw)
        if scale == 1.0 or len(scales) == 1:
            stacked = np.stack(tags)  # [D, Jt, h, w]
            size = base_hw if settings.project_to_image else (final.shape[-2:] if final is not None else None)
            if size is not None and stacked.shape[-2:] != tuple(size):
                depth, channels = stacked.shape[:2]
                stacked = resize_maps(stacked.reshape(depth * channels, *stacked.shape[-2:]), size).reshape(
                    depth, channels, *size)
            tag_maps.append(stacked)
        if final is None:
            final = heatmaps
        else:
            final = final + resize_maps(heatmaps, final.shape[-2:])
        forward_s += middle - start
        aggregate_s += time.perf_counter() - middle
    start = time.perf_counter()
    if len(scales) > 1:
        final = final / np.float32(len(scales))
    tags = np.concatenate(tag_maps, axis=0) if len(tag_maps) > 1 else tag_maps[0]
    maps = Maps(np.ascontiguousarray(final, np.float32), np.ascontiguousarray(tags, np.float32).transpose(1, 2, 3, 0),
                geometry, forward_s, aggregate_s + time.perf_counter() - start, preprocess_s)
    return maps
