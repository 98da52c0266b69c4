"""The test-time pipeline: image -> network (multi-scale, flip) -> heatmaps and tags -> people.

Follows the release (HigherHRNet's ``get_multi_stage_outputs`` / ``aggregate_results``):

- each scale of ``TEST.SCALE_FACTOR`` (largest first) resizes the image with the short side to
  the input size aligned up to 64 (``transforms.resize_geometry``), normalised as in training;
- every network output is brought to the last (finest) output's resolution; heatmaps of the
  outputs selected by ``TEST.WITH_HEATMAPS`` are averaged, tags are taken from the outputs in
  ``TEST.WITH_AE``;
- with ``TEST.FLIP_TEST`` the mirrored image runs in the same batch; its outputs are mirrored
  back and their joints swapped through the dataset's flip index (heatmaps, and tags when there
  is one tag map per joint); heatmaps average the two, tags keep both as a 2-vector;
- with ``TEST.PROJECT2IMAGE`` maps are upsampled to the input size of scale 1 before grouping;
  heatmaps average over scales, tags come from scale 1;
- ``group.group_keypoints`` groups, and predictions go back to image pixels through the
  inverse of the resize.

Heatmaps are averaged before upsampling rather than after (the same up to float rounding,
half the interpolation work).
"""

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..data.normalize import image_to_tensor
from ..utils.affine import transform_points
from .group import group_keypoints
from .settings import InferenceSettings  # noqa: F401 (re-exported: its old home)
from .transforms import resize_geometry, warp_image


@dataclass
class InferenceMaps:
    """Aggregated maps of one image, ready for grouping.

    ``heatmaps [J, H, W]``; ``tags [Jt, H, W, D]`` (a view of ``[D, Jt, H, W]`` storage);
    ``geometry`` maps these maps back to the image (through ``map_to_image``)."""
    heatmaps: torch.Tensor
    tags: torch.Tensor
    geometry: object
    forward_s: float = 0.0
    aggregate_s: float = 0.0

    @property
    def map_wh(self):
        return int(self.heatmaps.shape[2]), int(self.heatmaps.shape[1])

    def map_to_image(self, points):
        """``points[..., :2]`` from map pixels to image pixels (other columns unchanged)."""
        return transform_points(points, self.geometry.to_image_matrix(self.map_wh))


@dataclass
class Prediction:
    """People found in one image: ``keypoints [P, J, 3]`` (x, y in image pixels, joint score)
    and ``scores [P]`` (mean joint score, the release's), plus per-stage times in seconds."""
    keypoints: np.ndarray
    scores: np.ndarray
    times: dict = field(default_factory=dict)
    maps: InferenceMaps = None


def _sync(device):
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def run_model(model, image, geometry, flip, device):
    """Network outputs for ``image`` (RGB uint8) resized by ``geometry``; with ``flip`` the
    batch holds the mirrored input second."""
    batch = image_to_tensor(warp_image(image, geometry))[None].to(device)
    if flip:
        batch = torch.cat([batch, batch.flip(3)], dim=0)
    with torch.inference_mode():
        return model(batch)


def _resize(maps, size):
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


def _combine_outputs(outputs, settings):
    """One scale's outputs -> flip-averaged heatmaps ``[J, h, w]`` and a list of tag maps
    ``[Jt, h, w]`` (non-flipped ones first), at the finest output's resolution."""
    joints = settings.num_joints
    finest = outputs[-1].shape[-2:]
    heat, count, tags = None, 0, []
    for i, output in enumerate(outputs):
        if not (settings.heatmap_outputs[i] or settings.tag_outputs[i]):
            continue
        output = _resize(output, finest)
        if settings.heatmap_outputs[i]:
            part = output[:, :joints]
            heat = part.clone() if heat is None else heat.add_(part)
            count += 1
        if settings.tag_outputs[i]:
            tags.append(output[:, settings.tag_offsets[i]:])
    if not settings.flip:
        return heat[0].mul_(1.0 / count), [t[0] for t in tags]
    # Mirror the flipped pass back and swap left/right joints (advanced indexing: index_select
    # along dim 0 is several times slower on CPU), then average the two passes.
    index = torch.as_tensor(settings.flip_index, device=heat.device)
    averaged = heat[0].add_(heat[1].flip(-1)[index]).mul_(0.5 / count)
    flipped = [t[1].flip(-1)[index] if settings.tag_per_joint else t[1].flip(-1) for t in tags]
    return averaged, [t[0] for t in tags] + flipped


def compute_maps(forward, image_wh, settings):
    """Run ``forward(geometry) -> outputs`` at every test scale and aggregate the maps.

    ``forward`` is the network on the resized image (``run_model``), or anything producing
    outputs of the same layout (the decoding-ceiling tool renders ground truth)."""
    scales = sorted(settings.scales, reverse=True)
    min_scale = min(scales)
    base = resize_geometry(image_wh, settings.input_size, 1.0, min_scale)
    base_hw = (base.input_wh[1], base.input_wh[0])
    final, tag_maps, geometry = None, [], None
    forward_s = aggregate_s = 0.0
    for scale in scales:
        geometry = resize_geometry(image_wh, settings.input_size, scale, min_scale)
        start = time.perf_counter()
        outputs = forward(geometry)
        device = outputs[-1].device
        _sync(device)
        middle = time.perf_counter()
        with torch.inference_mode():
            heatmaps, tags = _combine_outputs(outputs, settings)
            if settings.project_to_image:
                heatmaps = _resize(heatmaps[None], base_hw)[0]
            if scale == 1.0 or len(scales) == 1:
                stacked = torch.stack(tags)  # [D, Jt, h, w]
                size = base_hw if settings.project_to_image else (final.shape[-2:] if final is not None else None)
                if size is not None:
                    depth, channels = stacked.shape[:2]
                    stacked = _resize(stacked.reshape(1, depth * channels, *stacked.shape[-2:]), size).reshape(
                        depth, channels, *size)
                tag_maps.append(stacked)
            if final is None:
                final = heatmaps.clone() if len(scales) > 1 else heatmaps
            else:
                final += _resize(heatmaps[None], final.shape[-2:])[0]
        _sync(device)
        forward_s += middle - start
        aggregate_s += time.perf_counter() - middle
    start = time.perf_counter()
    with torch.inference_mode():
        if len(scales) > 1:
            final /= float(len(scales))
        tags = torch.cat(tag_maps, dim=0).contiguous()
    aggregate_s += time.perf_counter() - start
    return InferenceMaps(final.contiguous(), tags.permute(1, 2, 3, 0), geometry, forward_s, aggregate_s)


def decode(maps, settings, keep_maps=False):
    """Group ``maps`` and map the people back to the image: a ``Prediction``."""
    start = time.perf_counter()
    people, scores = group_keypoints(maps.heatmaps, maps.tags, settings.grouping)
    keypoints = maps.map_to_image(people[:, :, :3]) if len(people) else np.zeros((0, settings.num_joints, 3))
    grouping_s = time.perf_counter() - start
    times = {"network": maps.forward_s, "aggregate": maps.aggregate_s, "grouping": grouping_s}
    return Prediction(keypoints.astype(np.float64), scores.astype(np.float64), times, maps if keep_maps else None)


def predict(model, image, settings, device=None, keep_maps=False):
    """People in one RGB uint8 image (``[H, W, 3]``) with ``model`` in eval mode.

    Example::

        settings = InferenceSettings.from_config(cfg, model)
        prediction = predict(model.eval(), read_image(path), settings)
        prediction.keypoints  # [P, J, 3] x, y, score in image pixels
    """
    if device is None:
        device = next(model.parameters()).device
    image_wh = (image.shape[1], image.shape[0])
    maps = compute_maps(lambda geometry: run_model(model, image, geometry, settings.flip, device), image_wh, settings)
    return decode(maps, settings, keep_maps)
