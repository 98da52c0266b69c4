"""The person filter after grouping (litepose.runtime.people): score threshold and OKS-NMS."""

import numpy as np
import pytest

from litepose.data.keypoints import COCO
from litepose.errors import ConfigError
from litepose.runtime.people import PersonFilter, hide_outside_frame, oks_matrix

SIGMAS = COCO.sigmas


def _pose(x0, y0, size=100.0, score=0.9):
    """A 17-joint pose spread over a size x size box at (x0, y0), every joint at ``score``."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, size, (17, 2)) + (x0, y0)
    return np.concatenate([xy, np.full((17, 1), score)], axis=1)


def test_oks_of_a_pose_with_itself_is_one_and_falls_with_distance():
    a = _pose(0, 0)[None]
    visible = np.ones((1, 17), bool)
    assert oks_matrix(a, a, visible, visible, SIGMAS)[0, 0] == pytest.approx(1.0)
    near, far = a.copy(), a.copy()
    near[..., 0] += 2.0
    far[..., 0] += 20.0
    oks_near = oks_matrix(a, near, visible, visible, SIGMAS)[0, 0]
    oks_far = oks_matrix(a, far, visible, visible, SIGMAS)[0, 0]
    assert 1.0 > oks_near > oks_far > 0.0
    # COCO's formula by hand for one joint: exp(-d^2 / (2 * area * (2 sigma)^2)), area = the box.
    box = a[0, :, :2].max(0) - a[0, :, :2].min(0)
    expected = np.mean(np.exp(-400.0 / (2 * box.prod() * (2 * np.asarray(SIGMAS)) ** 2)))
    assert oks_far == pytest.approx(expected, rel=1e-9)


def test_score_threshold_drops_weak_people_and_keeps_the_order():
    poses = np.stack([_pose(0, 0, score=0.5), _pose(300, 0, score=0.05), _pose(600, 0, score=0.3)])
    scores = np.array([0.5, 0.05, 0.3])
    assert PersonFilter(min_score=0.1).keep(poses, scores, SIGMAS).tolist() == [0, 2]
    assert PersonFilter(min_score=0.3).keep(poses, scores, SIGMAS).tolist() == [0, 2]  # at the threshold: kept
    assert PersonFilter(min_score=0.6).keep(poses, scores, SIGMAS).tolist() == []


def test_nms_drops_a_weaker_copy_of_a_person_and_keeps_people_apart():
    strong = _pose(0, 0)
    copy = strong.copy()
    copy[:, :2] += 1.5  # the same person, found twice
    other = _pose(250, 0)
    poses, scores = np.stack([copy, other, strong]), np.array([0.4, 0.6, 0.8])
    assert PersonFilter(nms_oks=0.9).keep(poses, scores, SIGMAS).tolist() == [1, 2]
    # With a looser threshold than the copy's OKS, both stay.
    oks = oks_matrix(strong[None], copy[None], np.ones((1, 17), bool), np.ones((1, 17), bool), SIGMAS)[0, 0]
    assert PersonFilter(nms_oks=min(1.0, oks + 0.01)).keep(poses, scores, SIGMAS).tolist() == [0, 1, 2]


def test_nms_ties_keep_the_earlier_person_and_suppression_is_greedy():
    a = _pose(0, 0)
    b = a.copy()
    b[:, :2] += 1.0
    scores = np.array([0.7, 0.7])
    assert PersonFilter(nms_oks=0.8).keep(np.stack([a, b]), scores, SIGMAS).tolist() == [0]
    assert PersonFilter(nms_oks=0.8).keep(np.stack([b, a]), scores, SIGMAS).tolist() == [0]
    # A chain: b is a's duplicate, c is b's but not a's; once b is suppressed, c stays.
    c = a.copy()
    c[:, :2] += 12.0
    poses = np.stack([a, b, c])
    similar = oks_matrix(poses, poses, np.ones((3, 17), bool), np.ones((3, 17), bool), SIGMAS)
    threshold = (similar[1, 2] + similar[0, 2]) / 2
    assert similar[0, 1] > threshold and similar[1, 2] > threshold > similar[0, 2]
    kept = PersonFilter(nms_oks=threshold).keep(poses, np.array([0.9, 0.8, 0.7]), SIGMAS)
    assert kept.tolist() == [0, 2]


def test_invisible_joints_do_not_count_for_similarity():
    a = _pose(0, 0)
    b = a.copy()
    b[:8, :2] += 80.0  # half the joints elsewhere, and below the visibility score
    b[:8, 2] = 0.01
    poses, scores = np.stack([a, b]), np.array([0.9, 0.5])
    assert PersonFilter(nms_oks=0.9).keep(poses, scores, SIGMAS).tolist() == [0, 1]
    assert PersonFilter(nms_oks=0.9, visible_score=0.05).keep(poses, scores, SIGMAS).tolist() == [0]


def test_off_keeps_everyone_and_bad_thresholds_are_one_line():
    poses = np.stack([_pose(0, 0), _pose(0, 0)])
    assert PersonFilter().keep(poses, np.array([0.0, 0.0]), SIGMAS).tolist() == [0, 1]
    assert PersonFilter().keep(np.zeros((0, 17, 3)), np.zeros(0), SIGMAS).tolist() == []
    for bad in ({"nms_oks": 0.0}, {"nms_oks": 1.5}, {"min_score": float("nan")}):
        with pytest.raises(ConfigError, match="person"):
            PersonFilter(**bad)


def test_joints_outside_the_frame_get_score_zero_and_keep_their_place():
    keypoints = np.array([[[10.0, 20.0, 0.8], [-0.4, 5.0, 0.7], [3.0, -42.0, 0.9], [99.4, 49.4, 0.6],
                           [99.6, 10.0, 0.5], [50.0, 369.0, 0.4]]])
    hidden = hide_outside_frame(keypoints, 100, 50)
    np.testing.assert_array_equal(hidden[..., :2], keypoints[..., :2])
    np.testing.assert_array_equal(hidden[0, :, 2], [0.8, 0.7, 0.0, 0.6, 0.0, 0.0])
    assert keypoints[0, 2, 2] == 0.9  # the caller's array is not changed
    inside = keypoints[:, [0, 1, 3]]
    assert hide_outside_frame(inside, 100, 50) is inside
