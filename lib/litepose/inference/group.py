"""Associative-embedding grouping: heatmaps and tag maps in, people out.

The algorithm is the release's (HigherHRNet's ``HeatmapParser``), step for step:

1. **Peaks.** Heatmap NMS by max-pooling (a pixel survives if it equals the maximum of its
   ``nms_kernel`` window, borders padded with -inf), then the ``max_num_people`` strongest
   survivors per joint; those above ``detection_threshold`` are detections.
2. **Matching**, joint by joint in the release's joint order. The first joint with detections
   starts one person per detection. Each later joint's detections are matched to the first
   ``max_num_people`` people by an optimal assignment on the distance between a detection's tag
   and the person's mean tag (with ``use_detection_val``: ``round(distance) * 100 - score``;
   with more detections than people, padded to square with columns of cost 1e10 that stand for
   "new person"); a detection assigned to such a column or to a person further than
   ``tag_threshold`` starts a new person. The rounding makes equally cheap assignments common,
   so the assignment is the one the release's solver (``munkres.Munkres``) picks among them,
   tie for tie (``assignment.munkres_assignment``); another optimal solver would form other
   people.
   People are identified by the first tag value of the detection that started them, as the
   release's dictionary keys are (a detection starting a person with an existing key joins it).
   ``ignore_too_much`` skips joints once ``max_num_people`` people exist.
3. **Adjust**: each joint moves a quarter pixel toward its higher neighbour, horizontally and
   vertically, and to the pixel centre (+0.5).
4. **Scores**: a person's score is the mean of its joint scores (missing joints count 0),
   taken before refinement.
5. **Refine**: a missing joint takes the pixel maximising ``heatmap - round(|tag - mean tag|)``
   over the whole map (quarter-pixel adjusted), if its heatmap value there is positive.

It is vectorised, and each step has a path for sparse maps (a trained network's: few pixels
above the detection threshold) and one for dense maps (random or untrained weights: about half
of them), chosen per image by the share of pixels above the threshold (``DENSE_FRACTION``).
Both paths give the same people (tests compare them):

- **NMS.** Sparse: heatmap maxima of 8x8 blocks are computed once, only blocks above the
  detection threshold are searched, and each candidate is compared with its NMS window nearest
  neighbour first, dropping out at the first larger one. Dense: the same test on the pixels of
  each joint's strongest blocks (``_top_block_peaks``), which decides wherever they hold enough
  peaks; elsewhere one OpenCV max filter over all joints stacked into one image.
- Peaks are selected per joint (strongest first, ties in raster order), matched with one
  ``munkres_assignment`` per joint, adjusted with one gather.
- **Refinement** finds the same maximum as the release's full-map search without evaluating
  every pixel. Sparse: per block it bounds ``heatmap - round(distance)`` from above (block
  maximum of the heatmap, distance from the mean tag to the block's box of tags) and evaluates
  only blocks whose bound reaches the best value found, so ties resolve to the first pixel in
  raster order as ``argmax`` does. Dense: each joint's strongest pixels first (a value there
  above the weakest of them cannot be beaten elsewhere), the blocks only where that cannot
  decide.

**Limits** (``DecodeLimits``, off unless asked for; the ``realtime`` preset of
``litepose.PoseEstimator`` turns them on, ``valid.py`` never does) bound the cost of a frame
whatever its maps:

- ``max_detections``: fewer detections per joint than ``max_num_people`` enter matching, whose
  optimal assignments dominate the cost on dense maps. It changes results where a joint has
  more detections than the cap.
- ``fast_assignment``: matching solves each joint's assignment with SciPy's
  ``linear_sum_assignment`` (compiled; on random-weight maps the release's tie-exact Munkres is
  the largest share of grouping) instead of ``assignment.munkres_assignment``. Both are
  optimal; where several assignments share the minimum cost (the rounded cost makes that
  common) they pick different ones, so people differ.
- ``max_people``: only the ``max_people`` highest-scoring people (stable order: on equal scores
  the earlier person wins) are refined and returned, in the release's order. Refinement is per
  person, so the people kept are exactly those the uncapped grouping returns. COCO and
  CrowdPose evaluation keep the 20 highest scores per image (``maxDets`` 20, the same stable
  order), so a cap of 20 or more leaves AP unchanged; what it removes is refinement's cost,
  which grows with the number of people (on random maps, hundreds of them).

With both caps, the work per frame is bounded by the maps' size: NMS over every pixel, at most
``max_num_people`` detections per joint into matching, at most ``max_people * J`` refined
joints, each at worst a pass over one map.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError
from .assignment import munkres_assignment

# The order in which the release matches joints (HigherHRNet's, in COCO numbering); for
# fewer joints it keeps the indices that exist (CrowdPose: 0-6, 11, 12, 7-10, 13).
RELEASE_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
# Padding cost of assignment columns that stand for "start a new person".
_NEW_PERSON_COST = 1e10
# Side of the square blocks that bound the refinement search.
_BLOCK = 8
# Selected blocks evaluated per chunk during refinement (bounds memory on dense maps).
_BLOCKS_PER_CHUNK = 4096
# Maps with at least this share of pixels above the detection threshold take the dense paths
# (random-weight maps: about half of them, where both dense paths are clearly faster; a trained
# quickstart model's: 3 to 12 %, where the dense refinement is not faster and the whole-map NMS
# saves about a millisecond per image but allocates maps' worth of temporaries:
# benchmarks/grouping_paths.py).
DENSE_FRACTION = 0.25
# Dense NMS: blocks searched first per detection kept (``_top_block_peaks``).
_PEAK_BLOCKS_PER_PEAK = 3
# Peak selection: up to this many peaks are ordered by one sort for all joints.
_SORT_ALL_PEAKS = 4096
# Above this many candidate pixels, NMS filters whole maps instead of testing the candidates.
_NMS_SPARSE_LIMIT = 200_000
# Dense refinement: strongest pixels per joint tried first; at most this many (pair, pixel)
# values evaluated per joint in its second stage.
REFINE_TOP_PIXELS = 512
_STAGE2_EVALUATIONS = 2_000_000
# Dense refinement: every this-many-th pixel estimates the heatmap value of the strongest pixels.
_FLOOR_STRIDE = 7


def joint_order(num_joints):
    """The release's matching order for ``num_joints`` joints (a permutation of them)."""
    order = [j for j in RELEASE_JOINT_ORDER if j < num_joints]
    return tuple(order + list(range(len(RELEASE_JOINT_ORDER), num_joints)))


@dataclass(frozen=True)
class GroupingParams:
    num_joints: int
    max_num_people: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    use_detection_val: bool = True
    ignore_too_much: bool = False
    nms_kernel: int = 5
    adjust: bool = True
    refine: bool = True

    def __post_init__(self):
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ConfigError(f"TEST.NMS_KERNEL must be a positive odd number, got {self.nms_kernel}")
        if self.max_num_people < 1:
            raise ConfigError(f"DATASET.MAX_NUM_PEOPLE must be positive, got {self.max_num_people}")
        if self.detection_threshold < 0:
            raise ConfigError(f"TEST.DETECTION_THRESHOLD must be >= 0, got {self.detection_threshold}")

    @classmethod
    def from_config(cls, cfg):
        test = cfg.TEST
        if test.NMS_PADDING != (test.NMS_KERNEL - 1) // 2:
            raise ConfigError(f"TEST.NMS_PADDING must be (TEST.NMS_KERNEL - 1) / 2 = {(test.NMS_KERNEL - 1) // 2} "
                              f"so that NMS keeps the map size, got {test.NMS_PADDING}")
        return cls(num_joints=cfg.DATASET.NUM_JOINTS, max_num_people=cfg.DATASET.MAX_NUM_PEOPLE,
                   detection_threshold=float(test.DETECTION_THRESHOLD), tag_threshold=float(test.TAG_THRESHOLD),
                   use_detection_val=bool(test.USE_DETECTION_VAL), ignore_too_much=bool(test.IGNORE_TOO_MUCH),
                   nms_kernel=int(test.NMS_KERNEL), adjust=bool(test.ADJUST), refine=bool(test.REFINE))


@dataclass(frozen=True)
class DecodeLimits:
    """Caps that bound grouping's cost (module doc). ``max_people``: people kept (by score)
    before refinement, None = all (the release). ``max_detections``: detections per joint that
    enter matching, at most ``max_num_people`` (None: ``max_num_people``, the release).
    ``fast_assignment``: matching takes SciPy's optimal assignment (``linear_sum_assignment``)
    instead of the release's Munkres tie for tie (False, the release): the same minimum cost,
    other people where several assignments share it."""
    max_people: int = None
    max_detections: int = None
    fast_assignment: bool = False

    def __post_init__(self):
        for name in ("max_people", "max_detections"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be positive or None, got {value}")


NO_LIMITS = DecodeLimits()


def _as_numpy(array):
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float32)


def group_keypoints(heatmaps, tags, params, limits=NO_LIMITS):
    """Group one image's detections into people.

    Args:
        heatmaps: ``[J, H, W]`` (tensor or array).
        tags: ``[J, H, W, D]`` tag vectors (``[1, H, W, D]`` when one tag map serves all
            joints); any strides: ``[D, J, H, W]`` storage permuted to this order costs no copy.
        params: ``GroupingParams``.
        limits: ``DecodeLimits`` (module doc); the default caps nothing: the release's people.

    Returns:
        ``(people, scores)``: ``[P, J, 3 + D]`` float32 rows ``x, y, score, tag...`` in map
        pixels (missing joints all zero) and ``[P]`` person scores, in the release's order.
    """
    maps = _Maps(heatmaps, tags, params.nms_kernel)
    if maps.num_joints != params.num_joints:
        raise ValueError(f"heatmaps have {maps.num_joints} joints, grouping expects {params.num_joints}")
    dense = _is_dense(maps, params.detection_threshold)
    per_joint = min(params.max_num_people, limits.max_detections or params.max_num_people)
    joints, ys, xs, vals = find_peaks(maps, params.detection_threshold, per_joint, dense)
    peak_tags = np.stack([plane[maps.tag_joint(joints), ys, xs] for plane in maps.tags], axis=1)
    people = match_peaks(joints, xs, ys, vals, peak_tags, params,
                         _linear_sum_assignment if limits.fast_assignment else munkres_assignment)
    if params.adjust:
        adjust_people(people, maps.det)
    scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, np.float32)
    if limits.max_people is not None and len(people) > limits.max_people:
        keep = np.sort(np.argsort(-scores, kind="stable")[:limits.max_people])
        people, scores = people[keep], scores[keep]
    if params.refine and len(people):
        refine_people(people, maps, fast=dense)
    return people, scores.astype(np.float32)


def _is_dense(maps, threshold):
    """Whether at least ``DENSE_FRACTION`` of the pixels pass ``threshold``."""
    if maps.tiled:
        # Blocks whose maximum passes bound the candidates from above, at a 64th of the cost.
        if (maps.det_block_max() > threshold).mean() < DENSE_FRACTION:
            return False
    return bool(np.count_nonzero(maps.det > threshold) >= DENSE_FRACTION * maps.det.size)


class _Maps:
    """One image's heatmaps ``det [J, H, W]`` and tag planes (one ``[J or 1, H, W]`` array per
    tag dimension), float32 and C-contiguous, with the per-block heatmap maxima computed once
    and shared by peak finding and refinement."""

    def __init__(self, heatmaps, tags, kernel):
        self.det = np.ascontiguousarray(_as_numpy(heatmaps))
        if hasattr(tags, "detach"):
            tags = tags.detach().cpu()
            planes = [tags[..., d].numpy() for d in range(tags.shape[-1])]
        else:
            tags = np.asarray(tags, dtype=np.float32)
            planes = [tags[..., d] for d in range(tags.shape[-1])]
        self.tags = [np.ascontiguousarray(plane, dtype=np.float32) for plane in planes]
        self.num_joints, self.height, self.width = self.det.shape
        shape = self.tags[0].shape if self.tags else None
        if not self.tags or shape[0] not in (1, self.num_joints) or shape[1:] != self.det.shape[1:]:
            raise ValueError(f"tags {shape} x {len(self.tags)} do not match heatmaps {self.det.shape}")
        self.kernel = kernel
        # Maps of the pipeline are multiples of 64 pixels; other sizes take the padded path.
        self.tiled = self.height % _BLOCK == 0 and self.width % _BLOCK == 0
        self._det_max = None

    def tag_joint(self, joints):
        """Index into the tag planes for these joints (one shared map: always 0)."""
        return joints if self.tags[0].shape[0] > 1 else np.zeros_like(joints)

    def det_block_max(self):
        """``[J, blocks]`` heatmap maximum of every ``_BLOCK`` x ``_BLOCK`` block (tiled maps)."""
        if self._det_max is None:
            self._det_max = _block_reduce(self.det, np.maximum)
        return self._det_max

    def block_pixels(self, joints, blocks):
        """Flat indices into ``det`` of the pixels of these (joint, block) pairs: ``[n, B*B]``."""
        cols = self.width // _BLOCK
        offsets = (np.arange(_BLOCK)[:, None] * self.width + np.arange(_BLOCK)[None, :]).ravel()
        origin = (blocks // cols) * _BLOCK * self.width + (blocks % cols) * _BLOCK
        return (joints * self.height * self.width + origin)[:, None] + offsets[None, :]


def _candidates(maps, threshold):
    """Flat indices of the pixels above ``threshold``, in raster order."""
    if not maps.tiled:
        return np.flatnonzero(maps.det > threshold)
    # Only blocks whose maximum passes can hold candidates: no full-map pass on sparse maps.
    active = np.flatnonzero(maps.det_block_max().ravel() > threshold)
    blocks_per_joint = maps.det_block_max().shape[1]
    pixels = maps.block_pixels(active // blocks_per_joint, active % blocks_per_joint).ravel()
    return np.sort(pixels[maps.det.ravel()[pixels] > threshold])


def _local_maxima(flat_det, pixels, height, width, kernel):
    """Whether each of ``pixels`` (flat indices) equals the maximum of its ``kernel`` window.
    Neighbours are compared nearest first and a pixel drops out at its first larger neighbour,
    so most pixels cost a few reads. Near the border, clipping repeats edge pixels, which leaves
    the maximum as -inf padding would."""
    plane_size = height * width
    base = pixels - pixels % plane_size
    ys, xs = (pixels % plane_size) // width, pixels % width
    values = flat_det[pixels]
    half = kernel // 2
    offsets = sorted(((dy, dx) for dy in range(-half, half + 1) for dx in range(-half, half + 1) if dy or dx),
                     key=lambda o: (max(abs(o[0]), abs(o[1])), abs(o[0]) + abs(o[1])))
    is_max = np.zeros(pixels.size, bool)
    inside = (ys >= half) & (ys < height - half) & (xs >= half) & (xs < width - half)
    # Pixels whose window lies inside the map: a neighbour is a fixed step away in flat indices.
    alive = np.flatnonzero(inside)
    for dy, dx in offsets:
        if alive.size == 0:
            break
        alive = alive[values[alive] >= flat_det[pixels[alive] + (dy * width + dx)]]
    is_max[alive] = True
    alive = np.flatnonzero(~inside)
    for dy, dx in offsets:
        if alive.size == 0:
            break
        rows = np.clip(ys[alive] + dy, 0, height - 1)
        cols = np.clip(xs[alive] + dx, 0, width - 1)
        alive = alive[values[alive] >= flat_det[base[alive] + rows * width + cols]]
    is_max[alive] = True
    return is_max


def find_peaks(maps, threshold, max_per_joint, dense=False):
    """NMS peaks above ``threshold``: ``(joint, y, x, value)`` arrays, per joint strongest
    first (at most ``max_per_joint``), joints in index order; ties keep raster order.
    ``dense``: filter whole maps (also taken above ``_NMS_SPARSE_LIMIT`` candidates) instead of
    testing the candidates; the same peaks either way."""
    if not dense:
        above = _candidates(maps, threshold)
        dense = above.size > _NMS_SPARSE_LIMIT
    if dense:
        peaks = _top_block_peaks(maps, threshold, max_per_joint) if maps.tiled else None
        if peaks is None:
            peaks = _whole_map_peaks(maps, threshold)
    else:
        peaks = above[_local_maxima(maps.det.ravel(), above, maps.height, maps.width, maps.kernel)]
    return _strongest(maps, peaks, max_per_joint)


def _top_block_peaks(maps, threshold, max_per_joint):
    """The peaks ``_strongest`` keeps, from the strongest blocks only (dense maps), or None
    where that cannot decide. Per joint, the pixels reaching the ``_PEAK_BLOCKS_PER_PEAK *
    max_per_joint``-th largest block maximum (``floor``) all lie in the blocks whose maximum
    reaches it; they are tested as NMS candidates. A joint is decided when ``max_per_joint`` of
    them are peaks (every other peak is below ``floor``, so below each of them) or when
    ``floor`` is at most ``threshold`` (then they are all the pixels above it)."""
    det_max = maps.det_block_max()
    blocks = det_max.shape[1]
    count = _PEAK_BLOCKS_PER_PEAK * max_per_joint
    if 2 * count > blocks:
        return None
    floor = np.partition(det_max, blocks - count, axis=1)[:, blocks - count]
    joints, ids = np.nonzero(det_max >= floor[:, None])
    pixels = maps.block_pixels(joints, ids)
    values = maps.det.ravel()[pixels]
    candidates = np.sort(pixels[(values >= floor[joints, None]) & (values > threshold)])
    peaks = candidates[_local_maxima(maps.det.ravel(), candidates, maps.height, maps.width, maps.kernel)]
    found = np.bincount(peaks // (maps.height * maps.width), minlength=maps.num_joints)
    return peaks if np.all((found >= max_per_joint) | (floor <= threshold)) else None


def _whole_map_peaks(maps, threshold):
    """Flat indices (raster order) of the pixels above ``threshold`` that equal the maximum of
    their NMS window, by one ``cv2.dilate`` of all joints stacked into one tall image with
    -inf rows between them (OpenCV's default border ignores outside pixels, as max-pooling's
    -inf padding does)."""
    det = maps.det
    joints, height, width = det.shape
    half = maps.kernel // 2
    stacked = np.full((joints, height + half, width), -np.inf, np.float32)
    stacked[:, :height] = det
    dilated = cv2.dilate(stacked.reshape(joints * (height + half), width), np.ones((maps.kernel,) * 2, np.uint8))
    dilated = dilated.reshape(joints, height + half, width)[:, :height]
    return np.flatnonzero((det > threshold) & (det >= dilated))


def _strongest(maps, peaks, max_per_joint):
    """``(joint, y, x, value)`` of the ``max_per_joint`` strongest of ``peaks`` (flat indices in
    raster order) per joint, strongest first, ties in raster order."""
    plane_size = maps.height * maps.width
    values = maps.det.ravel()[peaks]
    if peaks.size <= _SORT_ALL_PEAKS:  # few peaks (dense maps' strongest blocks): one sort for all joints
        # By joint, then strongest first, then raster order (``peaks`` is in raster order).
        order = np.lexsort((-values, peaks // plane_size))
        joints = peaks[order] // plane_size
        first = np.searchsorted(joints, joints)
        picked = order[np.arange(order.size) - first < max_per_joint]
        return _peak_rows(maps, peaks[picked], values[picked])
    bounds = np.searchsorted(peaks, np.arange(maps.num_joints + 1) * plane_size)
    picked = []
    for joint in range(maps.num_joints):
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
        picked.append(lo + candidates[np.argsort(-local[candidates], kind="stable")][:max_per_joint])
    picked = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return _peak_rows(maps, peaks[picked], values[picked])


def _peak_rows(maps, peaks, values):
    plane_size = maps.height * maps.width
    joints = peaks // plane_size
    within = peaks - joints * plane_size
    return joints, within // maps.width, within % maps.width, values


def _linear_sum_assignment(cost):
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)


def match_peaks(joints, xs, ys, vals, peak_tags, params, solver=munkres_assignment):
    """Joint-by-joint tag matching (step 2): ``[P, J, 3 + D]`` float32 people. ``solver(cost)
    -> (rows, cols)``: an optimal assignment, by default the release's tie for tie."""
    num_joints = params.num_joints
    tag_dim = peak_tags.shape[1]
    rows = np.concatenate([xs[:, None], ys[:, None], vals[:, None], peak_tags], axis=1).astype(np.float64)
    capacity = max(len(rows), 1)
    people = np.zeros((capacity, num_joints, 3 + tag_dim), np.float64)
    tag_sum = np.zeros((capacity, tag_dim), np.float64)
    tag_count = np.zeros(capacity, np.float64)
    keys = {}  # first tag value of the detection that started a person -> person index
    count = 0
    bounds = np.searchsorted(joints, np.arange(num_joints + 1))
    for joint in joint_order(num_joints):
        block = rows[bounds[joint]:bounds[joint + 1]]
        if len(block) == 0:
            continue
        tags = block[:, 3:]
        assigned = np.full(len(block), -1)
        if count:
            grouped = min(count, params.max_num_people)
            if params.ignore_too_much and grouped == params.max_num_people:
                continue
            means = tag_sum[:grouped] / tag_count[:grouped, None]
            distance = np.linalg.norm(tags[:, None, :] - means[None, :, :], axis=2)
            cost = np.round(distance) * 100 - block[:, 2:3] if params.use_detection_val else distance.copy()
            if len(block) > grouped:
                # Square, as the release pads it. Otherwise (fewer detections than people) the
                # solver pads zero rows as the release's does, and every detection is assigned.
                cost = np.hstack([cost, np.full((len(block), len(block) - grouped), _NEW_PERSON_COST)])
            row_ind, col_ind = solver(cost)
            ok = col_ind < grouped
            ok[ok] = distance[row_ind[ok], col_ind[ok]] < params.tag_threshold
            assigned[row_ind[ok]] = col_ind[ok]
        new_keys = [float(value) for value in np.float32(tags[assigned < 0, 0])]
        if any(key in keys for key in new_keys) or len(set(new_keys)) != len(new_keys):
            count = _apply_in_order(block, assigned, joint, people, tag_sum, tag_count, keys, count)
            continue
        matched = assigned >= 0
        people[assigned[matched], joint] = block[matched]
        tag_sum[assigned[matched]] += tags[matched]
        tag_count[assigned[matched]] += 1
        fresh = np.flatnonzero(~matched)
        new = np.arange(count, count + fresh.size)
        people[new, joint] = block[fresh]
        tag_sum[new] = tags[fresh]
        tag_count[new] = 1
        keys.update(zip(new_keys, new.tolist()))
        count += fresh.size
    return people[:count].astype(np.float32)


def _apply_in_order(block, assigned, joint, people, tag_sum, tag_count, keys, count):
    """The release's dictionary updates, row by row, for the rare joint where a new
    person's key already exists (identical tag values): that detection replaces the joint
    of the person with that key and restarts its tag list."""
    for row, person in enumerate(assigned):
        if person >= 0:
            tag_sum[person] += block[row, 3:]
            tag_count[person] += 1
        else:
            key = float(np.float32(block[row, 3]))
            person = keys.get(key)
            if person is None:
                person = keys[key] = count
                count += 1
            tag_sum[person] = block[row, 3:]
            tag_count[person] = 1
        people[person, joint] = block[row]
    return count


def _quarter_shift(det, joints, ys, xs):
    """The release's quarter-pixel step toward the higher neighbour, per axis."""
    _, height, width = det.shape
    right = det[joints, ys, np.minimum(xs + 1, width - 1)]
    left = det[joints, ys, np.maximum(xs - 1, 0)]
    down = det[joints, np.minimum(ys + 1, height - 1), xs]
    up = det[joints, np.maximum(ys - 1, 0), xs]
    return np.where(right > left, 0.25, -0.25), np.where(down > up, 0.25, -0.25)


def adjust_people(people, det):
    """Step 3 in place: detected joints move to the pixel centre plus a quarter pixel."""
    person_idx, joint_idx = np.nonzero(people[:, :, 2] > 0)
    xs = people[person_idx, joint_idx, 0].astype(np.int64)
    ys = people[person_idx, joint_idx, 1].astype(np.int64)
    dx, dy = _quarter_shift(det, joint_idx, ys, xs)
    people[person_idx, joint_idx, 0] = xs + dx + 0.5
    people[person_idx, joint_idx, 1] = ys + dy + 0.5


def missing_joints(people):
    """``(person_idx, joint_idx, mean_tags)``: the joints refinement fills (missing joints of
    people with at least one), and their person's mean tag over its detected joints, in float32
    like the release's torch mean (the release reads the tag map at the truncated adjusted
    position: the peak, whose tags the row holds)."""
    detected = people[:, :, 2] > 0
    person_idx, joint_idx = np.nonzero(~detected & detected.any(axis=1)[:, None])
    mean_tags = (people[:, :, 3:] * detected[:, :, None]).sum(axis=1) / detected.sum(axis=1).clip(1)[:, None]
    return person_idx, joint_idx, mean_tags.astype(np.float32)[person_idx]


def refine_people(people, maps, fast=False, top_pixels=REFINE_TOP_PIXELS):
    """Step 5 in place: fill missing joints from each person's mean tag. ``fast`` (dense maps):
    each joint's ``top_pixels`` strongest pixels first (``_refine_top_pixels``), otherwise the
    block search (``_refine_argmax``); the same joints either way."""
    person_idx, joint_idx, mean_tags = missing_joints(people)
    if person_idx.size == 0:
        return
    if fast:
        best_flat, best_det = _refine_top_pixels(maps, joint_idx, mean_tags, top_pixels)
    else:
        best_flat, best_det = _refine_argmax(maps, joint_idx, mean_tags)
    ys, xs = best_flat // maps.width, best_flat % maps.width
    dx, dy = _quarter_shift(maps.det, joint_idx, ys, xs)
    fill = best_det > 0
    people[person_idx[fill], joint_idx[fill], 0] = (xs + 0.5 + dx)[fill]
    people[person_idx[fill], joint_idx[fill], 1] = (ys + 0.5 + dy)[fill]
    people[person_idx[fill], joint_idx[fill], 2] = best_det[fill]


def _refine_top_pixels(maps, joint_idx, mean_tags, top_pixels):
    """``_refine_argmax``'s answer, faster on dense maps. Each pair (joint, mean tag) first
    evaluates its joint's strongest pixels: all those whose heatmap reaches a ``floor`` (about
    the ``top_pixels``-th largest value, estimated from every ``_FLOOR_STRIDE``-th pixel). When
    the best value found there reaches the floor, no other pixel can reach it (their heatmap is
    below the floor and ``round(distance) >= 0``) and the answer is exact, whichever floor was
    taken. Otherwise that best value still bounds the answer from below, and only pixels whose
    heatmap reaches it can hold the answer: they are evaluated next. Pairs with too many such
    pixels (sparse maps, where the best value is weak) take the block search."""
    det = maps.det
    best_flat = np.zeros(joint_idx.size, np.int64)
    unresolved = np.zeros(joint_idx.size, bool)
    plane_size = maps.height * maps.width
    count = min(int(top_pixels), plane_size)
    joints = np.unique(joint_idx)
    whole = count == plane_size  # small maps: every pixel at once
    floors = np.zeros(joints.size, np.float32) if whole else _top_floors(det, joints, count)
    for joint, floor in zip(joints, floors):
        pairs = np.flatnonzero(joint_idx == joint)
        plane = det[joint].ravel()
        # Stage 1: the strongest pixels, in raster order (the first maximum is the lowest index).
        top = np.arange(plane_size) if whole else np.flatnonzero(plane >= floor)
        if not whole and (top.size == 0 or top.size > 4 * count):  # NaN, wide plateaus: the count strongest
            top = np.sort(np.argpartition(plane, plane_size - count)[plane_size - count:])
            floor = np.nextafter(plane[top].min(), np.float32(np.inf))
        value, best = _best_pixels(maps, joint, top, mean_tags[pairs])
        exact = np.ones(pairs.size, bool) if whole else value >= floor
        best_flat[pairs] = top[best]
        if exact.all():
            continue
        # Stage 2: a pixel can only reach a pair's best value if its heatmap does, so the pixels
        # whose heatmap reaches the lowest such value of the pairs left hold each one's answer.
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
        best_flat[rest], best_det[rest] = _refine_argmax(maps, joint_idx[rest], mean_tags[rest])
    return best_flat, best_det


def _top_floors(det, joints, count):
    """Per joint of ``joints``: about the ``count``-th largest heatmap value (the
    ``count / _FLOOR_STRIDE``-th largest of every ``_FLOOR_STRIDE``-th pixel), at once."""
    sample = det.reshape(det.shape[0], -1)[joints, ::_FLOOR_STRIDE]
    rank = sample.shape[1] - max(1, min(sample.shape[1], count // _FLOOR_STRIDE))
    return np.partition(sample, rank, axis=1)[:, rank]


def _best_pixels(maps, joint, pixels, mean_tags):
    """For each mean tag ``[n, D]``: the best ``heatmap - round(|tag - mean|)`` over ``pixels``
    (flat indices in raster order, of ``joint``) and the position in ``pixels`` of its first
    maximum, in the release's float32 arithmetic (``_tag_distance``)."""
    det_values = maps.det[joint].ravel()[pixels]
    tag_plane = maps.tag_joint(np.array([joint]))[0]
    tag_values = [t[tag_plane].ravel()[pixels] for t in maps.tags]
    values = np.empty((len(mean_tags), pixels.size), np.float32)
    step = max(1, _STAGE2_EVALUATIONS // 8 // max(1, pixels.size))
    for start in range(0, len(mean_tags), step):
        rows = slice(start, start + step)
        distance = _tag_distance(tag_values, [mean_tags[rows, d, None] for d in range(len(maps.tags))])
        np.subtract(det_values[None, :], distance, out=values[rows])
    best = np.argmax(values, axis=1)
    return values[np.arange(len(mean_tags)), best], best


def _tag_distance(tag_values, mean_tags):
    """``round(|tag - mean|)`` in float32, dimension by dimension in a fixed order (the block
    bounds use the same arithmetic, which is what makes them exact bounds); a new array of the
    broadcast shape of ``tag_values`` and ``mean_tags``."""
    square = None
    for values, mean in zip(tag_values, mean_tags):
        diff = values - mean
        np.multiply(diff, diff, out=diff)
        if square is None:
            square = diff.astype(np.float32, copy=False)
        else:
            square += diff
    np.sqrt(square, out=square)
    return np.round(square, out=square)


class _Blocks:
    """The maps cut into ``_BLOCK`` x ``_BLOCK`` blocks (padded when the size is not a
    multiple: padded pixels have heatmap -inf, so they never win), with per-block heatmap
    maxima and tag ranges of the joints that need them."""

    def __init__(self, maps, joints):
        size = _BLOCK
        self.maps = maps
        tag_index = maps.tag_joint(joints)
        if maps.tiled:
            self.det, self.tags = maps.det, maps.tags
            self.det_max = maps.det_block_max()[joints]
        else:
            pad_h, pad_w = -maps.height % size, -maps.width % size
            self.det = np.pad(maps.det, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=-np.inf)
            self.tags = [np.pad(p, ((0, 0), (0, pad_h), (0, pad_w)), mode="edge") for p in maps.tags]
            self.det_max = _block_reduce(self.det, np.maximum)[joints]
        self.height, self.width = self.det.shape[1:]
        self.rows, self.cols = self.height // size, self.width // size
        # First raster index of every block (ties between blocks resolve by it).
        self.first_flat = ((np.arange(self.rows)[:, None] * size * self.width)
                           + np.arange(self.cols)[None, :] * size).ravel()
        # Joint by joint, both reductions of a plane while it is in cache.
        planes, row_of = np.unique(tag_index, return_inverse=True)
        lows = [np.empty((len(planes), self.rows * self.cols), np.float32) for _ in self.tags]
        highs = [np.empty((len(planes), self.rows * self.cols), np.float32) for _ in self.tags]
        for row, joint in enumerate(planes):
            for plane, lo, hi in zip(self.tags, lows, highs):
                lo[row] = _block_reduce(plane[joint][None], np.minimum)[0]
                hi[row] = _block_reduce(plane[joint][None], np.maximum)[0]
        self.tag_lo = [lo[row_of] for lo in lows]
        self.tag_hi = [hi[row_of] for hi in highs]


def _block_reduce(planes, op):
    """``[J, H, W]`` -> ``[J, H / B * W / B]`` block-wise ``op`` (H, W multiples of B)."""
    joints, height, width = planes.shape
    rows = op.reduce(planes.reshape(joints * height // _BLOCK, _BLOCK, width), axis=1)
    # Across columns: B strided slices reduced at once (a short last axis reduces slowly).
    return op.reduce([rows[:, i::_BLOCK] for i in range(_BLOCK)]).reshape(joints, -1)


def _refine_argmax(maps, joint_idx, mean_tags):
    """For pairs (joint j, mean tag t): the first raster-order pixel maximising
    ``det[j] - round(|tag[j] - t|)``, and ``det[j]`` there. Exact, block-pruned."""
    needed, pair_row = np.unique(joint_idx, return_inverse=True)
    blocks = _Blocks(maps, needed)
    # Upper bound of every block for every pair: [pairs, blocks].
    square = np.zeros((len(joint_idx), blocks.rows * blocks.cols), np.float32)
    for lo, hi, d in zip(blocks.tag_lo, blocks.tag_hi, range(len(blocks.tags))):
        mean = mean_tags[:, d, None]
        excess = np.maximum(np.maximum(lo[pair_row] - mean, mean - hi[pair_row]), 0)
        square += excess * excess
    bound = blocks.det_max[pair_row] - np.round(np.sqrt(square))

    # A first value per pair from its most promising block; then only blocks whose bound
    # beats it, or ties it and starts earlier in raster order, can hold the first maximum.
    pairs = np.arange(len(joint_idx))
    first = np.argmax(bound, axis=1)
    best_val, best_flat, best_det = _evaluate_blocks(blocks, joint_idx, mean_tags, pairs, first)
    pair_sel, block_sel = np.nonzero((bound > best_val[:, None]) | (
        (bound == best_val[:, None]) & (blocks.first_flat[None, :] < best_flat[:, None])))
    for start in range(0, pair_sel.size, _BLOCKS_PER_CHUNK):
        chunk = slice(start, start + _BLOCKS_PER_CHUNK)
        sel = pair_sel[chunk]
        value, flat, det_value = _evaluate_blocks(blocks, joint_idx, mean_tags, sel, block_sel[chunk])
        # Per pair: highest value, then lowest raster index.
        order = np.lexsort((flat, -value, sel))
        sel, value, flat, det_value = sel[order], value[order], flat[order], det_value[order]
        head = np.ones(sel.size, bool)
        head[1:] = sel[1:] != sel[:-1]
        sel, value, flat, det_value = sel[head], value[head], flat[head], det_value[head]
        better = (value > best_val[sel]) | ((value == best_val[sel]) & (flat < best_flat[sel]))
        sel = sel[better]
        best_val[sel], best_flat[sel], best_det[sel] = value[better], flat[better], det_value[better]
    # Back from padded raster indices to the map's own.
    return (best_flat // blocks.width) * maps.width + best_flat % blocks.width, best_det


def _evaluate_blocks(blocks, joint_idx, mean_tags, pairs, block_ids):
    """Exact ``det - round(distance)`` over whole blocks: per (pair, block), the best value,
    its first raster index in the padded map and the heatmap value there."""
    size, width = _BLOCK, blocks.width
    offsets = (np.arange(size)[:, None] * width + np.arange(size)[None, :]).ravel()
    flat = blocks.first_flat[block_ids][:, None] + offsets[None, :]
    plane_size = blocks.height * width
    joints = joint_idx[pairs, None]
    det_values = blocks.det.reshape(-1)[joints * plane_size + flat]
    tag_base = blocks.maps.tag_joint(joints) * plane_size
    tag_values = [p.reshape(-1)[tag_base + flat] for p in blocks.tags]
    value = det_values - _tag_distance(tag_values, [mean_tags[pairs, d, None] for d in range(len(blocks.tags))])
    best = np.argmax(value, axis=1)  # first maximum = lowest raster index inside a block
    pick = np.arange(len(pairs))
    return value[pick, best], flat[pick, best], det_values[pick, best]
