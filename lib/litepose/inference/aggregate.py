"""Aggregation: network outputs -> heatmaps and tags ready for grouping, in NumPy / OpenCV.

Follows the release (HigherHRNet's ``get_multi_stage_outputs`` / ``aggregate_results``; a test
compares the maps with a restatement of them in PyTorch, ``tests/reference_aggregation.py``):

- each scale of ``TEST.SCALE_FACTOR`` (largest first) runs the network on the image resized
  with the short side to the input size aligned up to 64 (``transforms.resize_geometry``);
- every network output is brought to the last (finest) output's resolution; heatmaps of the
  outputs selected by ``TEST.WITH_HEATMAPS`` are averaged, tags are taken from the outputs in
  ``TEST.WITH_AE``;
- with ``TEST.FLIP_TEST`` the mirrored image runs in the same batch; its outputs are mirrored
  back and their joints swapped through the dataset's flip index (heatmaps, and tags when there
  is one tag map per joint); heatmaps average the two, tags keep both as a 2-vector;
- with ``TEST.PROJECT2IMAGE`` maps are upsampled to the input size of scale 1 before grouping;
  heatmaps average over scales, tags come from scale 1.

Heatmaps are averaged before upsampling rather than after (the same up to float rounding,
half the interpolation work). Resizing is OpenCV's bilinear ``cv2.resize(INTER_LINEAR)``,
which samples at pixel centres as PyTorch's ``interpolate(mode="bilinear",
align_corners=False)`` does: at the pipeline's factor 2 the two agree to a float32 rounding
(under 1e-6 on maps of unit scale; a test checks it).
"""

import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..utils.affine import transform_points
from .transforms import resize_geometry


@dataclass
class Maps:
    """Aggregated maps of one image, ready for grouping: ``heatmaps [J, H, W]`` float32,
    ``tags [Jt, H, W, D]`` float32 (a view of ``[D, Jt, H, W]`` storage), ``geometry`` (the
    resize of the last scale: back to the image through ``map_to_image``), and stage times in
    seconds: ``forward_s`` (the network, with pre-processing unless ``preprocess_s`` counts it
    apart), ``aggregate_s``, ``preprocess_s`` (None when the forward did not time it)."""
    heatmaps: np.ndarray
    tags: np.ndarray
    geometry: object
    forward_s: float = 0.0
    aggregate_s: float = 0.0
    preprocess_s: float = None

    @property
    def map_wh(self):
        return int(self.heatmaps.shape[2]), int(self.heatmaps.shape[1])

    def map_to_image(self, points):
        """``points[..., :2]`` from map pixels to image pixels (other columns unchanged)."""
        return transform_points(points, self.geometry.to_image_matrix(self.map_wh))


def resize_maps(maps, size, out=None):
    """``[C, h, w]`` float32 -> ``[C, H, W]`` for ``size = (H, W)``, bilinear at pixel centres
    (``align_corners=False``); unchanged when the size already fits (copied into ``out`` when
    given). One ``cv2.resize`` per channel into the output (OpenCV's many-channel path is some
    25 times slower)."""
    height, width = int(size[0]), int(size[1])
    if maps.shape[-2:] == (height, width):
        if out is None:
            return maps
        out[...] = maps
        return out
    maps = np.asarray(maps, np.float32)  # float32 in: OpenCV then writes into ``out`` itself
    if out is None:
        out = np.empty((maps.shape[0], height, width), np.float32)
    for channel, plane in enumerate(maps):
        cv2.resize(np.ascontiguousarray(plane), (width, height), dst=out[channel], interpolation=cv2.INTER_LINEAR)
    return out


def combine_outputs(outputs, settings):
    """One scale's outputs (``[B, C, h, w]`` arrays, B = 2 with flip) -> flip-averaged heatmaps
    ``[J, h, w]`` and a list of tag maps ``[Jt, h, w]`` (non-flipped first), at the finest
    output's resolution. Sums and scalings run in place on arrays of its own (fewer large
    temporaries: each costs page faults when the allocator hands back memory between images)."""
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
            if heat is None:  # a copy unless resizing made one (the network's outputs stay as they are)
                heat = [r[:joints].copy() if np.shares_memory(r, output) else r[:joints] for r in resized]
            else:
                for h, r in zip(heat, resized):
                    h += r[:joints]
            count += 1
        if settings.tag_outputs[i]:
            tags.append([r[settings.tag_offsets[i]:] for r in resized])
    if not settings.flip:
        heat[0] *= np.float32(1.0 / count)
        return heat[0], [t[0] for t in tags]
    index = np.asarray(settings.flip_index)
    averaged = heat[0]
    averaged += heat[1][:, :, ::-1][index]
    averaged *= np.float32(0.5 / count)
    flipped = [t[1][:, :, ::-1][index] if settings.tag_per_joint else t[1][:, :, ::-1] for t in tags]
    return averaged, [t[0] for t in tags] + flipped


def compute_maps(forward, image_wh, settings):
    """Run ``forward(geometry) -> outputs`` at every test scale and aggregate: a ``Maps``.

    ``outputs`` are the network's, in order: ``[B, C, h, w]`` float arrays (or anything
    ``np.asarray`` takes, CPU tensors included), B = 2 with the flip test (the mirrored input
    second). ``forward`` is a runtime network's ``forward_fn`` (``litepose.runtime``),
    ``torch_predict.run_model``, or anything producing outputs of that layout (the
    decoding-ceiling tool renders ground truth); it may return ``(outputs, preprocess_s)`` to
    report its pre-processing time apart from the network's."""
    scales = sorted(settings.scales, reverse=True)
    min_scale = min(scales)
    base = resize_geometry(image_wh, settings.input_size, 1.0, min_scale)
    base_hw = (base.input_wh[1], base.input_wh[0])
    final, tag_maps, geometry = None, [], None
    forward_s = aggregate_s = 0.0
    preprocess_s = None
    for scale in scales:
        geometry = resize_geometry(image_wh, settings.input_size, scale, min_scale)
        start = time.perf_counter()
        outputs = forward(geometry)
        middle = time.perf_counter()
        if isinstance(outputs, tuple) and len(outputs) == 2 and isinstance(outputs[1], float):
            outputs, pre = outputs
            preprocess_s = (preprocess_s or 0.0) + pre
            forward_s -= pre
        heatmaps, tags = combine_outputs(outputs, settings)
        if settings.project_to_image:
            heatmaps = resize_maps(heatmaps, base_hw)
        if scale == 1.0 or len(scales) == 1:
            size = base_hw if settings.project_to_image else (
                final.shape[-2:] if final is not None else tags[0].shape[-2:])
            stacked = np.empty((len(tags), tags[0].shape[0], *size), np.float32)  # [D, Jt, h, w]
            for depth, tag in enumerate(tags):
                resize_maps(tag, size, out=stacked[depth])
            tag_maps.append(stacked)
        if final is None:
            final = heatmaps
        else:
            final += resize_maps(heatmaps, final.shape[-2:])
        forward_s += middle - start
        aggregate_s += time.perf_counter() - middle
    start = time.perf_counter()
    if len(scales) > 1:
        np.divide(final, np.float32(len(scales)), out=final)
    tags = np.concatenate(tag_maps, axis=0) if len(tag_maps) > 1 else tag_maps[0]
    maps = Maps(np.ascontiguousarray(final, np.float32), np.ascontiguousarray(tags, np.float32).transpose(1, 2, 3, 0),
                geometry, forward_s, aggregate_s + time.perf_counter() - start, preprocess_s)
    return maps
