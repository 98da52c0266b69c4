"""The PyTorch-free path from an image to people: the runtime's pre-processing equals the
PyTorch input, the NumPy aggregation gives the release's maps (tests/reference_aggregation.py),
grouping's dense paths and caps, and none of it imports PyTorch."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from litepose.config import load_config
from litepose.data import normalize
from litepose.inference import (DecodeLimits, InferenceSettings, Maps, compute_maps, decode, group, resize_geometry,
                                resize_maps, warp_image)
from litepose.runtime import network_input
from reference_aggregation import reference_maps

COCO_CFG = "experiments/coco/mobilenet/mobile.yaml"


@pytest.mark.parametrize("flip", [False, True])
def test_network_input_equals_the_pytorch_path_bit_for_bit(flip):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 101, 3), dtype=np.uint8)
    geometry = resize_geometry((101, 70), 64)
    expected = normalize.image_to_tensor(warp_image(image, geometry))[None]
    if flip:
        expected = torch.cat([expected, expected.flip(3)])
    np.testing.assert_array_equal(network_input(image, geometry, flip), expected.numpy())
    # A BGR frame gives the same input with the channels swapped after resizing.
    np.testing.assert_array_equal(network_input(image[:, :, ::-1].copy(), geometry, flip, bgr=True), expected.numpy())


@pytest.mark.parametrize("src,dst,atol", [((16, 24), (32, 48), 1e-6), ((32, 32), (16, 16), 1e-6),
                                          ((13, 17), (40, 23), 5e-5)])
def test_cv2_bilinear_matches_interpolate_with_align_corners_false(src, dst, atol):
    maps = np.random.default_rng(1).standard_normal((5,) + src).astype(np.float32) * 3
    expected = F.interpolate(torch.from_numpy(maps)[None], size=dst, mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(resize_maps(maps, dst), expected.numpy(), atol=atol, rtol=0)


def _fake_outputs(geometry, flip, joints=17, seed=0):
    """Network outputs of plausible structure: a few Gaussian people, background noise of
    which a share passes the detection threshold (dense enough for whole-map NMS), tags that
    are constant per person plus noise."""
    width, height = geometry.input_wh
    rng = np.random.default_rng(seed + width * 7 + height)
    batch = 2 if flip else 1
    outputs = []
    for stride, channels in ((4, 2 * joints), (2, joints)):
        h, w = height // stride, width // stride
        out = rng.random((batch, channels, h, w), dtype=np.float32) * 0.12
        ys, xs = np.mgrid[0:h, 0:w]
        for person in range(4):
            cx, cy = rng.random(2) * (w, h)
            for j in range(joints):
                jx, jy = cx + rng.normal(0, w / 10), cy + rng.normal(0, h / 10)
                blob = np.exp(-((xs - jx) ** 2 + (ys - jy) ** 2) / (2 * (4 / stride) ** 2)).astype(np.float32)
                out[:, j] += blob * rng.uniform(0.3, 1.0)
                if channels == 2 * joints:
                    out[:, joints + j] += blob * (2.0 * person) + rng.normal(0, 0.05, (h, w)).astype(np.float32)
        outputs.append(out)
    return outputs


SETTINGS_CASES = [dict(flip=True, project_to_image=True), dict(flip=False, project_to_image=False),
                  dict(flip=True, project_to_image=False), dict(flip=False, project_to_image=True, scales=(1.0, 0.5))]


@pytest.mark.parametrize("changes", SETTINGS_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_same_network_outputs_give_the_release_maps_and_the_same_people(changes):
    cfg = load_config(COCO_CFG)
    settings = dataclasses.replace(InferenceSettings.from_config(cfg, input_size=128), **changes)
    image_wh = (150, 110)
    numpy_maps = compute_maps(lambda g: _fake_outputs(g, settings.flip), image_wh, settings)
    heatmaps, tags = reference_maps(lambda g: _fake_outputs(g, settings.flip), image_wh, settings, resize_geometry)
    release_maps = Maps(heatmaps.numpy(), tags.numpy(), numpy_maps.geometry)
    np.testing.assert_allclose(numpy_maps.heatmaps, release_maps.heatmaps, atol=1e-6, rtol=0)
    np.testing.assert_allclose(numpy_maps.tags, release_maps.tags, atol=1e-5, rtol=0)
    expected, actual = decode(release_maps, settings), decode(numpy_maps, settings)
    assert len(expected.scores) >= 4 and actual.keypoints.shape == expected.keypoints.shape
    # The same peaks and quarter steps: positions equal up to float64 rounding of the mapping back
    # (another pixel would be a quarter map pixel off); scores up to float32 rounding (values ~1).
    np.testing.assert_allclose(actual.keypoints[..., :2], expected.keypoints[..., :2], atol=1e-9, rtol=0)
    np.testing.assert_allclose(actual.keypoints[..., 2], expected.keypoints[..., 2], atol=1e-6, rtol=0)
    np.testing.assert_allclose(actual.scores, expected.scores, atol=1e-6, rtol=0)


def _maps(heatmaps, tags, kernel=5):
    return group._Maps(heatmaps, tags, kernel)


@pytest.mark.parametrize("shape", [(17, 64, 64), (14, 30, 50)])
@pytest.mark.parametrize("quantised", [False, True])
def test_dense_nms_finds_the_peaks_of_the_candidate_search(shape, quantised):
    rng = np.random.default_rng(2)
    det = rng.random(shape, dtype=np.float32)
    if quantised:  # many equal values: ties between neighbours and in the ranking
        det = np.round(det * 8) / 8
    maps = _maps(det, rng.standard_normal(shape + (1,)).astype(np.float32))
    for threshold, limit in ((0.1, 30), (0.6, 5), (1.5, 30)):
        expected = group.find_peaks(maps, threshold, limit, dense=False)
        actual = group.find_peaks(maps, threshold, limit, dense=True)
        for e, a in zip(expected, actual):
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("stage2", [True, False])  # False: every pair the top pixels leave open takes the blocks
def test_fast_refinement_equals_the_block_search(depth, stage2, monkeypatch):
    if not stage2:
        monkeypatch.setattr(group, "_STAGE2_EVALUATIONS", 0)
    rng = np.random.default_rng(3)
    joints, height, width = 17, 64, 64
    det = rng.random((joints, height, width), dtype=np.float32) * 2
    tags = (rng.standard_normal((joints, height, width, depth)) * 3).astype(np.float32)
    maps = _maps(det, tags)
    params = group.GroupingParams(num_joints=joints, refine=False)
    people, _ = group.group_keypoints(det, tags, params)
    assert len(people) > 20
    expected, actual = people.copy(), people.copy()
    group.refine_people(expected, maps, fast=False)
    for top in (16, group.REFINE_TOP_PIXELS):  # 16: most pairs fall back to the block search
        actual = people.copy()
        group.refine_people(actual, maps, fast=True, top_pixels=top)
        np.testing.assert_array_equal(actual, expected)


def test_grouping_without_a_cap_is_the_release_grouping_and_the_cap_keeps_the_best():
    from reference_grouping import reference_group

    rng = np.random.default_rng(4)
    det = rng.random((17, 32, 48), dtype=np.float32)
    tags = (rng.standard_normal((17, 32, 48, 1)) * 3).astype(np.float32)
    params = group.GroupingParams(num_joints=17)
    expected, expected_scores = reference_group(det, tags, params)
    people, scores = group.group_keypoints(det, tags, params)
    np.testing.assert_array_equal(people, expected)
    np.testing.assert_array_equal(scores, expected_scores)
    assert len(expected) > 20
    capped, capped_scores = group.group_keypoints(det, tags, params, DecodeLimits(max_people=20))
    best = np.sort(np.argsort(-expected_scores, kind="stable")[:20])
    np.testing.assert_array_equal(capped, expected[best])
    np.testing.assert_array_equal(capped_scores, expected_scores[best])
    with pytest.raises(ValueError, match="max_people"):
        DecodeLimits(max_people=0)


def test_the_detection_cap_limits_the_detections_per_joint():
    rng = np.random.default_rng(5)
    det = rng.random((17, 32, 48), dtype=np.float32)
    tags = (rng.standard_normal((17, 32, 48, 1)) * 3).astype(np.float32)
    params = group.GroupingParams(num_joints=17, refine=False)
    people, _ = group.group_keypoints(det, tags, params)
    assert (people[:, :, 2] > 0).sum(axis=0).max() == 30
    people, _ = group.group_keypoints(det, tags, params, DecodeLimits(max_detections=8))
    assert (people[:, :, 2] > 0).sum(axis=0).max() == 8


def test_the_decoder_and_the_runtime_import_no_torch():
    code = ("import sys; import litepose.runtime, litepose.estimator, litepose.inference, "
            "litepose.inference.aggregate, litepose.inference.decode, litepose.inference.group, "
            "litepose.inference.settings, litepose.inference.transforms, litepose.runtime.people; "
            "from litepose import PoseEstimator, People; "
            "from litepose.inference import DecodeLimits, Maps, compute_maps, decode, group_keypoints; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_path_returns_the_one_people_type():
    import litepose
    from litepose import estimator, inference

    assert litepose.People is estimator.People is inference.People
    people = inference.decode(Maps(np.zeros((17, 16, 16), np.float32), np.zeros((17, 16, 16, 1), np.float32),
                                   resize_geometry((16, 16), 64)),
                              InferenceSettings.from_config(load_config(COCO_CFG), input_size=64))
    assert type(people) is inference.People and len(people) == 0 and people.keypoints.shape == (0, 17, 3)
