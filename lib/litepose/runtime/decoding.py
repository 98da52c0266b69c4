"""Grouping with a bounded cost, and people mapped back to the image.

``group_bounded`` is ``litepose.inference.group.group_keypoints`` (the release's grouping) with
two changes that make its cost independent of the maps:

- **Dense peak finding** (exact, always on): where many pixels pass the detection threshold
  (random weights: about half of them), NMS is one OpenCV max filter per joint over the whole
  map instead of a per-candidate search. The peaks, their order and the ties are those of
  ``group.find_peaks`` (a test compares them); on sparse maps ``group.find_peaks`` itself runs.
- **Fast refinement** (exact, always on): a missing joint first searches its joint's strongest
  pixels (``refine_people``), the block search of ``group`` only where that cannot decide.
- **Detection cap** (``DecodeLimits.max_detections``, off unless asked for): fewer detections
  per joint than ``max_num_people`` enter matching, whose optimal assignments dominate the
  cost on dense maps. It changes results where a joint has more detections than the cap.
- **People cap** (``DecodeLimits.max_people``, off unless asked for): only the ``max_people``
  highest-scoring people (stable order: on equal scores the earlier person wins) are refined and
  returned, in the release's order. Refinement is per person, so the people kept are exactly
  those the uncapped grouping returns. COCO and CrowdPose evaluation keep the 20 highest scores
  per image (``maxDets`` 20, the same stable order), so a cap of 20 or more leaves AP unchanged;
  what it removes is refinement's cost, which grows with the number of people (on random maps,
  hundreds of them, seconds per frame at 512).

With both limits off the result is ``group_keypoints``'s own; the ``realtime`` preset of
``litepose.PoseEstimator`` turns the cap on, ``valid.py`` never does.

With the cap, the work per frame is bounded by the maps' size: NMS over every pixel, at most
``max_num_people`` detections per joint into matching, at most ``max_people * J`` refined
joints, each at worst a pass over one map.

``group_bounded`` calls ``group``'s building blocks (``_Maps``, ``find_peaks``, ``match_peaks``,
``adjust_people``, ``_refine_argmax``, ``_quarter_shift``, ``_tag_distance``); a
``max_people`` argument of ``group_keypoints`` (and the two exact speed-ups there) would make
that unnecessary.
"""

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..inference import group as _group

# Above this share of a map's pixels passing the threshold, NMS filters whole maps.
DENSE_FRACTION = 0.02


@dataclass(frozen=True)
class DecodeLimits:
    """Switches of the bounded decoding. ``max_people``: people kept (by score) before
    refinement, None = all (the release). ``max_detections``: detections per joint that enter
    matching, at most ``max_num_people`` (None: ``max_num_people``, the release; fewer makes
    matching cheaper on dense maps and drops the weakest detections of crowded frames).
    ``dense_nms``: whole-map NMS on dense maps,
    ``fast_refine``: refinement tries the strongest pixels first (both exact, on by default)."""
    max_people: int = None
    max_detections: int = None
    dense_nms: bool = True
    fast_refine: bool = True

    def __post_init__(self):
        for name in ("max_people", "max_detections"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be positive or None, got {value}")


NO_LIMITS = DecodeLimits()


@dataclass
class Decoded:
    """People of one image: ``keypoints [P, J, 3]`` (x, y in image pixels, joint score),
    ``scores [P]``, per-stage times in seconds, and the maps when asked for."""
    keypoints: np.ndarray
    scores: np.ndarray
    times: dict = field(default_factory=dict)
    maps: object = None


def find_peaks_dense(maps, threshold, max_per_joint):
    """``group.find_peaks`` by whole-map NMS: the same ``(joint, y, x, value)`` arrays, per
    joint strongest first (at most ``max_per_joint``), ties in raster order.

    All joints are filtered by one ``cv2.dilate`` of the maps stacked into one tall image with
    -inf rows between them (OpenCV's default border ignores outside pixels, as max-pooling's
    -inf padding does)."""
    det = maps.det
    joints_count, height, width = det.shape
    half = maps.kernel // 2
    stacked = np.full((joints_count, height + half, width), -np.inf, np.float32)
    stacked[:, :height] = det
    stacked = stacked.reshape(joints_count * (height + half), width)
    dilated = cv2.dilate(stacked, np.ones((maps.kernel, maps.kernel), np.uint8))
    dilated = dilated.reshape(joints_count, height + half, width)[:, :height]
    peaks = np.flatnonzero((det > threshold) & (det >= dilated))
    if peaks.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, np.zeros(0, np.float32)
    values = det.ravel()[peaks]
    bounds = np.searchsorted(peaks, np.arange(joints_count + 1) * height * width)  # peaks ascend
    picked = []
    for joint in range(joints_count):
        lo, hi = bounds[joint], bounds[joint + 1]
        if hi == lo:
            continue
        local = values[lo:hi]
        candidates = np.arange(hi - lo)
        if candidates.size > max_per_joint:
            # Every value reaching the max_per_joint-th largest, ties included, in raster order.
            kth = np.partition(local, local.size - max_per_joint)[local.size - max_per_joint]
            candidates = np.flatnonzero(local >= kth)
        # Strongest first, ties in raster order: a stable sort of -value over raster order.
        order = candidates[np.argsort(-local[candidates], kind="stable")][:max_per_joint]
        picked.append(lo + order)
    if not picked:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, np.zeros(0, np.float32)
    picked = np.concatenate(picked)
    peaks, values = peaks[picked], values[picked]
    joints = peaks // (height * width)
    within = peaks - joints * height * width
    return joints, within // width, within % width, values


# Strongest pixels per joint that refinement tries first (see ``refine_people``).
REFINE_TOP_PIXELS = 1024


def refine_people(people, maps, top_pixels=REFINE_TOP_PIXELS):
    """``group.refine_people`` (step 5: a missing joint takes the first raster-order pixel
    maximising ``heatmap - round(|tag - mean tag|)``) with the same result, faster on dense
    maps. Each pair (person, missing joint) first evaluates its joint's ``top_pixels``
    strongest pixels; when the best value found there exceeds the weakest of them, no other
    pixel can reach it (``round(distance) >= 0``) and the answer is exact. Otherwise that best
    value still bounds the answer from below, and only pixels whose heatmap reaches it can
    hold the answer: they are evaluated next. Pairs with too many such pixels (sparse maps,
    where the best value is weak) take ``group``'s block search."""
    det = maps.det
    person_idx, joint_idx, mean_tags = _group.missing_joints(people)
    if person_idx.size == 0:
        return
    best_flat = np.zeros(person_idx.size, np.int64)
    best_det = np.zeros(person_idx.size, np.float32)
    unresolved = np.zeros(person_idx.size, bool)
    plane_size = maps.height * maps.width
    count = min(int(top_pixels), plane_size)
    for joint in np.unique(joint_idx):
        pairs = np.flatnonzero(joint_idx == joint)
        plane = det[joint].ravel()
        # Stage 1: the strongest pixels.
        top = np.argpartition(-plane, count - 1)[:count] if count < plane_size else np.arange(plane_size)
        top = np.sort(top)  # raster order: the first maximum is the lowest index
        value, best = _best_pixels(maps, joint, top, mean_tags[pairs])
        # Outside the top pixels every value is at most the weakest top pixel's heatmap.
        exact = value > plane[top].min() if count < plane_size else np.ones(pairs.size, bool)
        best_flat[pairs] = top[best]
        if exact.all():
            continue
        # Stage 2: the best value found is reached by a pixel; a pixel can only reach it if its
        # heatmap does, so the pixels whose heatmap reaches the lowest such value of the pairs
        # left hold each pair's answer (all of them when the maps are sparse: then the blocks).
        rest = pairs[~exact]
        candidates = np.flatnonzero(plane >= value[~exact].min())
        if candidates.size * rest.size > _STAGE2_EVALUATIONS:
            unresolved[rest] = True
            continue
        _, best = _best_pixels(maps, joint, candidates, mean_tags[rest])
        best_flat[rest] = candidates[best]
    best_det = det.reshape(det.shape[0], -1)[joint_idx, best_flat]
    if unresolved.any():
        rest = np.flatnonzero(unresolved)
        best_flat[rest], best_det[rest] = _group._refine_argmax(maps, joint_idx[rest], mean_tags[rest])
    ys, xs = best_flat // maps.width, best_flat % maps.width
    dx, dy = _group._quarter_shift(det, joint_idx, ys, xs)
    fill = best_det > 0
    people[person_idx[fill], joint_idx[fill], 0] = (xs + 0.5 + dx)[fill]
    people[person_idx[fill], joint_idx[fill], 1] = (ys + 0.5 + dy)[fill]
    people[person_idx[fill], joint_idx[fill], 2] = best_det[fill]


# Refinement's second stage evaluates at most this many (pair, pixel) values per joint.
_STAGE2_EVALUATIONS = 2_000_000


def _best_pixels(maps, joint, pixels, mean_tags):
    """For each mean tag ``[n, D]``: the best ``heatmap - round(|tag - mean|)`` over ``pixels``
    (flat indices in raster order, of ``joint``) and the position in ``pixels`` of its first
    maximum, in the release's float32 arithmetic (``group._tag_distance``)."""
    det_values = maps.det[joint].ravel()[pixels]
    tag_plane = maps.tag_joint(np.array([joint]))[0]
    values = np.empty((len(mean_tags), pixels.size), np.float32)
    step = max(1, _STAGE2_EVALUATIONS // 8 // max(1, pixels.size))
    for start in range(0, len(mean_tags), step):
        rows = slice(start, start + step)
        n = len(mean_tags[rows])
        tag_values = [np.broadcast_to(t[tag_plane].ravel()[pixels], (n, pixels.size)) for t in maps.tags]
        values[rows] = det_values[None, :] - _group._tag_distance(
            tag_values, [mean_tags[rows, d, None] for d in range(len(maps.tags))])
    best = np.argmax(values, axis=1)
    return values[np.arange(len(mean_tags)), best], best


def _is_dense(maps, threshold):
    if maps.tiled:
        # Blocks whose maximum passes bound the candidates from above, at a 64th of the cost.
        active = (maps.det_block_max() > threshold).mean()
        if active < DENSE_FRACTION:
            return False
    return (maps.det > threshold).mean() >= DENSE_FRACTION


def group_bounded(heatmaps, tags, params, limits=NO_LIMITS):
    """``group_keypoints(heatmaps, tags, params)`` with ``limits`` (module doc): ``(people
    [P, J, 3 + D] in map pixels, scores [P])``."""
    maps = _group._Maps(heatmaps, tags, params.nms_kernel)
    if maps.num_joints != params.num_joints:
        raise ValueError(f"heatmaps have {maps.num_joints} joints, grouping expects {params.num_joints}")
    per_joint = min(params.max_num_people, limits.max_detections or params.max_num_people)
    if limits.dense_nms and _is_dense(maps, params.detection_threshold):
        joints, ys, xs, vals = find_peaks_dense(maps, params.detection_threshold, per_joint)
    else:
        joints, ys, xs, vals = _group.find_peaks(maps, params.detection_threshold, per_joint)
    peak_tags = np.stack([plane[maps.tag_joint(joints), ys, xs] for plane in maps.tags], axis=1)
    people = _group.match_peaks(joints, xs, ys, vals, peak_tags, params)
    if params.adjust:
        _group.adjust_people(people, maps.det)
    scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, np.float32)
    if limits.max_people is not None and len(people) > limits.max_people:
        keep = np.sort(np.argsort(-scores, kind="stable")[:limits.max_people])
        people, scores = people[keep], scores[keep]
    if params.refine and len(people):
        if limits.fast_refine:
            refine_people(people, maps)
        else:
            _group.refine_people(people, maps)
    return people, scores.astype(np.float32)


def decode(maps, settings, limits=NO_LIMITS, keep_maps=False):
    """Group ``maps`` (a ``runtime.Maps``) and map the people back to the image: ``Decoded``."""
    start = time.perf_counter()
    people, scores = group_bounded(maps.heatmaps, maps.tags, settings.grouping, limits)
    keypoints = maps.map_to_image(people[:, :, :3]) if len(people) else np.zeros((0, settings.num_joints, 3))
    grouping_s = time.perf_counter() - start
    times = {"preprocess": maps.preprocess_s, "network": maps.forward_s, "aggregate": maps.aggregate_s,
             "grouping": grouping_s}
    return Decoded(keypoints.astype(np.float64), scores.astype(np.float64), times, maps if keep_maps else None)
