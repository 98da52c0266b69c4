"""Training targets at any resolution, built in torch on any device and vectorised over the batch.

The release's rules (HigherHRNet's ``HeatmapGenerator`` and ``JointsGenerator``), for each output
of resolution ``R``, from the joints in that output's pixels (``litepose.data.transforms``):

- heatmaps ``[B, J, R, R]``: every labelled joint (visibility > 0) whose integer pixel
  ``int(x), int(y)`` (truncated toward zero, so ``(-1, 0)`` counts as pixel 0) lies inside the
  output gets a Gaussian of standard deviation ``sigma`` centred on that pixel, over the
  release's window of ``6 sigma + 3`` pixels; overlapping people take the maximum;
- joint indices ``[B, P, J, 2]`` for the associative-embedding loss: per person, its joints
  inside the output packed first in joint order as ``(j R^2 + int(y) R + int(x), 1)``
  (``int(y) R + int(x)`` without ``MODEL.TAG_PER_JOINT``), then ``(0, 0)``;
- masks ``[B, R, R]``: 1 where the loss counts, warped by the data workers straight to ``R``.

Targets are built here, on the training device, so a supernet step can train any sub-network at
its own resolution from the same batch (``prepare_batch``); a fixed network trained on a CPU has
them rendered by the same code in its loader workers (``WorkerTargets``). Joints are placed at
each resolution by the sample's own affine matrix for that resolution and rendered with the same
integer-pixel rule (the release instead resized 512-px targets, which is not copied). Coordinates
are float64 up to the integer pixel, as in the release.
"""

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .normalize import normalize_tensor
from .transforms import Placement, keypoints_at


class TargetConfig(NamedTuple):
    sigma: float            # DATASET.SIGMA in output pixels; negative: R / 64 (the release's default)
    scale_aware: bool       # DATASET.SCALE_AWARE_SIGMA: per-person sigma from its size
    base_size: float        # DATASET.BASE_SIZE
    base_sigma: float       # DATASET.BASE_SIGMA
    int_sigma: bool         # DATASET.INT_SIGMA
    tag_per_joint: bool = True   # MODEL.TAG_PER_JOINT

    @classmethod
    def from_config(cls, cfg):
        d = cfg.DATASET
        if not d.SCALE_AWARE_SIGMA and d.SIGMA == 0:
            raise ConfigError("DATASET.SIGMA must not be 0 (the release uses 2; negative means output size / 64)")
        if d.SCALE_AWARE_SIGMA and (d.BASE_SIZE <= 0 or d.BASE_SIGMA <= 0):
            raise ConfigError("DATASET.BASE_SIZE and DATASET.BASE_SIGMA must be positive for SCALE_AWARE_SIGMA")
        return cls(float(d.SIGMA), bool(d.SCALE_AWARE_SIGMA), float(d.BASE_SIZE), float(d.BASE_SIGMA),
                   bool(d.INT_SIGMA), bool(cfg.MODEL.TAG_PER_JOINT))

    def person_sigmas(self, source_sizes, aug_scales, resolution):
        """Sigma ``[B, P]`` float64 in the pixels of an output of ``resolution``.

        Scale-aware: the release's ``size / BASE_SIZE * BASE_SIGMA`` of the person's box in the
        source image (``round(. + 0.5)`` with ``INT_SIGMA``), divided by the drawn scale; the
        same number of pixels at every output."""
        if not self.scale_aware:
            sigma = self.sigma if self.sigma > 0 else resolution / 64
            return torch.full_like(source_sizes, sigma, dtype=torch.float64)
        sigma = source_sizes.double() / self.base_size * self.base_sigma
        if self.int_sigma:
            sigma = torch.round(sigma + 0.5)
        # A person without a box has sigma 0, where the release fails; give it the smallest.
        return (sigma / aug_scales.double()[:, None]).clamp(min=0.5)


class TrainBatch(NamedTuple):
    """A batch ready for the network and the loss. A tuple whose first item is the images, so
    code that only needs images (BN recalibration) can take ``batch[0]``."""
    images: torch.Tensor          # [B, 3, S, S] float, normalised
    heatmaps: list                # per output: [B, J, R, R]
    masks: list                   # per output: [B, R, R] float 0/1
    joints: list                  # per output: [B, P, J, 2] long (index, visible)
    keypoints: torch.Tensor       # [B, P, J, 3] float32 in input pixels of this batch (absent: 0)
    input_size: int


def _integer_pixels(keypoints, size):
    """``(x, y, present)``: the release's ``int(x), int(y)`` and whether a labelled joint is inside."""
    x, y = torch.trunc(keypoints[..., 0]), torch.trunc(keypoints[..., 1])
    present = (keypoints[..., 2] > 0) & (x >= 0) & (x < size) & (y >= 0) & (y < size)
    return x, y, present


def render_heatmaps(keypoints, size, sigmas):
    """``keypoints [B, P, J, 3]`` in output pixels, ``sigmas [B, P]`` -> float32 ``[B, J, size, size]``."""
    batch, people, joints, _ = keypoints.shape
    device = keypoints.device
    heatmaps = torch.zeros(batch * joints * size * size, device=device, dtype=torch.float32)
    keypoints = keypoints.double()
    cx, cy, present = _integer_pixels(keypoints, size)
    if not bool(present.any()):
        return heatmaps.view(batch, joints, size, size)
    # Only the joints that are drawn: most of the MAX_NUM_PEOPLE rows of a batch are empty.
    b, p, j = present.nonzero(as_tuple=True)
    cx, cy = cx[b, p, j], cy[b, p, j]
    sigma = sigmas.double()[b, p]
    # The release's kernel: g[k] = exp(-(k - (3 sigma + 1))^2 / (2 sigma^2)), k = 0 .. ceil(6 sigma + 3) - 1,
    # laid from pixel round(c - 3 sigma - 1) and cut at round(c + 3 sigma + 2).
    first_x, first_y = torch.round(cx - 3 * sigma - 1), torch.round(cy - 3 * sigma - 1)
    kernel_len = torch.ceil(6 * sigma + 3)
    len_x = torch.minimum(torch.round(cx + 3 * sigma + 2) - first_x, kernel_len)
    len_y = torch.minimum(torch.round(cy + 3 * sigma + 2) - first_y, kernel_len)
    width = int(math.ceil(float(kernel_len.max())))
    k = torch.arange(width, device=device, dtype=torch.float64)
    centre = (3 * sigma + 1)[:, None]
    xs, ys = first_x[:, None] + k, first_y[:, None] + k                          # [N, K]
    inside_x = (k < len_x[:, None]) & (xs >= 0) & (xs < size)
    inside_y = (k < len_y[:, None]) & (ys >= 0) & (ys < size)
    d2 = (k - centre)[:, None, :] ** 2 + (k - centre)[:, :, None] ** 2            # [N, K(y), K(x)]
    values = torch.exp(-d2 / (2 * sigma[:, None, None] ** 2)).float()
    keep = inside_y[:, :, None] & inside_x[:, None, :]
    index = (((b * joints + j)[:, None, None] * size + ys[:, :, None].long()) * size + xs[:, None, :].long())
    heatmaps.scatter_reduce_(0, index[keep], values[keep], reduce="amax", include_self=True)
    return heatmaps.view(batch, joints, size, size)


def joint_indices(keypoints, size, tag_per_joint=True):
    """``[B, P, J, 2]`` long, in the release's layout: per person, ``(index, 1)`` for each
    labelled joint inside the output, packed first in joint order, then ``(0, 0)``."""
    batch, people, joints, _ = keypoints.shape
    x, y, present = _integer_pixels(keypoints.double(), size)
    pixel = y.long() * size + x.long()
    if tag_per_joint:
        pixel = pixel + torch.arange(joints, device=keypoints.device).view(1, 1, joints) * size * size
    order = torch.argsort((~present).to(torch.uint8), dim=-1, stable=True)
    present = torch.gather(present, -1, order)
    index = torch.gather(pixel, -1, order) * present
    return torch.stack([index, present.long()], dim=-1)


def place_keypoints(source_keypoints, placements, resolution):
    """Source keypoints ``[B, P, J, 3]`` of a batch in the pixels of ``resolution``: float64
    numpy, each sample by its own ``Placement`` (``batch["placement"]`` rows)."""
    source = np.asarray(source_keypoints, dtype=np.float64)
    placed = np.empty_like(source)
    for b, values in enumerate(np.asarray(placements, dtype=np.float64)):
        placed[b] = keypoints_at(source[b], Placement.from_array(values), resolution)
    return placed


def resize_masks(masks, size):
    """``uint8/float [B, S, S]`` (1 = loss counts) -> float ``[B, size, size]``, 1 where most of the
    area counts."""
    masks = masks.float()[:, None]
    if masks.shape[-1] != size:
        masks = F.interpolate(masks, size=(size, size), mode="area")
    return (masks[:, 0] > 0.5).float()


def output_sizes(input_size):
    """LitePose's outputs: 1/4 (heatmaps and tags) and 1/2 (heatmaps) of the input."""
    if input_size % 4:
        raise ConfigError(f"training input size must be a multiple of 4, got {input_size}")
    return [input_size // 4, input_size // 2]


def prepare_batch(batch, target_config, input_size=None, device=None, with_targets=True,
                  image_dtype=torch.float32):
    """A loader batch (``images`` uint8 ``[B, 3, S, S]``, ``masks`` per output of ``S``,
    ``source_keypoints [B, P, J, 3]``, ``person_sizes [B, P]``, ``placement [B, 6]``) as a
    ``TrainBatch`` on ``device``, at ``input_size`` (default: as loaded).

    At another size than loaded (the supernet's sub-networks) the images are rescaled (bilinear,
    antialiased) and every target is rebuilt for that size: joints placed and rendered exactly
    by the rule above; masks are the loaded half-resolution mask averaged down (the workers
    warped them for the loaded size only)."""
    device = torch.device(device) if device is not None else batch["images"].device
    non_blocking = device.type == "cuda"
    images = batch["images"].to(device, non_blocking=non_blocking)
    loaded = images.shape[-1]
    size = int(input_size or loaded)
    # Loaders ship uint8 (a quarter of the bytes); normalised on the device (litepose.data.normalize).
    images = normalize_tensor(images.to(image_dtype) / 255.0)
    if size != loaded:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                               antialias=size < loaded)
    source = batch["source_keypoints"].cpu().numpy()
    placements = batch["placement"].cpu().numpy()
    visible = source[..., 2:3] > 0
    at_input = place_keypoints(source, placements, size)
    at_input[..., :2] *= visible          # absent joints stay at (0, 0)
    keypoints = torch.from_numpy(at_input).float().to(device, non_blocking=non_blocking)
    if not with_targets:
        return TrainBatch(images, [], [], [], keypoints, size)
    rendered = batch.get("targets")
    if rendered is not None and rendered["input_size"] == size:
        # Rendered by the loader workers (``WorkerTargets``) by the same code.
        heatmaps = [h.to(device, non_blocking=non_blocking) for h in rendered["heatmaps"]]
        joints = [j.to(device, non_blocking=non_blocking) for j in rendered["joints"]]
    else:
        heatmaps, joints = render_targets(batch, target_config, size, device)
    loaded_masks = list(batch["masks"])
    out_masks = []
    for position, resolution in enumerate(output_sizes(size)):
        if size == loaded:
            out_masks.append(loaded_masks[position].to(device, non_blocking=non_blocking).float())
        else:
            out_masks.append(resize_masks(loaded_masks[-1].to(device, non_blocking=non_blocking), resolution))
    return TrainBatch(images, heatmaps, out_masks, joints, keypoints, size)


def render_targets(batch, target_config, size, device):
    """``(heatmaps, joints)``: per output of a network input of ``size``, a loader batch's
    heatmaps ``[B, J, R, R]`` and joint indices ``[B, P, J, 2]`` on ``device``."""
    device = torch.device(device)
    non_blocking = device.type == "cuda"
    source = batch["source_keypoints"].cpu().numpy()
    placements = batch["placement"].cpu().numpy()
    sizes = batch["person_sizes"].to(device, non_blocking=non_blocking)
    aug_scales = batch["placement"][:, 5].to(device, non_blocking=non_blocking)
    heatmaps, joints = [], []
    for resolution in output_sizes(size):
        placed = torch.from_numpy(place_keypoints(source, placements, resolution)).to(device, non_blocking=non_blocking)
        sigmas = target_config.person_sigmas(sizes, aug_scales, resolution)
        heatmaps.append(render_heatmaps(placed, resolution, sigmas))
        joints.append(joint_indices(placed, resolution, target_config.tag_per_joint))
    return heatmaps, joints


class WorkerTargets:
    """A loader's ``collate_fn`` that also renders the batch's targets at ``input_size`` on the
    CPU (``batch["targets"]``), as the release's workers do: on a CPU the rendering then
    overlaps the training step instead of preceding it. ``prepare_batch`` uses them when it
    prepares that size and renders any other size itself (the supernet's sub-networks)."""

    def __init__(self, collate, target_config, input_size):
        self.collate, self.target_config, self.input_size = collate, target_config, int(input_size)

    def __call__(self, samples):
        batch = self.collate(samples)
        if "error" not in batch:
            heatmaps, joints = render_targets(batch, self.target_config, self.input_size, "cpu")
            batch["targets"] = {"input_size": self.input_size, "heatmaps": heatmaps, "joints": joints}
        return batch
