"""DecodeLimits.fast_assignment: SciPy's optimal assignment in matching instead of the release's
tie-exact Munkres, on in the realtime preset only."""

import dataclasses

import numpy as np
from scipy.optimize import linear_sum_assignment

from litepose.inference import DecodeLimits, InferenceSettings, group
from litepose.inference.assignment import munkres_assignment


def test_the_fast_solver_is_optimal_where_the_release_breaks_ties_its_own_way():
    rng = np.random.default_rng(0)
    differs = 0
    for _ in range(200):
        rows, cols = rng.integers(2, 12, size=2)
        # the release's cost: round(distance) * 100 - score, ties everywhere
        cost = np.round(rng.random((rows, cols)) * 3) * 100 - np.round(rng.random((rows, 1)), 1)
        release = munkres_assignment(cost)
        fast = linear_sum_assignment(cost)
        assert len(fast[0]) == len(release[0]) == min(rows, cols)
        assert np.isclose(cost[fast].sum(), cost[release].sum())
        differs += not (np.array_equal(fast[0], release[0]) and np.array_equal(fast[1], release[1]))
    assert differs > 0  # the reason the switch is off by default


def _trained_like_maps(people=6, joints=17, height=48, width=64, seed=1):
    """One sharp peak per person and joint, distinct scores, and each person's tag (k + 1) in
    the tag map around its joints: the maps of a well-trained network."""
    rng = np.random.default_rng(seed)
    det = np.zeros((joints, height, width), np.float32)
    tags = np.zeros((joints, height, width, 1), np.float32)
    for person in range(people):
        for joint in range(joints):
            y, x = rng.integers(3, height - 3), rng.integers(3, width - 3)
            det[joint, y, x] = 0.5 + 0.4 * rng.random()
            tags[joint, y - 2:y + 3, x - 2:x + 3, 0] = person + 1
    return det, tags


def test_without_ties_the_fast_assignment_gives_the_release_people():
    det, tags = _trained_like_maps()
    params = group.GroupingParams(num_joints=17)
    release, release_scores = group.group_keypoints(det, tags, params, DecodeLimits(max_people=20))
    fast, fast_scores = group.group_keypoints(det, tags, params, DecodeLimits(max_people=20, fast_assignment=True))
    assert len(release) >= 5
    np.testing.assert_array_equal(fast, release)
    np.testing.assert_array_equal(fast_scores, release_scores)


def test_dense_maps_group_every_detection_with_either_solver():
    rng = np.random.default_rng(5)
    det = rng.random((17, 32, 48), dtype=np.float32)
    tags = (rng.standard_normal((17, 32, 48, 1)) * 3).astype(np.float32)
    params = group.GroupingParams(num_joints=17, refine=False)
    counts = []
    for fast in (False, True):
        people, _ = group.group_keypoints(det, tags, params, DecodeLimits(max_detections=20, fast_assignment=fast))
        counts.append((people[:, :, 2] > 0).sum(axis=0))
    np.testing.assert_array_equal(counts[0], counts[1])  # 20 detections of each joint placed either way
    assert counts[0].max() == 20


def test_only_the_realtime_preset_turns_it_on():
    from litepose.estimator import preset_settings, release_test_config

    settings = InferenceSettings.from_config(release_test_config("coco"), None, 256)
    assert not group.NO_LIMITS.fast_assignment  # valid.py and the library's default: the release's
    assert not preset_settings(settings, "accurate")[1].fast_assignment
    assert preset_settings(settings, "realtime")[1].fast_assignment
    limits = preset_settings(settings, "realtime", fast_assignment=False)[1]
    assert limits == dataclasses.replace(preset_settings(settings, "realtime")[1], fast_assignment=False)
