"""Identities across frames: ``PoseTracker`` gives every person a ``track_id`` that stays with
them, in the spirit of rtmlib's ``PoseTracker`` (no PyTorch; NumPy and SciPy).

    from litepose.tracking import PoseTracker
    tracker = PoseTracker(dataset="coco", max_lost=30, smoothing=True, fps=30)
    for frame in frames:
        people = tracker(estimator(frame))      # people.track_ids [P]; keypoints smoothed

Each frame, the people are matched to the tracks seen in the previous frame, then the people
left to the lost tracks, each time by an optimal assignment
(``scipy.optimize.linear_sum_assignment``) on their similarity to each track's predicted pose:

- ``association="oks"`` (default): object keypoint similarity (the COCO metric's, with the
  dataset's sigmas and the track's box area) over the joints both have;
- ``association="box"``: intersection over union of the boxes around the visible joints.

A track's predicted pose is its last pose moved by its velocity (a running average of its
displacement per frame, damped while it is lost), which keeps identities apart when people
cross; the longer a track is lost, the more OKS tolerates (``lost_growth``). Pairs below ``min_similarity`` stay unmatched. A track that finds no person is *lost*;
it is kept for ``max_lost`` frames (the lost-track memory) and can be matched again in that
time, after which it is dropped. People not matched start new tracks if their score reaches
``min_score`` (otherwise their ``track_id`` is -1). Ids count up from 0 and are never reused.

``smoothing=True`` filters each track's joints with a One-Euro filter (Casiez et al., CHI 2012:
a low-pass filter whose cut-off rises with speed: little jitter at rest, little lag in motion;
``min_cutoff`` Hz and ``beta``). The association always uses the raw poses.

``python -m benchmarks.track_eval`` measures identity switches and fragmentations on generated crossing
people with noise and dropouts.
"""

import dataclasses
import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from .errors import ArgumentError, LitePoseError
from .runtime.people import boxes_around, oks_matrix
from .utils.args import check_choice, check_number

ASSOCIATIONS = ("oks", "box")
MAX_LOST = 100_000  # frames a lost track may be remembered (an hour at 30 fps)
MAX_PEOPLE = 1000   # people per frame given to update (the assignment is cubic in them)


class OneEuroFilter:
    """One-Euro filter over an array of values (any shape), sampled at ``freq`` Hz."""

    def __init__(self, freq, min_cutoff=1.0, beta=0.05, d_cutoff=1.0):
        if freq <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One-Euro filter: freq, min_cutoff and d_cutoff must be positive, beta >= 0")
        self.freq, self.min_cutoff, self.beta, self.d_cutoff = float(freq), float(min_cutoff), float(beta), \
            float(d_cutoff)
        self.value = None
        self.derivative = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.freq)

    def reset(self, value=None):
        self.value = None if value is None else np.array(value, np.float64)
        self.derivative = None if value is None else np.zeros_like(self.value)

    def __call__(self, value, steps=1):
        """Filter ``value``; ``steps`` frames have passed since the last call (a lost track's gap)."""
        value = np.asarray(value, np.float64)
        if self.value is None:
            self.reset(value)
            return self.value.copy()
        freq = self.freq / max(1, steps)
        derivative = (value - self.value) * freq
        a_d = 1.0 / (1.0 + freq / (2 * math.pi * self.d_cutoff))
        self.derivative = a_d * derivative + (1 - a_d) * self.derivative
        cutoff = self.min_cutoff + self.beta * np.abs(self.derivative)
        alpha = 1.0 / (1.0 + freq / (2 * math.pi * cutoff))
        self.value = alpha * value + (1 - alpha) * self.value
        return self.value.copy()


@dataclasses.dataclass
class Track:
    """One identity: its last raw pose ``[J, 3]``, velocity of its joints (pixels per frame),
    frames since it was last seen (``lost``), number of frames it was seen (``hits``)."""
    track_id: int
    keypoints: np.ndarray
    velocity: np.ndarray
    lost: int = 0
    hits: int = 1
    smoother: OneEuroFilter = None
    gap: int = 1  # frames between its last two sightings

    def predicted(self, damping=0.95):
        """The pose expected now: the last one moved by the (damped) velocity over the frames
        since it was seen."""
        steps = self.lost + 1
        factor = sum(damping ** k for k in range(steps))
        pose = self.keypoints.copy()
        pose[:, :2] += self.velocity * factor
        return pose


def iou_matrix(tracks, people, visible_tracks, visible_people):
    """Intersection over union of the visible-joint boxes: ``[T, P]``."""
    a, b = boxes_around(tracks, visible_tracks), boxes_around(people, visible_people)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


class PoseTracker:
    """Stable identities across frames (module doc).

    Args:
        sigmas: OKS sigmas per joint, or ``dataset`` ("coco", "crowdpose") to take them from
            ``litepose.data.keypoints``.
        max_lost: frames a track that found no person is remembered (0: forgotten at once).
        min_similarity: least OKS (or IoU) for a person to continue a track.
        min_score: least person score to start a track.
        min_joint_score: joints scoring below are invisible to the association.
        association: "oks" or "box".
        use_velocity: predict each track's pose by its velocity (off: its last pose); while a
            track is lost its velocity decays by ``damping`` per frame.
        lost_growth: the OKS area of a track lost for n frames grows by (1 + lost_growth n)^2
            (its predicted position is less certain).
        smoothing, fps, min_cutoff, beta: One-Euro smoothing of the returned joints.
    """

    def __init__(self, dataset="coco", sigmas=None, max_lost=30, min_similarity=0.3, min_score=0.1,
                 min_joint_score=0.05, association="oks", use_velocity=True, velocity_momentum=0.5,
                 lost_growth=0.1, damping=0.95, smoothing=False, fps=30.0, min_cutoff=1.0, beta=0.05):
        # Every argument is checked here: a wrong one is an ArgumentError naming it, not a
        # failure frames later.
        if sigmas is None:
            from .data.keypoints import get_keypoint_info

            try:
                sigmas = get_keypoint_info(dataset).sigmas
            except (LitePoseError, KeyError, ValueError, TypeError, AttributeError):
                raise ArgumentError(f"unknown dataset {dataset!r} for PoseTracker (known: coco, crowdpose), "
                                    "or give sigmas=") from None
        try:
            self.sigmas = np.asarray(sigmas, np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ArgumentError(f"sigmas must be numbers, one per joint, got {sigmas!r}") from None
        if not self.sigmas.size or not np.all(np.isfinite(self.sigmas)) or np.any(self.sigmas <= 0):
            raise ArgumentError(f"sigmas must be positive finite numbers, one per joint, got {sigmas!r}")
        self.association = check_choice("association", association, ASSOCIATIONS)
        self.max_lost = check_number("max_lost", max_lost, 0, MAX_LOST, integer=True)
        self.min_similarity = check_number("min_similarity", min_similarity, 0, 1)
        self.min_score = check_number("min_score", min_score, 0)
        self.min_joint_score = check_number("min_joint_score", min_joint_score, 0)
        self.use_velocity = bool(use_velocity)
        self.velocity_momentum = check_number("velocity_momentum", velocity_momentum, 0, 1)
        self.lost_growth = check_number("lost_growth", lost_growth, 0)
        self.damping = check_number("damping", damping, 0, 1)
        self.smoothing = bool(smoothing)
        self.fps = check_number("fps", fps, above=0, high=10_000)
        self.min_cutoff = check_number("min_cutoff", min_cutoff, above=0)
        self.beta = check_number("beta", beta, 0)
        self.tracks = []
        self.next_id = 0
        self.frame_index = -1

    def reset(self):
        self.tracks, self.next_id, self.frame_index = [], 0, -1

    def similarity(self, poses, keypoints, lost=None):
        """``[T, P]`` similarity between track poses and people (the chosen association);
        ``lost [T]``: frames since each track was seen (its prediction's uncertainty)."""
        visible_tracks = poses[:, :, 2] > self.min_joint_score
        visible_people = keypoints[:, :, 2] > self.min_joint_score
        if self.association == "box":
            return iou_matrix(poses, keypoints, visible_tracks, visible_people)
        scale = None if lost is None else (1.0 + self.lost_growth * np.asarray(lost, np.float64)) ** 2
        return oks_matrix(poses, keypoints, visible_tracks, visible_people, self.sigmas, scale)

    def update(self, keypoints, scores=None):
        """Track one frame's people (``keypoints [P, J, 3]``, ``scores [P]``): returns
        ``(track_ids [P] int, keypoints [P, J, 3])``, smoothed when ``smoothing``; -1 for people
        that neither continue a track nor reach ``min_score``."""
        keypoints, scores = self._checked(keypoints, scores)
        self.frame_index += 1
        ids = np.full(len(keypoints), -1, np.int64)
        out = keypoints.copy()
        matched_tracks = set()
        if self.tracks and len(keypoints):
            # Tracks seen in the last frame first, then lost ones for the people left (a lost
            # track's wider tolerance must not take a person from a track that is still seen).
            for stage in (0, 1):
                rows = [i for i, t in enumerate(self.tracks) if (t.lost == 0) == (stage == 0)]
                cols = np.flatnonzero(ids < 0)
                if not rows or not cols.size:
                    continue
                tracks = [self.tracks[i] for i in rows]
                predicted = np.stack([t.predicted(self.damping) if self.use_velocity else t.keypoints
                                      for t in tracks])
                similarity = self.similarity(predicted, keypoints[cols], [t.lost for t in tracks])
                for r, c in zip(*linear_sum_assignment(-similarity)):
                    if similarity[r, c] >= self.min_similarity:
                        track, person = tracks[r], cols[c]
                        self._continue(track, keypoints[person])
                        ids[person] = track.track_id
                        out[person] = self._smooth(track, keypoints[person])
                        matched_tracks.add(rows[r])
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.lost += 1
        self.tracks = [t for t in self.tracks if t.lost <= self.max_lost]
        for c in np.flatnonzero(ids < 0):
            if scores[c] >= self.min_score:
                track = Track(self.next_id, keypoints[c].copy(), np.zeros((keypoints.shape[1], 2)))
                self.next_id += 1
                self.tracks.append(track)
                ids[c] = track.track_id
                out[c] = self._smooth(track, keypoints[c])
        return ids, out

    def _checked(self, keypoints, scores):
        """``keypoints [P, J, 3]`` and ``scores [P]`` as float arrays, or ``ArgumentError``: a
        ``[J, 3]`` array is not read as J people, and J must be the tracker's joints."""
        joints = len(self.sigmas)
        if keypoints is None:
            raise ArgumentError(f"update() needs keypoints [P, {joints}, 3] (people, joints, x/y/score), got None")
        try:
            array = np.asarray(keypoints, np.float64)
        except (TypeError, ValueError):
            raise ArgumentError(f"keypoints must be a numeric array [P, {joints}, 3], got {type(keypoints).__name__}") \
                from None
        if array.size == 0 and array.ndim <= 1:
            array = np.zeros((0, joints, 3))
        if array.ndim != 3 or array.shape[2] != 3:
            hint = " (one person is keypoints[None])" if array.shape == (joints, 3) else ""
            raise ArgumentError(f"keypoints must be [P, {joints}, 3] (people, joints, x/y/score), got shape "
                                f"{tuple(array.shape)}{hint}")
        if array.shape[1] != joints:
            raise ArgumentError(f"people of {array.shape[1]} joints given to a tracker of {joints} joints "
                                "(its dataset or sigmas)")
        if len(array) > MAX_PEOPLE:
            raise ArgumentError(f"{len(array)} people in one frame: more than the {MAX_PEOPLE} a tracker takes")
        if not np.all(np.isfinite(array)):
            raise ArgumentError("keypoints hold NaN or infinite values")
        if scores is None:
            return array, np.ones(len(array))
        try:
            scores = np.asarray(scores, np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ArgumentError(f"scores must be numbers, one per person, got {type(scores).__name__}") from None
        if len(scores) != len(array):
            raise ArgumentError(f"{len(scores)} scores for {len(array)} people")
        if not np.all(np.isfinite(scores)):
            raise ArgumentError("scores hold NaN or infinite values")
        return array, scores

    def __call__(self, people):
        """Track a ``litepose.estimator.People``: a copy with ``track_ids`` (and smoothed
        keypoints when ``smoothing``)."""
        ids, keypoints = self.update(people.keypoints, people.scores)
        return dataclasses.replace(people, keypoints=keypoints, track_ids=ids)

    def _continue(self, track, pose):
        steps = track.lost + 1
        seen = (pose[:, 2] > self.min_joint_score) & (track.keypoints[:, 2] > self.min_joint_score)
        if seen.any():
            shift = (pose[seen, :2] - track.keypoints[seen, :2]).mean(axis=0) / steps
            # One velocity for the whole person (joints jitter; people move as one).
            m = self.velocity_momentum if track.hits > 1 else 0.0
            track.velocity = m * track.velocity + (1 - m) * np.broadcast_to(shift, track.velocity.shape)
        # Joints not seen now keep their last position (moved along), so the association still
        # sees them.
        merged = pose.copy()
        unseen = pose[:, 2] <= self.min_joint_score
        merged[unseen] = track.keypoints[unseen]
        merged[unseen, :2] += track.velocity[unseen] * steps
        merged[unseen, 2] = np.minimum(track.keypoints[unseen, 2], self.min_joint_score + 1e-6)
        track.keypoints = merged
        track.hits += 1
        track.gap = steps
        track.lost = 0

    def _smooth(self, track, pose):
        """The returned pose: the raw one, or with smoothing its visible joints filtered (the
        filter runs on the track's pose, whose unseen joints hold their last position)."""
        if not self.smoothing:
            return pose.copy()
        if track.smoother is None:
            track.smoother = OneEuroFilter(self.fps, self.min_cutoff, self.beta)
        filtered = track.smoother(track.keypoints[:, :2], steps=track.gap)
        out = pose.copy()
        seen = pose[:, 2] > self.min_joint_score
        out[seen, :2] = filtered[seen]
        return out


# -- Evaluation on generated sequences (python -m benchmarks.track_eval) ---------------------------

@dataclasses.dataclass
class SyntheticFrame:
    """One generated frame: the detector's people (``keypoints [P, J, 3]``, ``scores [P]``, in
    shuffled order) and who each one is (``gt_ids [P]``; -1 for a false detection)."""
    keypoints: np.ndarray
    scores: np.ndarray
    gt_ids: np.ndarray
    truth: np.ndarray = None  # [P, J, 2] the joints without noise (false detections: their own)


def synthetic_sequence(frames=300, people=6, width=640, height=480, seed=0, noise_px=2.0, joint_dropout=0.1,
                       person_dropout=0.03, dropout_frames=(2, 8), false_positives=0.05, crossing_pairs=None):
    """Detections of people walking across a ``width`` x ``height`` frame, with known identities.

    Figures are the synthetic dataset's (``litepose.data.synthetic.sample_person``, 17 COCO
    joints, 90 to 160 px tall) with swinging limbs. ``crossing_pairs`` pairs (default: half
    the people) walk towards each other along nearly the same line and cross mid-sequence; the
    others wander and bounce off the borders. Every joint gets Gaussian noise of ``noise_px``
    and is missed with probability ``joint_dropout``; a person is missed for a run of
    ``dropout_frames`` frames with probability ``person_dropout`` per frame (the detector's
    dropouts); a frame holds a false detection with probability ``false_positives``."""
    from .data.synthetic import sample_person

    rng = np.random.default_rng(seed)
    pairs = people // 2 if crossing_pairs is None else min(int(crossing_pairs), people // 2)
    templates, centres, velocities, phases = [], [], [], []
    for p in range(people):
        figure_height = rng.uniform(90, 160)
        joints, _ = sample_person(rng, figure_height, (0.0, 0.0))
        templates.append(joints - joints.mean(axis=0))
        if p < 2 * pairs:
            # Pair k crosses at frame ~frames/2 on a line at its own height.
            y = height * (0.3 + 0.4 * (p // 2) / max(1, pairs - 1 if pairs > 1 else 1))
            speed = rng.uniform(1.5, 3.0) * (width * 0.6) / (frames * 1.5)
            start = width / 2 - speed * frames / 2 if p % 2 == 0 else width / 2 + speed * frames / 2
            centres.append(np.array([start, y + rng.uniform(-10, 10)]))
            velocities.append(np.array([speed if p % 2 == 0 else -speed, rng.uniform(-0.1, 0.1)]))
        else:
            centres.append(rng.uniform((80, 90), (width - 80, height - 90)))
            angle = rng.uniform(0, 2 * math.pi)
            velocities.append(rng.uniform(1.0, 4.0) * np.array([math.cos(angle), math.sin(angle)]))
        phases.append(rng.uniform(0, 2 * math.pi))
    hidden = np.zeros(people, np.int64)  # frames of dropout left
    sequence = []
    for t in range(frames):
        poses, scores, ids, truth = [], [], [], []
        for p in range(people):
            centre = centres[p] + velocities[p] * t
            if p >= 2 * pairs:  # bounce: reflect the unbounded position into the frame
                for axis, (lo, hi) in enumerate(((60, width - 60), (70, height - 70))):
                    span = hi - lo
                    offset = (centre[axis] - lo) % (2 * span)
                    centre[axis] = lo + (offset if offset <= span else 2 * span - offset)
            swing = 0.15 * math.sin(0.2 * t + phases[p])
            pose = templates[p].copy()
            pose[9:11] += swing * (pose[9:11] - pose[5:7])  # wrists swing around the shoulders
            pose[15:17] += swing * (pose[15:17] - pose[11:13])
            if hidden[p] > 0:
                hidden[p] -= 1
                continue
            if rng.random() < person_dropout:
                hidden[p] = rng.integers(dropout_frames[0], dropout_frames[1] + 1) - 1
                continue
            truth.append(pose + centre)
            xy = pose + centre + rng.normal(0, noise_px, pose.shape)
            score = rng.uniform(0.4, 1.0, len(pose))
            score[rng.random(len(pose)) < joint_dropout] = 0.0
            poses.append(np.concatenate([xy, score[:, None]], axis=1))
            scores.append(score.mean())
            ids.append(p)
        if rng.random() < false_positives:
            fake = templates[rng.integers(people)] * rng.uniform(0.5, 1.0) + rng.uniform((50, 50), (width - 50,
                                                                                             height - 50))
            score = rng.uniform(0.05, 0.35, len(fake))
            poses.append(np.concatenate([fake, score[:, None]], axis=1))
            scores.append(score.mean())
            ids.append(-1)
            truth.append(fake)
        order = rng.permutation(len(poses))
        joints = len(templates[0])
        sequence.append(SyntheticFrame(np.array([poses[i] for i in order]).reshape(-1, joints, 3),
                                       np.array([scores[i] for i in order]), np.array([ids[i] for i in order]),
                                       np.array([truth[i] for i in order]).reshape(-1, joints, 2)))
    return sequence


def identity_metrics(sequence, track_ids):
    """Identity errors of ``track_ids`` (one ``[P]`` array per frame of ``sequence``).

    Per person, each detection's track id is compared with the id of its previous detection:

    - a **switch**: it changed to an id seen before (another person's, or its own older one),
    - a **fragmentation**: it changed to a new id (its track was dropped and restarted);
    - **untracked**: detections of real people left without an id.

    Returns counts and the rates per 100 frames."""
    last, seen_ids = {}, set()
    switches = fragmentations = untracked = detections = 0
    for frame, ids in zip(sequence, track_ids):
        for gt, tid in zip(frame.gt_ids, ids):
            if gt < 0:
                if tid >= 0:
                    seen_ids.add(int(tid))
                continue
            detections += 1
            if tid < 0:
                untracked += 1
                continue
            previous = last.get(gt)
            if previous is not None and tid != previous:
                if int(tid) in seen_ids:
                    switches += 1
                else:
                    fragmentations += 1
            seen_ids.add(int(tid))
            last[gt] = tid
    frames = max(1, len(sequence))
    return {"frames": len(sequence), "detections": detections, "switches": switches,
            "fragmentations": fragmentations, "untracked": untracked,
            "switches_per_100": 100.0 * switches / frames, "fragmentations_per_100": 100.0 * fragmentations / frames}


def track_sequence(tracker, sequence, with_keypoints=False):
    """Run ``tracker`` over ``sequence``: one ``[P]`` id array per frame (and the keypoints it
    returned, with ``with_keypoints``)."""
    tracker.reset()
    results = [tracker.update(frame.keypoints, frame.scores) for frame in sequence]
    ids = [r[0] for r in results]
    return (ids, [r[1] for r in results]) if with_keypoints else ids


def joint_error(sequence, keypoints):
    """Mean distance in pixels between the returned joints (visible ones, real people) and the
    joints without noise: what smoothing improves."""
    errors = []
    for frame, returned in zip(sequence, keypoints):
        real = frame.gt_ids >= 0
        visible = frame.keypoints[:, :, 2] > 0
        mask = real[:, None] & visible
        errors.append(np.linalg.norm(returned[:, :, :2] - frame.truth, axis=-1)[mask])
    values = np.concatenate(errors) if errors else np.zeros(0)
    return float(values.mean()) if values.size else float("nan")
