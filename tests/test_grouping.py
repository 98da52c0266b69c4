"""Grouping: people from heatmaps and tags, as the release groups them, vectorised."""

import numpy as np
import pytest
import torch

from litepose.config import load_config
from litepose.errors import ConfigError
from litepose.inference.group import GroupingParams, _Maps, _refine_argmax, find_peaks, group_keypoints, joint_order
from reference_grouping import reference_group


def gaussian(height, width, x, y, sigma=2.0, peak=1.0):
    ys, xs = np.mgrid[0:height, 0:width]
    return (peak * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))).astype(np.float32)


def scene(joints=14, height=64, width=96, people=4, dims=2, seed=0, missing=0.2, noise=0.02, spacing=2.0):
    """Gaussian joints of well-separated people (tag ``1 + spacing * k`` near person k's
    joints), random tags and low noise elsewhere."""
    rng = np.random.default_rng(seed)
    det = rng.random((joints, height, width)).astype(np.float32) * noise
    tags = (rng.normal(size=(joints, height, width, dims)) * 3).astype(np.float32)
    for k in range(people):
        for j in range(joints):
            if rng.random() < missing:
                continue
            g = gaussian(height, width, rng.uniform(0, width), rng.uniform(0, height), 3.0, rng.uniform(0.5, 1))
            det[j] = np.maximum(det[j], g)
            near = g > 0.05
            tags[j][near] = 1 + spacing * k + rng.normal(size=(near.sum(), dims)) * 0.1
    return det, tags


def assert_same(ours, theirs):
    (people_a, scores_a), (people_b, scores_b) = ours, theirs
    assert people_a.shape == people_b.shape
    np.testing.assert_allclose(people_a, people_b, atol=1e-5)
    np.testing.assert_allclose(scores_a, scores_b, atol=1e-6)


def test_two_people_with_different_tags_are_separated():
    params = GroupingParams(num_joints=3, detection_threshold=0.1)
    det = np.stack([gaussian(40, 60, 10, 10) + gaussian(40, 60, 45, 12),
                    gaussian(40, 60, 12, 25) + gaussian(40, 60, 47, 26),
                    gaussian(40, 60, 9, 35) + gaussian(40, 60, 44, 36)])
    tags = np.zeros((3, 40, 60, 1), np.float32)
    tags[:, :, 30:] = 3.0  # the right-hand person's tag
    people, scores = group_keypoints(det, tags, params)
    assert people.shape == (2, 3, 4)
    by_side = sorted(people, key=lambda p: p[0, 0])
    # Each person holds exactly its own three joints (pixel centre + quarter shift).
    np.testing.assert_allclose(by_side[0][:, 0].round(), [10, 12, 9], atol=1)
    np.testing.assert_allclose(by_side[1][:, 0].round(), [45, 47, 44], atol=1)
    np.testing.assert_array_equal(by_side[0][:, 3], 0.0)
    np.testing.assert_array_equal(by_side[1][:, 3], 3.0)
    np.testing.assert_allclose(scores, 1.0, atol=1e-6)


def test_joints_whose_tags_agree_form_one_person():
    params = GroupingParams(num_joints=4, detection_threshold=0.1, refine=False)
    det = np.stack([gaussian(50, 50, 5 + 10 * j, 5 + 9 * j) for j in range(4)])
    tags = np.zeros((4, 50, 50, 2), np.float32)
    for j, value in enumerate((1.0, 1.2, 0.8, 1.3)):  # all within TAG_THRESHOLD of their mean
        tags[j] = value
    people, scores = group_keypoints(det, tags, params)
    assert people.shape == (1, 4, 5)
    assert (people[0, :, 2] > 0.9).all()
    np.testing.assert_allclose(people[0, :, 3], [1.0, 1.2, 0.8, 1.3], atol=1e-6)


def test_a_joint_far_from_every_tag_starts_a_new_person():
    params = GroupingParams(num_joints=2, detection_threshold=0.1, refine=False)
    det = np.stack([gaussian(30, 30, 8, 8), gaussian(30, 30, 20, 20)])
    tags = np.zeros((2, 30, 30, 1), np.float32)
    tags[1] = 1.5  # distance 1.5 >= TAG_THRESHOLD 1
    people, scores = group_keypoints(det, tags, params)
    assert people.shape[0] == 2
    np.testing.assert_allclose(sorted(scores), [0.5, 0.5], atol=1e-6)  # one of two joints each


def test_refine_fills_a_missing_joint_from_the_mean_tag():
    det = np.stack([gaussian(40, 40, 10, 10), gaussian(40, 40, 30, 30, peak=0.05)])  # joint 1 below threshold
    tags = np.full((2, 40, 40, 1), 5.0, np.float32)
    tags[:, 25:, 25:] = 0.0  # joint 1's weak peak carries the person's tag (0)
    tags[0] = 0.0
    with_refine, _ = group_keypoints(det, tags, GroupingParams(num_joints=2, detection_threshold=0.1))
    without, _ = group_keypoints(det, tags, GroupingParams(num_joints=2, detection_threshold=0.1, refine=False))
    assert without[0, 1, 2] == 0
    assert with_refine[0, 1, 2] == pytest.approx(0.05, abs=1e-6)
    assert abs(with_refine[0, 1, 0] - 30.5) <= 0.25 and abs(with_refine[0, 1, 1] - 30.5) <= 0.25


@pytest.mark.parametrize("seed", range(12))
def test_same_people_as_the_release_on_separated_scenes(seed):
    rng = np.random.default_rng(seed)
    joints = int(rng.choice([14, 17]))
    height, width = int(rng.integers(40, 90)), int(rng.integers(40, 90))  # odd sizes too
    det, tags = scene(joints, height, width, people=int(rng.integers(1, 9)), seed=seed)
    params = GroupingParams(num_joints=joints, detection_threshold=0.1, nms_kernel=int(rng.choice([3, 5])),
                            adjust=bool(seed % 4), refine=bool(seed % 3))
    assert_same(group_keypoints(det, tags, params), reference_group(det, tags, params))


@pytest.mark.parametrize("seed", range(12))
def test_same_people_as_the_release_on_dense_random_maps(seed):
    """Hundreds of peaks, negative heatmaps, one shared tag map, few people allowed... Tags are
    continuous vectors and the cost has no rounding (ties are the next test's business)."""
    rng = np.random.default_rng(100 + seed)
    joints, dims = int(rng.choice([5, 14])), int(rng.choice([2, 4]))
    det, tags = scene(joints, int(rng.integers(20, 70)), int(rng.integers(20, 70)), people=int(rng.integers(1, 10)),
                      dims=dims, seed=seed, missing=0.3, noise=float(rng.choice([0.3, 1.2])))
    if seed % 3 == 0:
        det -= 0.3
    if seed % 4 == 1:
        tags = tags[:1]
    params = GroupingParams(num_joints=joints, max_num_people=int(rng.choice([3, 30])),
                            detection_threshold=float(rng.choice([0.0, 0.1, 0.5])), tag_threshold=1.0,
                            use_detection_val=False, ignore_too_much=bool(seed % 5 == 0),
                            nms_kernel=int(rng.choice([1, 3, 5])), adjust=bool(seed % 7), refine=bool(seed % 6))
    assert_same(group_keypoints(det, tags, params), reference_group(det, tags, params))


def tie_heavy_case(seed):
    """Many people whose tags lie closer than the rounding step (spacing 0.3 to 0.7): the
    rounded distances agree, many assignments cost the same and the tie-breaking decides who
    gets which joint."""
    rng = np.random.default_rng(200 + seed)
    joints, dims = int(rng.choice([14, 17])), int(rng.choice([1, 1, 2]))
    det, tags = scene(joints, int(rng.integers(40, 72)), int(rng.integers(40, 72)), people=int(rng.integers(4, 13)),
                      dims=dims, seed=seed, spacing=float(rng.choice([0.3, 0.5, 0.7])))
    params = GroupingParams(num_joints=joints, max_num_people=int(rng.choice([5, 30])), detection_threshold=0.1,
                            refine=seed % 4 == 3)
    return det, tags, params


@pytest.mark.parametrize("seed", range(8))
def test_same_people_as_the_release_on_tie_heavy_maps(seed):
    det, tags, params = tie_heavy_case(seed)
    assert_same(group_keypoints(det, tags, params), reference_group(det, tags, params))


def test_another_optimal_solver_would_form_other_people(monkeypatch):
    """The tie-heavy maps test the tie-breaking: with scipy's solver, as optimal, the people differ."""
    import litepose.inference.group as group
    from scipy.optimize import linear_sum_assignment

    det, tags, params = tie_heavy_case(0)
    expected = reference_group(det, tags, params)
    monkeypatch.setattr(group, "munkres_assignment", linear_sum_assignment)
    people, _ = group_keypoints(det, tags, params)
    assert people.shape != expected[0].shape or not np.allclose(people, expected[0], atol=1e-5)


def test_identical_tags_merge_by_key_as_the_release_does():
    """Perfect tags and more people than ``max_num_people``: a late joint of an unlisted person
    starts a 'new' person with an existing key and joins it, as the release's dict does."""
    det, tags = scene(6, 60, 80, people=5, dims=1, seed=3, missing=0.0, noise=0.0)
    tags = np.round(tags)  # every person's tag exactly 1 + 2k
    params = GroupingParams(num_joints=6, max_num_people=2, detection_threshold=0.1)
    ours = group_keypoints(det, tags, params)
    assert_same(ours, reference_group(det, tags, params))
    assert len(ours[0]) == 5


def test_joint_order_is_the_releases():
    assert joint_order(17) == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
    assert joint_order(14) == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13)
    assert sorted(joint_order(20)) == list(range(20))


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("shape", [(3, 37, 53), (3, 40, 56)])  # untiled and 8x8-tiled maps
@pytest.mark.parametrize("sparse", [True, False])  # candidate tests, or whole-map max filters
def test_nms_keeps_what_max_pooling_keeps(kernel, shape, sparse, monkeypatch):
    import litepose.inference.group as group

    if not sparse:
        monkeypatch.setattr(group, "_NMS_SPARSE_LIMIT", 0)
    rng = np.random.default_rng(kernel)
    det = np.round(rng.normal(size=shape), 1).astype(np.float32)  # plateaus and borders
    threshold = 0.3
    joints, ys, xs, vals = find_peaks(_Maps(det, det[..., None], kernel), threshold, 10 ** 6)
    pooled = torch.nn.functional.max_pool2d(torch.from_numpy(det)[None], kernel, 1, kernel // 2)[0].numpy()
    expected = np.argwhere((det == pooled) & (det > threshold))
    assert sorted(zip(joints, ys, xs)) == sorted(map(tuple, expected))
    np.testing.assert_array_equal(vals, det[joints, ys, xs])


@pytest.mark.parametrize("per_joint", [1, 5, 20, 60])
@pytest.mark.parametrize("threshold", [0.1, 0.9])
def test_dense_nms_from_the_strongest_blocks_keeps_the_whole_maps_peaks(per_joint, threshold):
    """Dense maps' peak search starts from the strongest blocks (``_top_block_peaks``); the
    peaks it keeps are the whole-map filter's, ties (coarse values, plateaus) in raster order,
    whether the blocks decide or it falls back."""
    import litepose.inference.group as group

    rng = np.random.default_rng(per_joint)
    decided = 0
    for kind in ("noise", "plateaus", "valley"):
        det = rng.random((5, 128, 192)).astype(np.float32)
        if kind == "plateaus":
            det = np.repeat(np.repeat(det[:, ::8, ::8], 8, axis=1), 8, axis=2)
        if kind == "valley":  # few peaks, every pixel above 0.1: there the blocks cannot decide
            det = np.stack([0.95 - 0.5 * gaussian(128, 192, 90 + j, 60, 60.0) + 0.001 * det[j] for j in range(5)])
        det = np.round(det * 8) / 8 if kind != "valley" else det
        maps = _Maps(det, det[..., None], 5)
        expected = group._strongest(maps, group._whole_map_peaks(maps, threshold), per_joint)
        decided += group._top_block_peaks(maps, threshold, per_joint) is not None
        found = find_peaks(maps, threshold, per_joint, dense=True)
        for a, b in zip(found, expected):
            np.testing.assert_array_equal(a, b)
    assert decided >= 1


def test_refine_search_finds_the_first_maximum_of_the_full_map():
    rng = np.random.default_rng(0)
    det = np.round(rng.random((4, 45, 70)) * 4) / 4  # coarse values: many ties
    det = det.astype(np.float32)
    tags = np.round(rng.normal(size=(4, 45, 70, 2)), 1).astype(np.float32)
    maps = _Maps(det, tags, 5)
    joint_idx = rng.integers(0, 4, 60)
    means = np.round(rng.normal(size=(60, 2)), 1).astype(np.float32)
    flat, value = _refine_argmax(maps, joint_idx, means)
    for n in range(60):
        distance = np.round(np.sqrt(((tags[joint_idx[n]] - means[n]) ** 2).sum(-1)))
        full = (det[joint_idx[n]] - distance).ravel()
        assert flat[n] == np.argmax(full)
        assert value[n] == det[joint_idx[n]].ravel()[flat[n]]


def test_empty_maps_give_no_people():
    people, scores = group_keypoints(np.zeros((14, 32, 32), np.float32), np.zeros((14, 32, 32, 2), np.float32),
                                     GroupingParams(num_joints=14))
    assert people.shape == (0, 14, 5) and scores.shape == (0,)


def test_params_from_config_and_their_errors():
    cfg = load_config("experiments/crowd_pose/mobilenet/mobile.yaml")
    params = GroupingParams.from_config(cfg)
    assert (params.num_joints, params.max_num_people, params.nms_kernel) == (14, 30, 5)
    assert params.detection_threshold == pytest.approx(0.1) and params.adjust and params.refine
    with pytest.raises(ConfigError, match="TEST.NMS_PADDING must be"):
        GroupingParams.from_config(load_config("experiments/crowd_pose/mobilenet/mobile.yaml",
                                               ["TEST.NMS_PADDING", "1"]))
    with pytest.raises(ConfigError, match="NMS_KERNEL must be a positive odd"):
        GroupingParams(num_joints=3, nms_kernel=4)


@pytest.mark.parametrize("coarse", [False, True])  # True: wide ties, the floor admits too many pixels
def test_dense_refinement_from_an_estimated_floor_finds_the_full_maps_first_maximum(coarse):
    """Dense refinement tries the pixels above an estimated floor first (``_top_floors``);
    whichever floor, each joint is the block search's (the full map's first maximum)."""
    import litepose.inference.group as group

    rng = np.random.default_rng(7)
    det = rng.random((17, 64, 96)).astype(np.float32) * 2
    if coarse:
        det = np.round(det)  # a quarter of every map at its maximum, 2
    tags = np.round(rng.normal(size=(17, 64, 96, 1)) * 3, 1).astype(np.float32)
    people, _ = group_keypoints(det, tags, GroupingParams(num_joints=17, refine=False))
    assert len(people) > 20
    maps = _Maps(det, tags, 5)
    expected, actual = people.copy(), people.copy()
    group.refine_people(expected, maps, fast=False)
    group.refine_people(actual, maps, fast=True, top_pixels=256)
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("per_joint", [1, 7, 30])
def test_peaks_ordered_by_one_sort_for_all_joints_are_the_per_joint_selection(per_joint, monkeypatch):
    """Few peaks are ordered by one sort for all joints (``_SORT_ALL_PEAKS``): the same peaks,
    strongest first and equal values in raster order, as the per-joint selection keeps."""
    import litepose.inference.group as group

    det = np.round(np.random.default_rng(per_joint).random((6, 48, 64)) * 4).astype(np.float32) / 4  # many ties
    maps = _Maps(det, det[..., None], 3)
    monkeypatch.setattr(group, "_SORT_ALL_PEAKS", 10 ** 9)
    together = find_peaks(maps, 0.1, per_joint, dense=True)
    monkeypatch.setattr(group, "_SORT_ALL_PEAKS", 0)
    apart = find_peaks(maps, 0.1, per_joint, dense=True)
    assert len(together[0]) > 0
    for a, b in zip(together, apart):
        np.testing.assert_array_equal(a, b)
