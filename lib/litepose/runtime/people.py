"""People-level geometry and filtering, NumPy only: boxes around joints, object keypoint
similarity (OKS, the COCO metric's) between poses, and ``PersonFilter``.

Bottom-up grouping returns every group of joints it can form: on a real photo of one skier a
model returns dozens of "people", most of them a few weak joints or a second copy of the skier
with one limb moved. COCO evaluation does not mind (it ranks by score and keeps 20), a drawing
does. ``PersonFilter`` removes them after grouping, in two steps:

- ``min_score``: people whose score (the mean of their joint scores, as the release computes
  it) is below are dropped;
- ``nms_oks``: greedy non-maximum suppression among people, strongest first (equal scores: the
  earlier person wins): a person whose OKS with a person already kept exceeds ``nms_oks`` is a
  duplicate and dropped (the suppression bottom-up pipelines after HigherHRNet apply, with
  OKS in place of box IoU). The OKS area is the kept person's box around its visible joints.

Both off (None) keep every person: ``valid.py`` never filters, so its results stay the
release's. The defaults of ``litepose.PoseEstimator``'s presets were chosen by AP on the
quickstart's validation set (``python -m benchmarks.estimator_ap --sweep-filter``, BENCHMARKS.md).

``hide_outside``: joints placed outside the frame get score 0 (``hide_outside_frame``). The
network sees the frame padded to its input's shape, and the decoder places a joint wherever its
heatmap peaks, padding included (y = -42 on a 306-pixel-high photo). Such a joint has no evidence
in the picture, so it is reported as not visible rather than clipped to the border: clipping
would invent a position the network never gave, and a border joint looks like a real one in a
drawing or a tracker. Its x, y are kept (where the network put it) and the person's score is
not changed, so the same people are kept as without it.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


def boxes_around(poses, visible):
    """``[N, 4]`` boxes (x0, y0, x1, y1) around the visible joints (``visible``: ``[N, J]``);
    zeros for a pose with none."""
    boxes = np.zeros((len(poses), 4))
    for i, (pose, mask) in enumerate(zip(poses, visible)):
        if mask.any():
            xy = pose[mask, :2]
            boxes[i] = (*xy.min(axis=0), *xy.max(axis=0))
    return boxes


def oks_matrix(references, poses, visible_references, visible_poses, sigmas, area_scale=None):
    """COCO's object keypoint similarity between every reference pose and every pose: ``[R, P]``.
    The area is the reference's box (at least 1 px^2; times ``area_scale [R]`` when given);
    joints count where both are visible; 0 where none is."""
    variances = (2 * np.asarray(sigmas, np.float64)) ** 2
    boxes = boxes_around(references, visible_references)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0)
    if area_scale is not None:
        area = area * np.asarray(area_scale, np.float64)
    diff = references[:, None, :, :2] - poses[None, :, :, :2]
    d2 = (diff ** 2).sum(axis=-1)  # [R, P, J]
    e = d2 / (variances[None, None, :] * (area[:, None, None] + np.spacing(1)) * 2)
    both = visible_references[:, None, :] & visible_poses[None, :, :]
    count = both.sum(axis=-1)
    oks = (np.exp(-e) * both).sum(axis=-1) / np.maximum(count, 1)
    return np.where(count > 0, oks, 0.0)


@dataclass(frozen=True)
class PersonFilter:
    """People kept after grouping (module doc). ``min_score``: lowest person score kept (None:
    no threshold); ``nms_oks``: OKS above which a weaker person is a duplicate of a stronger
    one (None: no suppression); ``visible_score``: joints scoring above it count for OKS and
    boxes; ``hide_outside``: joints outside the frame get score 0 (``hide_outside_frame``)."""
    min_score: float = None
    nms_oks: float = None
    visible_score: float = 0.0
    hide_outside: bool = False

    def __post_init__(self):
        if self.min_score is not None and not np.isfinite(self.min_score):
            raise ConfigError(f"the person-score threshold must be a finite number or None, got {self.min_score}")
        if self.nms_oks is not None and not 0.0 < self.nms_oks <= 1.0:
            raise ConfigError(f"the person NMS threshold (OKS) must be in (0, 1] or None, got {self.nms_oks}")

    @property
    def active(self):
        return self.min_score is not None or self.nms_oks is not None

    def keep(self, keypoints, scores, sigmas):
        """Indices of the people kept, ascending (the grouping's order is kept)."""
        scores = np.asarray(scores, np.float64)
        candidates = np.arange(len(scores))
        if self.min_score is not None:
            candidates = candidates[scores[candidates] >= self.min_score]
        if self.nms_oks is None or candidates.size < 2:
            return candidates
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        poses = np.asarray(keypoints, np.float64)[order]
        visible = poses[:, :, 2] > self.visible_score
        similarity = oks_matrix(poses, poses, visible, visible, sigmas)
        suppressed = np.zeros(len(order), bool)
        for i in range(len(order)):
            if not suppressed[i]:
                later = np.arange(i + 1, len(order))
                suppressed[later] |= similarity[i, later] > self.nms_oks
        return np.sort(order[~suppressed])


NO_FILTER = PersonFilter()


def hide_outside_frame(keypoints, width, height):
    """``keypoints [P, J, 3]`` with score 0 for the joints outside a ``width`` x ``height``
    frame (x, y beyond half a pixel past the outermost pixel centres); x, y unchanged. A new array
    when any joint is outside, else ``keypoints`` itself."""
    x, y = keypoints[..., 0], keypoints[..., 1]
    outside = (x < -0.5) | (y < -0.5) | (x > width - 0.5) | (y > height - 0.5)
    if not outside.any():
        return keypoints
    keypoints = keypoints.copy()
    keypoints[..., 2][outside] = 0.0
    return keypoints
