"""Training targets at any resolution, built in torch on any device and vectorised over the batch.

From keypoints in input pixels (after augmentation), for each output of resolution ``R``:

- heatmaps ``[B, J, R, R]``: for every labelled joint (visibility > 0) inside the output, a
  Gaussian of standard deviation ``sigma`` (output pixels) centred on the joint's sub-pixel
  position, cut off beyond ``3 sigma + 1`` pixels from its nearest pixel (HigherHRNet's window);
  overlapping people take the maximum;
- joint indices ``[B, P, J, 2]`` for the associative-embedding loss: ``(j R^2 + y R + x, 1)`` at the
  joint's nearest pixel, ``(0, 0)`` where there is no joint;
- masks ``[B, R, R]``: 1 where the loss counts, 0 over crowd regions and people without
  keypoints (the input-resolution mask averaged down and thresholded at 0.5).

Targets are built here rather than in the data workers so a supernet step can train any
sub-network at its own resolution from the same batch (``prepare_batch``), and so that every
output resolution gets the configured sigma.
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .normalize import normalize_tensor


class SigmaConfig(NamedTuple):
    sigma: float            # fixed sigma in output pixels (DATASET.SIGMA)
    scale_aware: bool       # DATASET.SCALE_AWARE_SIGMA: per-person sigma from its size
    base_size: float        # DATASET.BASE_SIZE
    base_sigma: float       # DATASET.BASE_SIGMA
    int_sigma: bool         # DATASET.INT_SIGMA

    @classmethod
    def from_config(cls, cfg):
        d = cfg.DATASET
        if not d.SCALE_AWARE_SIGMA and d.SIGMA <= 0:
            raise ConfigError(f"DATASET.SIGMA must be positive (the release uses 2), got {d.SIGMA}")
        if d.SCALE_AWARE_SIGMA and (d.BASE_SIZE <= 0 or d.BASE_SIGMA <= 0):
            raise ConfigError("DATASET.BASE_SIZE and DATASET.BASE_SIGMA must be positive for SCALE_AWARE_SIGMA")
        return cls(float(d.SIGMA), bool(d.SCALE_AWARE_SIGMA), float(d.BASE_SIZE), float(d.BASE_SIGMA),
                   bool(d.INT_SIGMA))

    def person_sigmas(self, sizes):
        """Per-person sigma ``[B, P]`` from person sizes in input pixels (scale-aware mode), else
        the fixed sigma. A person's sigma is the same number of pixels at every output."""
        if not self.scale_aware:
            return torch.full_like(sizes, self.sigma)
        sigma = sizes / self.base_size * self.base_sigma
        if self.int_sigma:
            sigma = torch.round(sigma + 0.5)
        return sigma.clamp(min=0.5)


class TrainBatch(NamedTuple):
    """A batch ready for the network and the loss. A tuple whose first item is the images, so
    code that only needs images (BN recalibration) can take ``batch[0]``."""
    images: torch.Tensor          # [B, 3, S, S] float, normalised
    heatmaps: list                # per output: [B, J, R, R]
    masks: list                   # per output: [B, R, R] float 0/1
    joints: list                  # per output: [B, P, J, 2] long (index, visible)
    keypoints: torch.Tensor       # [B, P, J, 3] in input pixels of this batch
    input_size: int


def render_heatmaps(keypoints, size, sigmas):
    """``keypoints [B, P, J, 3]`` in output pixels, ``sigmas [B, P]`` -> ``[B, J, size, size]``."""
    batch, people, joints, _ = keypoints.shape
    device = keypoints.device
    heatmaps = torch.zeros(batch * joints * size * size, device=device, dtype=torch.float32)
    if people == 0:
        return heatmaps.view(batch, joints, size, size)
    x, y, vis = keypoints[..., 0].float(), keypoints[..., 1].float(), keypoints[..., 2]
    cx, cy = torch.round(x), torch.round(y)
    present = (vis > 0) & (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
    sigma = sigmas.float()[..., None].expand(batch, people, joints)
    radius = int(math.ceil(3 * float(sigma[present].max()) + 1)) if present.any() else 1
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    xs = cx[..., None] + offsets                                  # [B, P, J, K]
    ys = cy[..., None] + offsets
    window = (offsets.abs()[None, None, None] <= 3 * sigma[..., None] + 1)
    gx = torch.exp(-((xs - x[..., None]) ** 2) / (2 * sigma[..., None] ** 2))
    gy = torch.exp(-((ys - y[..., None]) ** 2) / (2 * sigma[..., None] ** 2))
    inside_x = (xs >= 0) & (xs < size) & window
    inside_y = (ys >= 0) & (ys < size) & window
    values = gy[..., :, None] * gx[..., None, :]                  # [B, P, J, K, K]
    keep = inside_y[..., :, None] & inside_x[..., None, :] & present[..., None, None]
    b = torch.arange(batch, device=device).view(batch, 1, 1, 1, 1)
    j = torch.arange(joints, device=device).view(1, 1, joints, 1, 1)
    index = ((b * joints + j) * size + ys[..., :, None].long()) * size + xs[..., None, :].long()
    heatmaps.scatter_reduce_(0, index[keep], values[keep], reduce="amax", include_self=True)
    return heatmaps.view(batch, joints, size, size)


def joint_indices(keypoints, size):
    """``[B, P, J, 2]`` long: ``(j * size^2 + y * size + x, 1)`` per labelled joint inside the output."""
    batch, people, joints, _ = keypoints.shape
    cx, cy = torch.round(keypoints[..., 0]), torch.round(keypoints[..., 1])
    present = (keypoints[..., 2] > 0) & (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
    j = torch.arange(joints, device=keypoints.device).view(1, 1, joints)
    index = (j * size * size + cy.long() * size + cx.long()) * present
    return torch.stack([index, present.long()], dim=-1)


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


def prepare_batch(batch, sigma_config, input_size=None, device=None, with_targets=True,
                  image_dtype=torch.float32):
    """A loader batch (``images`` uint8 ``[B, 3, S, S]``, ``masks`` uint8 ``[B, S, S]``,
    ``keypoints [B, P, J, 3]``, ``person_sizes [B, P]``) as a ``TrainBatch`` on ``device``, at
    ``input_size`` (default: as loaded). Resizing scales the images (bilinear, antialiased) and
    rebuilds every target at the new resolution, so a sub-network of any input size trains
    with exact targets and the configured sigma."""
    device = torch.device(device) if device is not None else batch["images"].device
    non_blocking = device.type == "cuda"
    images = batch["images"].to(device, non_blocking=non_blocking)
    loaded = images.shape[-1]
    size = int(input_size or loaded)
    # Loaders ship uint8 (a quarter of the bytes); normalised on the device (litepose.data.normalize).
    images = normalize_tensor(images.to(image_dtype) / 255.0)
    keypoints = batch["keypoints"].to(device, non_blocking=non_blocking).float()
    if size != loaded:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                               antialias=size < loaded)
        keypoints = torch.cat([keypoints[..., :2] * (size / loaded), keypoints[..., 2:]], dim=-1)
    if not with_targets:
        return TrainBatch(images, [], [], [], keypoints, size)
    masks = batch["masks"].to(device, non_blocking=non_blocking)
    sizes = batch["person_sizes"].to(device, non_blocking=non_blocking).float() * (size / loaded)
    sigmas = sigma_config.person_sigmas(sizes)
    heatmaps, out_masks, joints = [], [], []
    for resolution in output_sizes(size):
        scaled = torch.cat([keypoints[..., :2] * (resolution / size), keypoints[..., 2:]], dim=-1)
        heatmaps.append(render_heatmaps(scaled, resolution, sigmas))
        joints.append(joint_indices(scaled, resolution))
        out_masks.append(resize_masks(masks, resolution))
    return TrainBatch(images, heatmaps, out_masks, joints, keypoints, size)
